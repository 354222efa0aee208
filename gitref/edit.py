"""Edit an existing tree: apply path changes without rebuilding what did not change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pygit2

from .objects import MODE_TREE
from .packwriter import ObjectWriter
from .trees import nest_paths, split_path


class Replace:
    """A change that replaces a whole folder with ``files`` (``{relative path: entry}``)."""

    def __init__(self, files: Mapping[str, Any]):
        self.files = dict(files)


def update_tree(
    writer: ObjectWriter,
    repo: pygit2.Repository,
    base: pygit2.Oid | None,
    changes: Mapping[str, Any],
) -> pygit2.Oid:
    """Stage the tree ``base`` with ``changes`` applied; returns its id.

    ``changes`` maps slash paths to a blob entry (bytes, Oid or (mode, oid)),
    ``None`` (delete the file or folder), or ``Replace(files)`` (the folder's
    whole new content). Unchanged subtrees keep their ids, so the cost is
    proportional to the changed paths and the width of the folders on them.
    Folders left empty disappear; an empty result is the empty tree.
    """
    root: dict[str, Any] = {}
    for path, change in changes.items():
        parts = split_path(path)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = change
    tree = repo[base].peel(pygit2.Tree) if base is not None else None
    new = _apply(writer, repo, tree, root)
    return new if new is not None else writer.tree({})


def _apply(writer: ObjectWriter, repo: pygit2.Repository, tree: pygit2.Tree | None, node: dict) -> pygit2.Oid | None:
    entries: dict[str, Any] = {}
    if tree is not None:
        for e in tree:
            entries[e.name] = (int(e.filemode), e.id)
    for name, change in node.items():
        if isinstance(change, dict):
            old = entries.get(name)
            sub = repo[old[1]] if old is not None and old[0] == MODE_TREE else None
            new = _apply(writer, repo, sub, change)
        elif isinstance(change, Replace):
            new = writer.tree(nest_paths(change.files)) if change.files else None
        elif change is None:
            new = None
        else:
            entries[name] = change
            continue
        if new is None:
            entries.pop(name, None)
        else:
            entries[name] = (MODE_TREE, new)
    if not entries:
        return None
    return writer.tree(entries)
