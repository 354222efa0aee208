"""``events/v1/index.json``: per-writer heads of the committed batches.

Derived from batch headers alone; ``bucket repair`` rebuilds it. It holds
one entry per writer (not per batch), so a commit rewrites a file whose
size follows the number of writers, not of batches. A batch is projected
when its seq is at most its writer's head here: each writer's batches are
added in seq order, locally and by a pull.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import orjson

from .. import layout
from ..batches import Batch
from ..encoding import pretty_json

INDEX_SCHEMA = "opentraces.bucket.events.v2"


def empty() -> dict[str, Any]:
    return {"schema_version": INDEX_SCHEMA, "batch_count": 0, "event_lines": 0, "writers": {}}


def add(index: dict[str, Any], batches: Iterable[Batch]) -> dict[str, Any]:
    """The index with ``batches`` (new ones, any order) taken in."""
    writers = {w: dict(v) for w, v in index["writers"].items()}
    count, lines = index["batch_count"], index["event_lines"]
    for b in sorted(batches, key=lambda b: (b.header.writer, b.header.seq)):
        h = b.header
        w = writers.get(h.writer)
        if w is not None and h.seq <= w["seq"]:
            continue  # already counted
        writers[h.writer] = {"seq": h.seq, "head": b.sha256, "name": b.name,
                             "batches": (w["batches"] if w else 0) + 1, "events": (w["events"] if w else 0) + h.events}
        count += 1
        lines += h.events
    return {"schema_version": INDEX_SCHEMA, "batch_count": count, "event_lines": lines,
            "writers": dict(sorted(writers.items()))}


def build_index(batches: Iterable[Batch]) -> dict[str, Any]:
    return add(empty(), batches)


def projected(index: dict[str, Any], writer: str, seq: int) -> bool:
    w = index["writers"].get(writer)
    return w is not None and seq <= w["seq"]


def summary(index: dict[str, Any]) -> dict[str, Any]:
    """The part of the index the manifest summary repeats (local, not digested)."""
    return {"batch_count": index["batch_count"], "event_lines": index["event_lines"],
            "writers": {w: v["name"] for w, v in index["writers"].items()}}


def read_index(root: Path) -> dict[str, Any] | None:
    try:
        doc = orjson.loads((root / layout.INDEX).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("schema_version") != INDEX_SCHEMA:
        return None  # absent, damaged or the older per-batch list: catch_up repairs it
    return doc


def encode(index: dict[str, Any]) -> bytes:
    return pretty_json(index)
