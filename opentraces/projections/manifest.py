"""``manifest.json`` and its row shards: one row per trace, a summary, a machine-neutral digest.

Rows live in 256 shards, ``manifest/<hh>.json`` (``hh`` = the first two hex
characters of the trace id), so a capture rewrites the shards of the traces
it touched, not every row. ``manifest.json`` holds what is small and
constant-size: the digest of each shard, the bucket digest over them, the
summary (counts, kept up to date by difference) and the project names.

``digest = sha256(canonical {schema_version, shards: {hh: shard digest}})``;
a shard's digest is ``sha256(canonical {schema_version, traces: rows})``.
Rows hold only event-derived content, so buckets holding the same events
have the same digest on every machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import orjson

from .. import layout
from ..encoding import address, canonical_json, pretty_json
from ..errors import CorruptionError, RefusedError

MANIFEST_SCHEMA = "opentraces.bucket.manifest.v1.1"
SHARD_SCHEMA = "opentraces.bucket.manifest-shard.v1"
OLD_SCHEMA = "opentraces.bucket.manifest.v1"  # rows inline: repair rewrites it
REFERENCE_SCHEMA = "opentraces.bucket.manifest.v2"  # PyPI opentraces 0.4.x


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
        **_security_row(record),
    }


def _security_row(record: dict[str, Any]) -> dict[str, Any]:
    """The row's ``security`` summary (what the push gate reads); absent on an unfiltered trace."""
    meta = (record.get("metadata") or {}).get("security")
    if not meta:
        return {}
    risk = meta.get("risk") or {}
    return {"security": {"policy": meta.get("policy"), "tools": meta.get("tools") or [], "version": meta.get("version"),
                         "flagged": bool(risk.get("flagged")) and not risk.get("cleared"),
                         "score": risk.get("score")}}


def shard_of(trace_id: str) -> str:
    return trace_id[:2]


def sort_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["project"], r["trace_id"]))


def shard_digest(rows: list[dict[str, Any]]) -> str:
    return address(canonical_json({"schema_version": SHARD_SCHEMA, "traces": sort_rows(rows)}))


def encode_shard(rows: list[dict[str, Any]]) -> bytes:
    return pretty_json({"schema_version": SHARD_SCHEMA, "traces": sort_rows(rows)})


def digest_of(shards: dict[str, str]) -> str:
    return address(canonical_json({"schema_version": MANIFEST_SCHEMA, "shards": dict(sorted(shards.items()))}))


def _empty_summary() -> dict[str, Any]:
    return {"trace_count": 0, "project_count": 0, "projects": {}, "agents": {}, "event_count": 0,
            "patch_count": 0, "anchored_count": 0}


