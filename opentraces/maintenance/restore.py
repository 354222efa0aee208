"""Restoring canonical files from the Git mirror's copies, never the other way round.

A batch file deleted from ``events/v1/batches/`` is still a commit of its
writer's ``refs/opentraces/v1/events/<writer>`` chain; a damaged blob file is
still a blob of its trace's ``refs/opentraces/v1/blobs/...`` tree. Each copy
is checked (the batch decodes, its hash matches its name and it chains to its
neighbours; the blob hashes to its name) before it is written back. Nothing
here ever replaces a good file.
"""

from __future__ import annotations

from typing import Any

import pygit2

import gitref

from .. import layout, refnames
from ..refilters import replaced_batches
from ..batches import BatchError, decode_batch, list_batch_names, write_batch
from ..blobs import blob_problem
from ..bucket import Bucket
from ..fsio import atomic_write
from ..gitmirror.trail import trailers


def mirror_batches(bucket: Bucket) -> dict[str, tuple[str, pygit2.Oid]]:
    """{batch name: (writer, git blob)} for every batch the mirror's events refs hold."""
    path = bucket.root / layout.GIT
    if not path.exists():
        return {}
    try:
        repo = gitref.open_repo(path)
        refs = gitref.list_refs(repo, refnames.EVENTS_PREFIX)
    except gitref.GitrefError:
        return {}
    out = {}
    for name, tip in refs.items():
        writer = name[len(refnames.EVENTS_PREFIX):]
        try:
            for c in gitref.only_in(repo, tip, None):
                batch = trailers(c.message).get("Batch")
                if batch:
                    tree = c.peel(pygit2.Tree)
                    out[batch] = (writer, tree[f"{layout.BATCHES}/{batch}"].id)
        except (KeyError, ValueError, pygit2.GitError):
            continue
    return out


def missing_batches(bucket: Bucket, index: dict[str, Any] | None) -> list[str]:
    """Batches the mirror or the index knows of that the folder lacks (deleted, lost)."""
    on_disk = set(list_batch_names(bucket.root / layout.BATCHES))
    known = set(mirror_batches(bucket))
    for w in (index or {}).get("writers", {}).values():
        if w.get("name"):
            known.add(w["name"])
    return sorted(known - on_disk - replaced_batches(bucket.root))  # a re-filter replaced some on purpose


def restore_batches(bucket: Bucket, names: list[str]) -> tuple[list[str], list[str]]:
    """Write back the named batches from the mirror's copies; returns (restored, not restorable)."""
    copies = mirror_batches(bucket)
    restored, lost = [], []
    repo = gitref.open_repo(bucket.root / layout.GIT) if copies else None
    for name in names:
        if name not in copies or repo is None:
            lost.append(name)
            continue
        try:
            data = repo[copies[name][1]].data
            b = decode_batch(name, data)
        except (BatchError, pygit2.GitError, KeyError, ValueError):
            lost.append(name)
            continue
        if b.header.writer != copies[name][0]:
            lost.append(name)
            continue
        write_batch(bucket.root / layout.BATCHES, name, data)
        restored.append(name)
    return restored, lost


def restore_blobs(bucket: Bucket) -> dict[str, list[str]]:
    """Check every blob file the mirror's blob refs hold a copy of; rewrite damaged or missing
    files from a copy that hashes to its name. {"restored": [...], "unrestorable": [...]}."""
    out: dict[str, list[str]] = {"restored": [], "unrestorable": []}
    path = bucket.root / layout.GIT
    if not path.exists():
        return out
    try:
        repo = gitref.open_repo(path)
        refs = gitref.list_refs(repo, refnames.BLOBS_PREFIX)
    except (gitref.GitrefError, pygit2.GitError):
        return out
    seen: set[str] = set()
    for _name, tip in refs.items():
        try:
            entries = list(gitref.iter_tree(repo, tip))
        except (gitref.GitrefError, pygit2.GitError, KeyError, ValueError):
            continue  # a damaged mirror offers no copy here
        for rel, oid, _mode in entries:
            if rel in seen:
                continue
            seen.add(rel)
            target = bucket.root / rel
            if target.exists() and _blob_ok(rel, target.read_bytes()):
                continue
            try:
                data = repo[oid].data
            except (pygit2.GitError, KeyError, ValueError):
                continue
            if _blob_ok(rel, data):
                atomic_write(target, data)
                out["restored"].append(rel)
            elif target.exists():
                out["unrestorable"].append(rel)
    return out


def _blob_ok(rel: str, data: bytes) -> bool:
    return blob_problem(rel.rsplit("/", 1)[1], data) is None
