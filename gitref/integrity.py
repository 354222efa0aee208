"""Checks of a repository's storage that Git's own readers would otherwise trip over later.

* ``pack_problems``: every pack's SHA-1 trailer recomputed, every pack has
  its index and every index its pack (a flipped byte or a truncation in a
  ``.pack`` is found without reading objects);
* ``corrupt_refs``: loose reference files that are not a hex id or a
  ``ref:`` line (a truncated write); ``drop_corrupt_refs`` removes them so
  they can be set again (they hold no value anyone could read);
* ``unreachable_objects``: ``git rev-list --objects`` over the given tips
  fails when an object they need is missing (a deleted pack).
"""

from __future__ import annotations

import hashlib
import re

import pygit2

from .remote import run_git
from .repo import objects_dir

_HEX = re.compile(rb"^[0-9a-f]{40}\n?$")


def pack_problems(repo: pygit2.Repository) -> list[tuple[str, str]]:
    """(path relative to the git dir, what is wrong) for each damaged pack or orphan index."""
    out = []
    pack_dir = objects_dir(repo) / "pack"
    if not pack_dir.is_dir():
        return out
    gitdir = objects_dir(repo).parent
    for idx in sorted(pack_dir.glob("pack-*.idx")):
        if not idx.with_suffix(".pack").exists():
            out.append((str(idx.relative_to(gitdir)), "index without its pack (the pack was deleted)"))
    for pack in sorted(pack_dir.glob("pack-*.pack")):
        rel = str(pack.relative_to(gitdir))
        if not pack.with_suffix(".idx").exists():
            out.append((rel, "pack without its index"))
            continue
        h = hashlib.sha1()
        with open(pack, "rb") as f:
            size = pack.stat().st_size
            if size < 32:
                out.append((rel, "truncated"))
                continue
            left = size - 20
            while left > 0:
                chunk = f.read(min(1 << 20, left))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
            trailer = f.read(20)
        if h.digest() != trailer:
            out.append((rel, "checksum mismatch (flipped or truncated bytes)"))
        elif pack.name != f"pack-{trailer.hex()}.pack":
            out.append((rel, "name does not match its checksum"))
        idx = pack.with_suffix(".idx")
        data = idx.read_bytes()
        if len(data) < 40 or hashlib.sha1(data[:-20]).digest() != data[-20:]:
            out.append((str(idx.relative_to(gitdir)), "index checksum mismatch (flipped or truncated bytes)"))
        elif data[-40:-20] != trailer:
            out.append((str(idx.relative_to(gitdir)), "index does not belong to its pack"))
    return out


def corrupt_refs(repo: pygit2.Repository) -> list[str]:
    """Names of loose ref files under ``refs/`` that hold neither an id nor a symbolic ref."""
    gitdir = objects_dir(repo).parent
    out = []
    base = gitdir / "refs"
    for p in sorted(base.rglob("*")) if base.is_dir() else []:
        if p.is_file() and not p.name.endswith(".lock"):
            data = p.read_bytes()
            if not (_HEX.match(data) or data.startswith(b"ref: ")):
                out.append(str(p.relative_to(gitdir)))
    return out


def packed_refs_problem(repo: pygit2.Repository) -> str | None:
    """What is wrong with ``packed-refs`` (each line: a header, ``<hex> <refname>`` or ``^<hex>``), or None."""
    path = objects_dir(repo).parent / "packed-refs"
    if not path.exists():
        return None
    for no, line in enumerate(path.read_bytes().split(b"\n"), 1):
        if not line or line.startswith(b"# pack-refs"):
            continue
        if line.startswith(b"^") and _HEX.match(line[1:]):
            continue
        oid, _, name = line.partition(b" ")
        if not (_HEX.match(oid) and name.startswith(b"refs/") and b"\x00" not in name):
            return f"line {no} is not '<id> <ref>'"
        try:
            if not pygit2.reference_is_valid_name(name.decode()):
                return f"line {no} names an invalid ref"
        except UnicodeDecodeError:
            return f"line {no} is not UTF-8"
    return None


def drop_corrupt_refs(repo: pygit2.Repository) -> list[str]:
    """Remove loose ref files that hold no value, and the lines of ``packed-refs`` that are not refs."""
    gitdir = objects_dir(repo).parent
    names = corrupt_refs(repo)
    for name in names:
        (gitdir / name).unlink(missing_ok=True)
    if packed_refs_problem(repo):
        path = gitdir / "packed-refs"
        keep = []
        for line in path.read_bytes().split(b"\n"):
            oid, _, name = line.partition(b" ")
            ok = line.startswith(b"# pack-refs") or (line.startswith(b"^") and _HEX.match(line[1:])) or (
                _HEX.match(oid) and name.startswith(b"refs/") and _valid(name))
            if ok:
                keep.append(line)
        path.write_bytes(b"\n".join(keep) + b"\n")
        names.append("packed-refs")
    return names


def _valid(name: bytes) -> bool:
    try:
        return pygit2.reference_is_valid_name(name.decode())
    except UnicodeDecodeError:
        return False


def unreachable_objects(repo: pygit2.Repository, tips: list[pygit2.Oid], env: dict[str, str] | None = None) -> str | None:
    """None when every object the tips need is present, else git's complaint."""
    if not tips:
        return None
    done = run_git(repo, ["rev-list", "--objects", "--quiet", "--stdin"], env or {},
                   input=("\n".join(str(t) for t in tips) + "\n").encode())
    if done.returncode == 0:
        return None
    return done.stderr.decode("utf-8", "replace").strip().splitlines()[-1] if done.stderr else "objects are missing"
