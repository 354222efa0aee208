"""``bucket prune``: delete unreachable blobs and stale temp files only.

Never deletes events or trace.json. Runs under the writer lock, so no temp
file it sees can belong to a write in progress. Refuses when a batch is
damaged, because reachability would then be unknown.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..writer import Writer

from .. import layout
from ..blobs import addr_from_name, referenced_blobs
from ..bucket import Bucket
from ..errors import CorruptionError
from ..projects import tag_of
from ..writer import temp_files
from .scan import scan_batches
from .verify import _blob_files


def prune(writer: "Writer", *, dry_run: bool) -> dict[str, Any]:
    bucket = writer.bucket
    scan = scan_batches(bucket, check_events=False)
    if scan.damaged:
        names = ", ".join(n for n, _ in scan.damaged)
        raise CorruptionError(f"damaged batches ({names}) make reachability unknown; nothing was pruned",
                              "run 'opentraces bucket verify --full'")
    reachable = set()  # (repository tag, kind, address): a blob may sit under any claimed name
    for events in scan.by_trace.values():
        for ev in events.values():
            for kind, addr in referenced_blobs(ev):
                reachable.add((tag_of(ev["project"]), kind, addr))

    def is_reachable(rel: str) -> bool:
        parts = rel.split("/")  # blobs/v1/<project>/<kind>/<hh>/<file>
        hit = addr_from_name(parts[-1])
        return hit is not None and (tag_of(parts[2]), hit[0], hit[1]) in reachable

    blobs = [rel for rel in _blob_files(bucket) if not is_reachable(rel)]
    temps = temp_files(bucket)
    freed = 0
    if not dry_run:
        for rel in blobs + temps:
            path = bucket.root / rel
            try:
                freed += path.stat().st_size
                os.unlink(path)
            except FileNotFoundError:
                pass
    mirror = _prune_mirror(bucket, dry_run)
    return {"dry_run": dry_run, "blobs": blobs, "tempfiles": temps, "mirror": mirror,
            "would_delete": len(blobs) + len(temps) if dry_run else 0,
            "deleted": 0 if dry_run else len(blobs) + len(temps), "bytes_freed": freed}


def _prune_mirror(bucket: Bucket, dry_run: bool) -> dict[str, Any] | None:
    """Drop the mirror's unreachable objects and pack its refs (``git repack -a -d``)."""
    if not (bucket.root / layout.GIT).is_dir():
        return None
    import gitref

    from ..gitmirror.mirror import compact

    repo = gitref.open_repo(bucket.root / layout.GIT)
    if dry_run:
        return {"pack_bytes": gitref.packs_size(repo), "packs": gitref.pack_count(repo)}
    return compact(bucket, repo, force_prune=True)
