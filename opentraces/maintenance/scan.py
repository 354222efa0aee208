"""Read every committed batch once, keeping going past damaged ones."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .. import layout
from ..batches import Batch, BatchError
from ..bucket import Bucket
from ..projects import Names


@dataclass
class Scan:
    batches: list[Batch] = field(default_factory=list)
    damaged: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    # (canonical project, trace id) -> {event id: event}
    by_trace: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    names: Names = field(default_factory=Names)


def scan_batches(bucket: Bucket, *, check_events: bool = True) -> Scan:
    scan = Scan()
    for name in bucket.batch_names():
        try:
            batch = bucket.read_batch(name) if check_events else _read_fast(bucket, name)
        except (BatchError, OSError) as exc:
            scan.damaged.append((name, str(exc)))
            continue
        scan.batches.append(batch)
        scan.names.observe(batch.events)
    for batch in scan.batches:  # the names need every event before any is placed
        for ev in batch.events:
            scan.by_trace[(scan.names.canonical(ev["project"]), ev["trace_id"])].setdefault(ev["event_id"], ev)
    return scan


def _read_fast(bucket: Bucket, name: str) -> Batch:
    from ..batches import read_batch

    return read_batch(bucket.root / layout.BATCHES / name, check_events=False)
