"""``events/v1/index.json``: the list of committed batches, per writer heads.

Derived from batch headers alone; ``bucket repair`` rebuilds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from .. import layout
from ..batches import Batch
from ..encoding import pretty_json

INDEX_SCHEMA = "opentraces.bucket.events.v1"


def entry(batch: Batch) -> dict[str, Any]:
    h = batch.header
    return {"name": batch.name, "writer": h.writer, "seq": h.seq, "prev": h.prev,
            "events": h.events, "sha256": batch.sha256}


def build_index(entries: list[dict[str, Any]]) -> dict[str, Any]:
    entries = sorted(entries, key=lambda e: e["name"])
    writers: dict[str, dict[str, Any]] = {}
    for e in entries:
        w = writers.get(e["writer"])
        if w is None or e["seq"] > w["seq"]:
            writers[e["writer"]] = {"seq": e["seq"], "head": e["sha256"], "name": e["name"]}
    return {
        "schema_version": INDEX_SCHEMA,
        "batch_count": len(entries),
        "event_lines": sum(e["events"] for e in entries),
        "writers": writers,
        "batches": entries,
    }


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
        return None
    return doc


def encode(index: dict[str, Any]) -> bytes:
    return pretty_json(index)
