"""Reviewing flagged traces: list them, and clear them so the push gate lets them through.

Clearing is a fact like any other: a ``security.cleared`` event in the
trace, naming the risk kinds the user looked at (never the text) and the
``security.filtered`` event it reviewed. It syncs with the trace, so every
machine sees the same decision; a later capture that finds a new kind of
risk raises the flag again.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import orjson

from ..blobs import PendingBlobs
from ..bucket import Bucket
from ..errors import NotFoundError, RefusedError
from ..events import make_event
from ..ids import check_component


def _record(bucket: Bucket, row: dict[str, Any]) -> dict[str, Any]:
    return orjson.loads((bucket.root / row["path"]).read_bytes())


def flagged(bucket: Bucket) -> list[dict[str, Any]]:
    """Flagged, not yet cleared traces: id, project, score, reasons (kinds and counts only)."""
    out = []
    for row in bucket.rows():
        sec = row.get("security") or {}
        if not sec.get("flagged"):
            continue
        risk = (_record(bucket, row).get("metadata") or {}).get("security", {}).get("risk") or {}
        out.append({"trace_id": row["trace_id"], "project": row["project"], "title": row.get("title"),
                    "score": risk.get("score"), "reasons": risk.get("reasons") or []})
    return out


def clear_events(bucket: Bucket, trace_ids: list[str], now: _dt.datetime) -> list[dict[str, Any]]:
    """The ``security.cleared`` events for ``trace_ids`` (each must be flagged)."""
    rows = {r["trace_id"]: r for r in bucket.rows()}
    time = now.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    events = []
    for tid in trace_ids:
        check_component(tid, "trace id")
        row = rows.get(tid) or (next((r for t, r in rows.items() if t.startswith(tid)), None) if len(tid) >= 8 else None)
        if row is None:
            raise NotFoundError(f"no trace {tid}", "list them with 'opentraces bucket review'")
        meta = (_record(bucket, row).get("metadata") or {}).get("security") or {}
        risk = meta.get("risk") or {}
        if not risk.get("flagged") or risk.get("cleared"):
            raise RefusedError(f"trace {row['trace_id'][:12]} is not flagged", "nothing to clear")
        filtered = [e for e in bucket.trace_events(row["project"], row["trace_id"]) if e["kind"] == "security.filtered"]
        last = max(filtered, key=lambda e: (e["time"], e["event_id"]))
        events.append(make_event("security.cleared", row["project"], row["trace_id"], None, time, {
            "kinds": risk.get("kinds") or [], "score": risk.get("score"), "reviewed": last["event_id"]}))
    return events


def clear(writer, bucket: Bucket, trace_ids: list[str], now: _dt.datetime) -> list[str]:
    events = clear_events(bucket, trace_ids, now)
    if events:
        writer.commit(events, PendingBlobs())
    return [e["trace_id"] for e in events]
