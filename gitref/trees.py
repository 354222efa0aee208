"""Trees from slash paths, and reading trees and blobs back."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import pygit2

from .errors import GitrefError, NotFoundError, ObjectTypeError
from .objects import MODE_GITLINK, MODE_TREE, UnsafeNameError, check_name

if TYPE_CHECKING:
    from .packwriter import Entry, ObjectWriter


class PathConflictError(GitrefError, ValueError):
    """Two paths disagree: one uses a name as a file, the other as a folder."""


def split_path(path: str) -> list[str]:
    """The validated components of a slash path (no leading, trailing or double '/')."""
    if not isinstance(path, str):
        raise UnsafeNameError(f"path must be str, got {type(path).__name__}")
    parts = path.split("/")
    for part in parts:
        try:
            check_name(part)
        except UnsafeNameError as exc:
            raise UnsafeNameError(f"unsafe path {path!r}: {exc}") from None
    return parts


def nest_paths(files: Mapping[str, Entry]) -> dict[str, Entry]:
    """Turn ``{"a/b/c": x}`` into ``{"a": {"b": {"c": x}}}``, refusing conflicts."""
    root: dict[str, Entry] = {}
    for path, entry in files.items():
        parts = split_path(path)
        node = root
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise PathConflictError(f"{'/'.join(parts[: i + 1])!r} is a file and a folder")
            node = child
        leaf = parts[-1]
        if leaf in node:
            raise PathConflictError(f"{path!r} is given twice or is also a folder")
        node[leaf] = entry
    return root


def build_tree(writer: ObjectWriter, files: Mapping[str, Entry]) -> pygit2.Oid:
    """Stage nested trees for ``{slash path: entry}`` in ``writer``; returns the root tree id.

    An entry is blob bytes (mode 100644), an ``Oid`` of a staged or existing
    blob or tree, or ``(mode, oid)``. Empty, '.', '..', '.git' (any case or
    spelling Git treats as such) and NUL components raise UnsafeNameError;
    a path used both as file and folder raises PathConflictError.
    """
    return writer.tree(nest_paths(files))


def _lookup(repo: pygit2.Repository, oid: pygit2.Oid) -> pygit2.Object:
    try:
        return repo[oid]
    except (KeyError, ValueError) as exc:
        raise NotFoundError(f"object {oid} not found") from exc


def root_tree(repo: pygit2.Repository, oid: pygit2.Oid) -> pygit2.Tree:
    """The tree ``oid`` names, or the tree of the commit (or tag of one) it names."""
    obj = _lookup(repo, oid)
    try:
        return obj.peel(pygit2.Tree)
    except (pygit2.GitError, ValueError) as exc:
        raise ObjectTypeError(f"{oid} is a {obj.type_str}, not a tree or commit") from exc


def iter_tree(repo: pygit2.Repository, oid: pygit2.Oid) -> Iterator[tuple[str, pygit2.Oid, int]]:
    """Yield ``(path, oid, mode)`` for every non-tree entry under ``oid``, lazily.

    Paths use '/' and come in Git's order (that of ``git ls-tree -r``);
    submodule entries (mode 160000) are yielded, their commit is not read.
    """
    yield from _walk(repo, "", root_tree(repo, oid))


def _walk(repo: pygit2.Repository, prefix: str, tree: pygit2.Tree) -> Iterator[tuple[str, pygit2.Oid, int]]:
    for entry in tree:
        path = prefix + entry.name
        if entry.filemode == MODE_TREE:
            sub = _lookup(repo, entry.id)
            if not isinstance(sub, pygit2.Tree):
                raise ObjectTypeError(f"{path!r} has mode 040000 but {entry.id} is a {sub.type_str}")
            yield from _walk(repo, path + "/", sub)
        else:
            yield path, entry.id, int(entry.filemode)


def read_blob(repo: pygit2.Repository, oid: pygit2.Oid) -> bytes:
    """The bytes of blob ``oid``."""
    obj = _lookup(repo, oid)
    if not isinstance(obj, pygit2.Blob):
        raise ObjectTypeError(f"{oid} is a {obj.type_str}, not a blob")
    return obj.data


def read_tree(repo: pygit2.Repository, oid: pygit2.Oid) -> dict[str, bytes]:
    """Every file under tree or commit ``oid`` as ``{slash path: bytes}`` (submodules skipped)."""
    return {
        path: read_blob(repo, entry_oid)
        for path, entry_oid, mode in iter_tree(repo, oid)
        if mode != MODE_GITLINK
    }
