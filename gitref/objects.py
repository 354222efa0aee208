"""Git object encoding: object ids, tree entries, commits and a fixed identity.

Objects are serialised here byte for byte as Git does (``git hash-object``,
``git mktree``, ``git commit-tree``) and named by SHA-1 of
``<type> <size>\\0<body>``, so ids match Git's without asking libgit2 to
validate anything (no ``TreeBuilder``, no strict object creation).
Everything ``git fsck --full --strict`` checks on names, modes, ordering and
identities is checked here before an object exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pygit2
from pygit2.enums import FileMode, ObjectType

from .errors import GitrefError

BLOB = int(ObjectType.BLOB)
TREE = int(ObjectType.TREE)
COMMIT = int(ObjectType.COMMIT)
TYPE_NAMES = {BLOB: b"blob", TREE: b"tree", COMMIT: b"commit", int(ObjectType.TAG): b"tag"}

MODE_BLOB = int(FileMode.BLOB)  # 0o100644
MODE_EXEC = int(FileMode.BLOB_EXECUTABLE)  # 0o100755
MODE_LINK = int(FileMode.LINK)  # 0o120000
MODE_TREE = int(FileMode.TREE)  # 0o040000
MODE_GITLINK = int(FileMode.COMMIT)  # 0o160000
# The object type each tree entry mode must point at.
MODE_TYPES = {MODE_BLOB: BLOB, MODE_EXEC: BLOB, MODE_LINK: BLOB, MODE_TREE: TREE, MODE_GITLINK: COMMIT}

ZERO_OID = pygit2.Oid(raw=b"\0" * 20)
# Code points HFS+ ignores in names (git's is_hfs_dotgit): ".g\u200cit" is ".git" there.
_HFS_IGNORED = dict.fromkeys(
    [0x200C, 0x200D, 0x200E, 0x200F, 0xFEFF, *range(0x202A, 0x202F), *range(0x206A, 0x2070)]
)


class UnsafeNameError(GitrefError, ValueError):
    """A tree entry name Git would refuse or flag (empty, '.', '..', '.git', '/', NUL)."""


class InvalidObjectError(GitrefError, ValueError):
    """Object content that would make an invalid or fsck-failing Git object."""


def object_id(type_: int, body: bytes) -> pygit2.Oid:
    """The Git object id of ``body`` stored as ``type_`` (what ``git hash-object -t`` prints)."""
    header = b"%s %d\0" % (TYPE_NAMES[type_], len(body))
    h = hashlib.sha1(header)
    h.update(body)
    return pygit2.Oid(raw=h.digest())


def _is_ntfs_dotgit(lower: str) -> bool:
    for stem in (".git", "git~1"):
        if lower.startswith(stem):
            rest = lower[len(stem):]
            for ch in rest:
                if ch in "\\:":
                    return True
                if ch not in ". ":
                    return False
            return True
    return False


def check_name(name: str) -> bytes:
    """Validate one tree entry name and return its UTF-8 bytes.

    Refuses what Git refuses or ``fsck --strict`` reports: empty, '.', '..',
    anything containing '/' or NUL, and every spelling of '.git' that Git
    treats as such on case-insensitive, NTFS or HFS+ file systems.
    """
    if not isinstance(name, str):
        raise UnsafeNameError(f"tree entry name must be str, got {type(name).__name__}")
    if name in ("", ".", ".."):
        raise UnsafeNameError(f"unsafe tree entry name {name!r}")
    if "/" in name or "\0" in name:
        raise UnsafeNameError(f"tree entry name {name!r} contains '/' or NUL")
    lower = name.lower()
    if _is_ntfs_dotgit(lower) or lower.translate(_HFS_IGNORED) == ".git":
        raise UnsafeNameError(f"tree entry name {name!r} is a spelling of '.git'")
    try:
        return name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnsafeNameError(f"tree entry name {name!r} is not valid Unicode") from exc


def encode_tree(entries: Iterable[tuple[str, int, pygit2.Oid]]) -> bytes:
    """Serialise ``(name, mode, oid)`` entries as a tree body, sorted the Git way.

    Git orders entries by name bytes, comparing a subtree's name as if it
    ended in '/'; modes are octal without leading zeros ("40000").
    """
    rows = []
    seen: set[bytes] = set()
    for name, mode, oid in entries:
        raw_name = check_name(name)
        if mode not in MODE_TYPES:
            raise InvalidObjectError(f"unsupported mode {mode:o} for {name!r}")
        if raw_name in seen:
            raise InvalidObjectError(f"duplicate tree entry {name!r}")
        if oid == ZERO_OID:
            raise InvalidObjectError(f"tree entry {name!r} points at the null id")
        seen.add(raw_name)
        key = raw_name + b"/" if mode == MODE_TREE else raw_name
        rows.append((key, b"%o %s\0%s" % (mode, raw_name, oid.raw)))
    rows.sort(key=lambda row: row[0])
    return b"".join(row for _, row in rows)


@dataclass(frozen=True)
class Identity:
    """The author and committer written on every commit (never the environment's)."""

    name: str = "opentraces"
    email: str = "opentraces@localhost"

    def __post_init__(self) -> None:
        for label, value in (("name", self.name), ("email", self.email)):
            if not value or any(c in value for c in "<>\n\0") or value != value.strip():
                raise InvalidObjectError(f"invalid identity {label} {value!r}")

    def line(self, time: int) -> bytes:
        """``Name <email> <time> +0000`` as Git writes it."""
        return b"%s <%s> %d +0000" % (self.name.encode(), self.email.encode(), time)


def encode_commit(
    tree: pygit2.Oid,
    parents: Sequence[pygit2.Oid],
    message: str | bytes,
    time: int,
    identity: Identity,
) -> bytes:
    """Serialise a commit body: author = committer = ``identity`` at ``time``, UTC.

    The message is stored verbatim (end it with a newline, as Git does).
    """
    if isinstance(time, bool) or not isinstance(time, int) or not 0 <= time < 2**63:
        raise InvalidObjectError(f"commit time must be whole seconds >= 0, got {time!r}")
    msg = message.encode("utf-8") if isinstance(message, str) else bytes(message)
    if b"\0" in msg:
        raise InvalidObjectError("commit message contains NUL")
    ident = identity.line(time)
    lines = [b"tree " + str(tree).encode()]
    lines += [b"parent " + str(p).encode() for p in parents]
    lines += [b"author " + ident, b"committer " + ident]
    return b"\n".join(lines) + b"\n\n" + msg
