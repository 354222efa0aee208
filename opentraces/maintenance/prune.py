"""``bucket prune``: delete unreachable blobs and stale temp files only.

Never deletes events or trace.json. Runs under the writer lock, so no temp
file it sees can belong to a write in progress. Refuses when a batch is
damaged, because reachability would then be unknown.
"""

from __future__ import annotations

import os
from typing import Any

from .. import layout
from ..blobs import blob_relpath, referenced_blobs
from ..bucket import Bucket
from ..errors import CorruptionError
from ..fsio import is_tmp_name
from .scan import scan_batches
from .verify import _blob_files


def prune(bucket: Bucket, *, dry_run: bool) -> dict[str, Any]:
    scan = scan_batches(bucket, check_events=False)
    if scan.damaged:
        names = ", ".join(n for n, _ in scan.damaged)
        raise CorruptionError(f"damaged batches ({names}) make reachability unknown; nothing was pruned",
                              "run 'opentraces bucket verify --full'")
    reachable = set()
    for (project, _t), events in scan.by_trace.items():
        for ev in events.values():
            for kind, addr in referenced_blobs(ev):
                reachable.add(blob_relpath(project, kind, addr))
    blobs = [rel for rel in _blob_files(bucket) if rel not in reachable]
    temps = []
    for dirpath, dirs, files in os.walk(bucket.root):
        rel = os.path.relpath(dirpath, bucket.root)
        if rel == ".":
            dirs[:] = [d for d in dirs if d not in (layout.GIT,)]
        for f in files:
            if is_tmp_name(f):
                temps.append(os.path.normpath(f"{rel}/{f}"))
    temps.sort()
    freed = 0
    if not dry_run:
        for rel in blobs + temps:
            path = bucket.root / rel
            try:
                freed += path.stat().st_size
                os.unlink(path)
            except FileNotFoundError:
                pass
    return {"dry_run": dry_run, "blobs": blobs, "tempfiles": temps,
            "would_delete": len(blobs) + len(temps) if dry_run else 0,
            "deleted": 0 if dry_run else len(blobs) + len(temps), "bytes_freed": freed}
