"""ObjectWriter: stage blobs, trees and commits in memory, then write one pack.

Loose objects are slow (one file and ~13 syscalls each) and trigger
``git gc --auto``; this writer never writes any. Objects are encoded and
hashed in Python (objects.py), kept in a dict, and ``flush()`` writes the
ones the target lacks as a single ``.pack`` + ``.idx`` (packfile.py, no
delta search: libgit2's PackBuilder spent ~85% of a replay searching for
deltas among objects that are mostly distinct).

libgit2's strict object creation is never involved (no TreeBuilder or
``create_commit``), so the process-wide setting stays untouched. Instead
every referenced id is checked here: it must be staged or already in the
target, with the type its mode or role requires.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Union

import pygit2

from .errors import NotFoundError, ObjectTypeError
from .objects import (
    BLOB,
    COMMIT,
    MODE_BLOB,
    MODE_GITLINK,
    MODE_TREE,
    MODE_TYPES,
    TREE,
    TYPE_NAMES,
    Identity,
    InvalidObjectError,
    encode_commit,
    encode_tree,
    object_id,
)
from .packfile import write_pack_file

# A tree entry: blob bytes, an existing object (blob or tree, mode inferred),
# an explicit (mode, oid), or a nested mapping (a subtree).
Entry = Union[bytes, pygit2.Oid, tuple[int, pygit2.Oid], Mapping[str, "Entry"]]


class ObjectWriter:
    """Stages objects for one target repository and writes them as one pack.

    Not thread-safe; one writer per thread. Use as a context manager to
    flush on success and discard on error::

        with ObjectWriter(repo) as w:
            tip = w.commit(build_tree(w, {"a.txt": b"hi\\n"}), [], "msg\\n", 0)
        update_ref(repo, "refs/x", tip, None, force=False)

    Commits carry ``identity`` (default opentraces <opentraces@localhost>)
    as author and committer, at the given time, UTC: the same inputs give
    the same ids on every machine.
    """

    def __init__(self, repo: pygit2.Repository, *, identity: Identity | None = None, incompressible_blobs: bool = False):
        self.repo = repo
        self.identity = identity or Identity()
        self.stored_types = (BLOB,) if incompressible_blobs else ()  # ciphertext: zlib level 0
        self._staged: dict[pygit2.Oid, tuple[int, bytes]] = {}
        self.last_pack: Path | None = None

    # -- staging ---------------------------------------------------------

    def _stage(self, type_: int, body: bytes) -> pygit2.Oid:
        oid = object_id(type_, body)
        if oid not in self._staged:
            self._staged[oid] = (type_, body)
        return oid

    def raw(self, type_: int, body: bytes) -> pygit2.Oid:
        """Stage an object from its encoded body as Git stores it (e.g. a commit carried
        elsewhere byte for byte); returns its id. The body is not parsed."""
        if type_ not in (BLOB, TREE, COMMIT):
            raise InvalidObjectError(f"unsupported object type {type_}")
        return self._stage(type_, bytes(body))

    def blob(self, data: bytes) -> pygit2.Oid:
        """Stage ``data`` as a blob; returns its id (``git hash-object``)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidObjectError(f"blob data must be bytes, got {type(data).__name__}")
        return self._stage(BLOB, bytes(data))

    def tree(self, entries: Mapping[str, Entry]) -> pygit2.Oid:
        """Stage a tree from one level of ``name -> entry``; nested mappings become subtrees.

        An entry is blob bytes, an ``Oid`` (a blob gets mode 100644, a tree
        040000), an explicit ``(mode, oid)``, or a mapping. Names are
        validated (objects.check_name); ids must be staged or in the target.
        """
        rows = []
        for name, entry in entries.items():
            if isinstance(entry, Mapping):
                rows.append((name, MODE_TREE, self.tree(entry)))
            elif isinstance(entry, (bytes, bytearray, memoryview)):
                rows.append((name, MODE_BLOB, self.blob(entry)))
            elif isinstance(entry, pygit2.Oid):
                type_ = self.object_type(entry)
                if type_ not in (BLOB, TREE):
                    raise ObjectTypeError(f"{name!r}: {entry} is a {_tname(type_)}, give (mode, oid)")
                rows.append((name, MODE_BLOB if type_ == BLOB else MODE_TREE, entry))
            elif isinstance(entry, tuple) and len(entry) == 2:
                mode, oid = int(entry[0]), entry[1]
                if mode not in MODE_TYPES:
                    raise InvalidObjectError(f"unsupported mode {mode:o} for {name!r}")
                if mode != MODE_GITLINK:  # a submodule commit lives elsewhere
                    self._expect(oid, MODE_TYPES[mode], name)
                rows.append((name, mode, oid))
            else:
                raise InvalidObjectError(f"{name!r}: unsupported tree entry {type(entry).__name__}")
        return self._stage(TREE, encode_tree(rows))

    def commit(
        self,
        tree: pygit2.Oid,
        parents: Sequence[pygit2.Oid],
        message: str | bytes,
        time: int,
    ) -> pygit2.Oid:
        """Stage a commit of ``tree`` on ``parents`` at ``time`` (seconds, UTC).

        Deterministic: same tree, parents, message, time and identity give
        the same id. The message is stored verbatim; end it with a newline.
        """
        self._expect(tree, TREE, "tree")
        for parent in parents:
            self._expect(parent, COMMIT, "parent")
        return self._stage(COMMIT, encode_commit(tree, list(parents), message, time, self.identity))

    # -- lookup ----------------------------------------------------------

    def object_type(self, oid: pygit2.Oid) -> int:
        """The type of a staged object or of one in the target; NotFoundError otherwise."""
        staged = self._staged.get(oid)
        if staged is not None:
            return staged[0]
        try:
            type_, _size = self.repo.odb.read_header(oid)
        except (KeyError, ValueError, pygit2.GitError) as exc:
            raise NotFoundError(f"object {oid} is neither staged nor in the repository") from exc
        return int(type_)

    def read(self, oid: pygit2.Oid) -> bytes:
        """The body of a staged object (what ``git cat-file <type>`` would print)."""
        try:
            return self._staged[oid][1]
        except KeyError:
            raise NotFoundError(f"object {oid} is not staged") from None

    def _expect(self, oid: object, type_: int, role: str) -> None:
        if not isinstance(oid, pygit2.Oid):
            raise InvalidObjectError(f"{role}: expected an Oid, got {type(oid).__name__}")
        actual = self.object_type(oid)
        if actual != type_:
            raise ObjectTypeError(f"{role}: {oid} is a {_tname(actual)}, not a {_tname(type_)}")

    def __contains__(self, oid: object) -> bool:
        return oid in self._staged

    def __len__(self) -> int:
        return len(self._staged)

    def __iter__(self) -> Iterator[pygit2.Oid]:
        return iter(self._staged)

    # -- writing ---------------------------------------------------------

    def missing(self) -> list[pygit2.Oid]:
        """Staged ids the target does not have yet, newest first (pack order)."""
        backends = list(self.repo.odb.backends)  # an iterator in pygit2
        for backend in backends:  # see packs written since the repo was opened
            backend.refresh()
        return [
            oid
            for oid in reversed(self._staged)
            if not any(backend.exists(oid) for backend in backends)
        ]

    def flush(self) -> Path | None:
        """Write staged objects the target lacks as one pack; return its path.

        Returns None (and writes nothing) when the target already has them
        all. Staging is emptied once the pack is in place; if writing fails
        it is kept, so flush can be retried. The pack is not fsynced
        (libgit2 does so only with ``pygit2.settings.enable_fsync_gitdir``).
        """
        todo = self.missing()
        pack = None
        if todo:
            pack = write_pack_file(self.repo, ((oid, *self._staged[oid]) for oid in todo), stored_types=self.stored_types)
        self._staged.clear()
        self.last_pack = pack
        return pack

    def discard(self) -> None:
        """Drop everything staged."""
        self._staged.clear()

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.flush()
        else:
            self.discard()


def _tname(type_: int) -> str:
    return TYPE_NAMES.get(type_, b"object").decode()
