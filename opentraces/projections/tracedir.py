"""Write one trace's derived folder: companions, trace_history, trace.json.

Order is the ready signal: companions and history first, ``trace.json``
last. Files are rewritten only when their bytes change.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from .. import layout
from ..encoding import gunzip_bytes, gzip_bytes, jsonl, parse_jsonl, pretty_json
from ..events import sort_key
from ..fsio import check_inside, write_if_changed
from ..projects import dedupe_claims
from .fold import fold_trace


def read_trace_events(trace_path: Path) -> list[dict[str, Any]]:
    """All events stored in a trace folder's three companions."""
    out: list[dict[str, Any]] = []
    for name in (layout.TRAIL, layout.CONTEXT, layout.SOURCES):
        try:
            data = (trace_path / name).read_bytes()
        except FileNotFoundError:
            continue
        out.extend(parse_jsonl(gunzip_bytes(data)))
    return out


def history_files(events: Iterable[dict[str, Any]]) -> dict[str, bytes]:
    """``trace_history/``: one unified diff per patch, numbered in session order."""
    patches = sorted((e for e in events if e["kind"] == "trail.patch"),
                     key=lambda e: (e["payload"]["seq"], e["event_id"]))
    out = {}
    for n, ev in enumerate(patches, 1):
        name = f"{n:04d}-{ev['payload']['patch_id'][7:19]}.diff"
        out[name] = ev["payload"]["diff"].encode()
    return out


def render_trace(trace_id: str, events: list[dict[str, Any]]) -> dict[str, bytes]:
    """Every file of the trace folder (relative name -> bytes)."""
    events = sorted(dedupe_claims(list({e["event_id"]: e for e in events}.values())), key=sort_key)
    groups: dict[str, list] = {layout.TRAIL: [], layout.CONTEXT: [], layout.SOURCES: []}
    for ev in events:
        groups[layout.companion_for(ev["kind"])].append(ev)
    files = {name: gzip_bytes(jsonl(evs)) for name, evs in groups.items()}
    for name, data in history_files(events).items():
        files[f"{layout.HISTORY}/{name}"] = data
    files[layout.TRACE_JSON] = pretty_json(fold_trace(trace_id, events))
    return files


def write_trace(root: Path, project: str, trace_id: str, events: list[dict[str, Any]]) -> tuple[int, bytes]:
    """Write the folder; return (files changed, trace.json bytes)."""
    base = check_inside(root, root / layout.trace_dir(project, trace_id))
    files = render_trace(trace_id, events)
    changed = 0
    for name, data in files.items():
        if name != layout.TRACE_JSON:
            changed += write_if_changed(base / name, data, sync=False)
    hist = base / layout.HISTORY
    if hist.is_dir():
        keep = {n.split("/", 1)[1] for n in files if n.startswith(layout.HISTORY + "/")}
        for name in os.listdir(hist):
            if name not in keep:
                os.unlink(hist / name)
                changed += 1
    changed += write_if_changed(base / layout.TRACE_JSON, files[layout.TRACE_JSON], sync=False)
    return changed, files[layout.TRACE_JSON]
