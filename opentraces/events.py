"""The event envelope: a fact whose identity is the fact alone.

``event_id`` is ``sha256:`` of the canonical JSON of ``kind``, ``project``,
``trace_id``, ``step``, ``time`` and ``payload`` (DESIGN.md §4). The same fact
captured on two machines is the same event; any edit changes the id.
"""

from __future__ import annotations

import re
from typing import Any

from .encoding import address, canonical_json

EVENT_FORMAT = "opentraces.event.v1"
KINDS = (
    "source.captured",
    "trace.started",
    "trace.step",
    "trace.finished",
    "context.node",
    "context.layer",
    "trail.patch",
    "trail.snapshot",
    "trail.anchor",
    "security.filtered",  # what filtered a trace's session and what it found (counts, risk), never the text
    "security.cleared",  # the user reviewed a flagged trace and let it be pushed
    "security.refiltered",  # a re-filter replaced the trace's older events (docs/SECURITY.md)
)
IDENTITY_FIELDS = ("kind", "project", "trace_id", "step", "time", "payload")
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


class EventError(ValueError):
    """An event line that is not a valid envelope."""


def event_id_of(ev: dict[str, Any]) -> str:
    return address(canonical_json({k: ev.get(k) for k in IDENTITY_FIELDS}))


def make_event(
    kind: str,
    project: str,
    trace_id: str,
    step: int | None,
    time: str,
    payload: dict[str, Any],
) -> dict[str, Any]:
    ev = {
        "kind": kind,
        "project": project,
        "trace_id": trace_id,
        "step": step,
        "time": time,
        "payload": payload,
    }
    ev["event_id"] = event_id_of(ev)
    return ev



def check_event(ev: Any) -> dict[str, Any]:
    """Validate shape and recompute the id; raise EventError on any mismatch."""
    if not isinstance(ev, dict):
        raise EventError("event is not an object")
    extra = set(ev) - set(IDENTITY_FIELDS) - {"event_id"}
    if extra:
        raise EventError(f"unknown event fields {sorted(extra)}")
    kind = ev.get("kind")
    if kind not in KINDS:
        raise EventError(f"unknown event kind {kind!r}")
    if not isinstance(ev.get("payload"), dict):
        raise EventError("payload is not an object")
    step = ev.get("step")
    if step is not None and (not isinstance(step, int) or isinstance(step, bool)):
        raise EventError("step is not an integer")
    time = ev.get("time")
    if not isinstance(time, str) or not _TIME.match(time):
        raise EventError(f"time {time!r} is not RFC 3339 UTC")
    if ev.get("event_id") != event_id_of(ev):
        raise EventError("event_id does not match the event's content")
    return ev


def sort_key(ev: dict[str, Any]) -> tuple:
    """Writer-neutral order of events within projections."""
    step = ev.get("step")
    return (ev["time"], -1 if step is None else step, ev["kind"], ev["event_id"])


def normalize_time(value: Any) -> str | None:
    """Turn a session timestamp into RFC 3339 UTC with ``Z``, or None."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        import datetime as _dt

        secs = value / 1000.0 if value > 1e11 else float(value)
        dt = _dt.datetime.fromtimestamp(secs, tz=_dt.timezone.utc)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    if not isinstance(value, str):
        return None
    import datetime as _dt

    text = value.strip()
    if _TIME.match(text):
        return text
    try:
        dt = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_dt.timezone.utc)
    dt = dt.astimezone(_dt.timezone.utc)
    frac = f".{dt.microsecond:06d}".rstrip("0") if dt.microsecond else ""
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (frac if frac != "." else "") + "Z"