def adjust_summary(summary: dict[str, Any] | None, removed: Iterable[dict[str, Any]],
                   added: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The summary with ``removed`` rows taken out and ``added`` rows put in (cost of the change)."""
    s = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (summary or _empty_summary()).items()}
    s.pop("batches", None)
    for sign, rows in ((-1, removed), (1, added)):
        for r in rows:
            s["trace_count"] += sign
            for key, name in (("projects", r["project"]), ("agents", r["agent"])):
                s[key][name] = s[key].get(name, 0) + sign
                if s[key][name] == 0:
                    del s[key][name]
            s["event_count"] += sign * r["events"]
            s["patch_count"] += sign * r["patches"]
            s["anchored_count"] += sign * r["anchored"]
            if r.get("security"):
                _count_security(s, r["security"], sign)
    s["project_count"] = len(s["projects"])
    return s


def security_stamp(sec: dict[str, Any]) -> str:
    """``<security version>|<tools, comma-separated>``: what filtered a trace, as one key."""
    return f"{sec.get('version')}|{','.join(sorted(sec.get('tools') or []))}"


def _count_security(s: dict[str, Any], sec: dict[str, Any], sign: int) -> None:
    """Keep ``summary.security`` (traces per stamp, flagged count) so the push gate's state is
    known from the head alone; the key exists only once a filtered trace does."""
    cur = s.get("security") or {"stamps": {}, "flagged": 0}
    cur = {"stamps": dict(cur.get("stamps") or {}), "flagged": cur.get("flagged", 0)}
    stamp = security_stamp(sec)
    cur["stamps"][stamp] = cur["stamps"].get(stamp, 0) + sign
    if cur["stamps"][stamp] == 0:
        del cur["stamps"][stamp]
    cur["flagged"] += sign * bool(sec.get("flagged"))
    if cur["stamps"] or cur["flagged"]:
        s["security"] = {"stamps": dict(sorted(cur["stamps"].items())), "flagged": cur["flagged"]}
    else:
        s.pop("security", None)


def build_head(shards: dict[str, str], summary: dict[str, Any], index_summary: dict[str, Any],
               names: dict[str, Any]) -> dict[str, Any]:
    shards = {k: v for k, v in sorted(shards.items())}
    return {
        "schema_version": MANIFEST_SCHEMA,
        "digest": digest_of(shards),
        "names": names,
        "shards": shards,
        "summary": {**summary, "batches": index_summary},
    }


def build_manifest(rows: list[dict[str, Any]], index_summary: dict[str, Any],
                   names: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(manifest.json document, {shard path: bytes}) for the full set of rows."""
    by_shard: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_shard.setdefault(shard_of(r["trace_id"]), []).append(r)
    files = {shard_path(hh): encode_shard(rs) for hh, rs in by_shard.items()}
    shards = {hh: shard_digest(rs) for hh, rs in by_shard.items()}
    return build_head(shards, adjust_summary(None, [], rows), index_summary, names), files


def shard_path(hh: str) -> str:
    return f"{layout.MANIFEST_SHARDS}/{hh}.json"


def encode(manifest: dict[str, Any]) -> bytes:
    return pretty_json(manifest)


def check_schema(doc: Any, path: Path) -> None:
    schema = doc.get("schema_version") if isinstance(doc, dict) else None
    if schema == REFERENCE_SCHEMA:
        raise RefusedError(
            f"{path.parent} is a bucket written by the reference implementation (PyPI opentraces 0.4.x, {REFERENCE_SCHEMA}); it was left untouched",
            "point --bucket at a new folder and capture the sessions again",
        )
    if schema not in (MANIFEST_SCHEMA, OLD_SCHEMA):
        raise CorruptionError(f"{path} has unknown schema {schema!r}", "run 'opentraces bucket repair'")


def read_manifest(path: Path) -> dict[str, Any] | None:
    """manifest.json as stored (no rows); an old inline-rows manifest is returned as is."""
    try:
        data = path.read_bytes()  # constant size since rows moved to shards
    except FileNotFoundError:
        return None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise CorruptionError(f"{path} is not valid JSON", "run 'opentraces bucket repair'") from None
    check_schema(doc, path)
    return doc


def read_head(path: Path) -> dict[str, Any] | None:
    """The manifest without rows (an old manifest's inline rows are dropped)."""
    doc = read_manifest(path)
    if doc is not None:
        doc = {k: v for k, v in doc.items() if k != "traces"}
    return doc


def is_current(head: dict[str, Any] | None) -> bool:
    return bool(head) and head.get("schema_version") == MANIFEST_SCHEMA


def read_shard(root: Path, hh: str) -> list[dict[str, Any]]:
    path = root / shard_path(hh)
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except orjson.JSONDecodeError:
        raise CorruptionError(f"{path} is not valid JSON", "run 'opentraces bucket repair'") from None
    if not isinstance(doc, dict) or doc.get("schema_version") != SHARD_SCHEMA or not isinstance(doc.get("traces"), list):
        raise CorruptionError(f"{path} is not a manifest shard", "run 'opentraces bucket repair'")
    return doc["traces"]


def read_rows(root: Path, head: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every row, sorted (project, trace id); reads the shards the head lists."""
    if not head:
        return []
    if head.get("schema_version") == OLD_SCHEMA:
        doc = read_manifest(root / layout.MANIFEST) or {}
        return list(doc.get("traces") or [])
    rows = []
    for hh in sorted(head.get("shards") or {}):
        rows.extend(read_shard(root, hh))
    return sort_rows(rows)


def full_document(root: Path, head: dict[str, Any] | None) -> dict[str, Any] | None:
    """The manifest as ``bucket manifest`` shows it: the head plus every row under ``traces``."""
    if head is None:
        return None
    return {**head, "traces": read_rows(root, head)}
