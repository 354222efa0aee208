"""``bucket prefetch <trace-id>``: fetch exactly one trace's blobs (one ref) and check every byte.

The trace's ``refs/opentraces/v1/blobs/<project>/<trace>`` is fetched into
staging; each blob's content must hash to its name (raw: SHA-256 of the
bytes; context: of the gunzipped JSON) and its path must be a blob path of
the bucket layout; only then are the missing files written (fsynced) and the
local blob ref moved (created, fast-forwarded, or merged with local blobs).
"""

from __future__ import annotations

from typing import Any

import pygit2

import gitref

from .. import refnames
from ..blobs import blob_problem
from ..bucket import Bucket
from ..errors import CorruptionError, OfflineError
from ..fsio import write_many_new
from ..gitmirror.mirror import merge_blob_refs, move_ref, open_mirror
from ..writer import writing
from . import staging
from .transport import Transport


def _check_blob(ref: str, path: str, data: bytes) -> None:
    bad = blob_problem(path.rsplit("/", 1)[1], data)
    if bad:
        raise CorruptionError(f"the remote's {ref} holds a damaged blob {path} ({bad[1]}); nothing was written",
                              "check the remote with 'git fsck'")


def adopt_blob_ref(bucket: Bucket, repo: pygit2.Repository, name: str, tip: pygit2.Oid) -> int:
    """Write the blobs of a fetched blob-ref commit into the bucket and move the local ref; returns files written."""
    files = staging.blob_files(repo, name, tip)
    todo = []
    for path, oid in sorted(files.items()):
        data = repo[oid].data
        _check_blob(name, path, data)
        if not (bucket.root / path).exists():
            todo.append((bucket.root / path, data))
    written = write_many_new(todo)
    current = gitref.get_ref(repo, name)
    if current is None or gitref.is_ancestor(repo, current, tip):
        move_ref(repo, name, tip, current)
    elif not gitref.is_ancestor(repo, tip, current):  # both sides hold blobs: a merge holds both
        merge_blob_refs(repo, name, current, tip)
    return written


def prefetch(bucket: Bucket, transport: Transport, trace_prefix: str, *, progress=None,
             lock_timeout: float = 30.0) -> dict[str, Any]:
    row = bucket.find_trace(trace_prefix)
    name = refnames.blobs_ref(row["project"], row["trace_id"])
    remote = transport.ls_remote([name])
    if name not in remote:
        local = open_mirror(bucket, create=False)
        if local is not None and gitref.get_ref(local, name) is not None:
            return {"trace_id": row["trace_id"], "ref": name, "files_written": 0, "state": "local_only"}
        raise OfflineError(f"the remote has no blobs for trace {row['trace_id']} ({name})",
                           "push them from the machine that captured the trace ('opentraces bucket remote push')")
    with writing(bucket, lock_timeout, catch_up=False):
        repo = open_mirror(bucket)
        try:
            before = gitref.get_ref(repo, name)
            staged = staging.fetch(transport, repo, [name], progress=progress)
            written = adopt_blob_ref(bucket, repo, name, staged[name])
        finally:
            staging.clear(repo)
    return {"trace_id": row["trace_id"], "project": row["project"], "ref": name, "files_written": written,
            "state": "fetched" if before != remote[name] else "current", "remote": str(remote[name])}
