"""``manifest.json``: one row per trace, a summary, a machine-neutral digest.

Keys are written sorted, so the small ``summary`` block always precedes the
``traces`` rows: ``bucket status`` reads only the head of the file and its
cost does not grow with the number of traces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from .. import layout
from ..encoding import address, canonical_json, pretty_json
from ..errors import CorruptionError, RefusedError

MANIFEST_SCHEMA = "opentraces.bucket.manifest.v1"
REFERENCE_SCHEMA = "opentraces.bucket.manifest.v2"  # PyPI opentraces 0.4.x
_TRACES_KEY = b'\n  "traces": '
_HEAD_LIMIT = 4 * 1024 * 1024


def trace_row(project: str, trace_id: str, record: dict[str, Any], trace_json: bytes, events: int) -> dict[str, Any]:
    patches = record.get("patches") or []
    task = (record.get("task") or {}).get("description") or ""
    title = " ".join(task.split())[:80]
    return {
        "project": project,
        "trace_id": trace_id,
        "agent": record["agent"]["name"],
        "model": record["agent"].get("model"),
        "session_id": record["session_id"],
        "title": title,
        "started": record.get("timestamp_start"),
        "ended": record.get("timestamp_end"),
        "steps": len(record.get("steps") or []),
        "patches": len(patches),
        "anchored": sum(1 for p in patches if (p.get("anchor") or {}).get("found")),
        "nodes": (record.get("context_tree_summary") or {}).get("node_count", 0),
        "events": events,
        "path": f"{layout.trace_dir(project, trace_id)}/{layout.TRACE_JSON}",
        "record": address(trace_json),
    }


def digest_of(rows: list[dict[str, Any]]) -> str:
    """Machine-neutral: only rows, which hold only event-derived content."""
    return address(canonical_json({"schema_version": MANIFEST_SCHEMA, "traces": rows}))


def build_manifest(rows: list[dict[str, Any]], index_summary: dict[str, Any]) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: (r["project"], r["trace_id"]))
    projects: dict[str, int] = {}
    agents: dict[str, int] = {}
    for r in rows:
        projects[r["project"]] = projects.get(r["project"], 0) + 1
        agents[r["agent"]] = agents.get(r["agent"], 0) + 1
    return {
        "schema_version": MANIFEST_SCHEMA,
        "digest": digest_of(rows),
        "summary": {
            "trace_count": len(rows),
            "project_count": len(projects),
            "projects": projects,
            "agents": agents,
            "event_count": sum(r["events"] for r in rows),
            "patch_count": sum(r["patches"] for r in rows),
            "anchored_count": sum(r["anchored"] for r in rows),
            "batches": index_summary,
        },
        "traces": rows,
    }


def encode(manifest: dict[str, Any]) -> bytes:
    return pretty_json(manifest)


def check_schema(doc: Any, path: Path) -> None:
    schema = doc.get("schema_version") if isinstance(doc, dict) else None
    if schema == REFERENCE_SCHEMA:
        raise RefusedError(
            f"{path.parent} is a bucket written by the reference implementation (PyPI opentraces 0.4.x, {REFERENCE_SCHEMA}); it was left untouched",
            "point --bucket at a new folder and capture the sessions again",
        )
    if schema != MANIFEST_SCHEMA:
        raise CorruptionError(f"{path} has unknown schema {schema!r}", "run 'opentraces bucket repair'")


def read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise CorruptionError(f"{path} is not valid JSON", "run 'opentraces bucket repair'") from None
    check_schema(doc, path)
    return doc


def read_head(path: Path) -> dict[str, Any] | None:
    """The manifest without its rows, reading only the start of the file."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    with f:
        buf = b""
        while len(buf) < _HEAD_LIMIT:
            chunk = f.read(16384)
            buf += chunk
            cut = buf.find(_TRACES_KEY)
            if cut >= 0:
                head = buf[:cut].rstrip().rstrip(b",") + b"\n}"
                try:
                    doc = orjson.loads(head)
                except orjson.JSONDecodeError:
                    break
                if not isinstance(doc, dict) or "schema_version" not in doc:
                    break  # keys not in our sorted order (e.g. a foreign manifest): read it whole
                check_schema(doc, path)
                return doc
            if not chunk:
                break
    # no recognisable head (foreign or damaged file): fall back to a full read
    doc = read_manifest(path)
    if doc is not None:
        doc = {k: v for k, v in doc.items() if k != "traces"}
    return doc
