"""``bucket import --from PATH``: bring an opentraces 0.4.x home into the bucket.

The reference implementation (PyPI ``opentraces`` 0.4.x) keeps, under its
home (``~/.opentraces``), a bucket whose ``manifest.json`` (schema
``opentraces.bucket.manifest.v2``) lists every trace with its
``trace.json`` (a TraceRecord) and, per trace, a stored raw session
(``objects/raw/v1/sources/<project>/<trace>.json`` naming a blob by its
SHA-256 and the parser that read it).

Each trace comes in one of two ways:

- ``recaptured``: its stored raw session is captured again by our own
  parser (so our fidelity applies: full outputs, patches, context tree),
  under the current security policy like any capture; the trace gets our
  id (``trace_id_for(agent, session id)``), the same one a capture of the
  original file gets, so importing and capturing the same session never
  makes two traces;
- ``record``: no usable raw session (missing, or its bytes do not hash to
  the digest the reference recorded): its TraceRecord is kept, as
  ``trace.started``/``trace.step``/``trace.finished`` events built from the
  record's own fields (steps as they are; ``metadata.imported`` names the
  reference trace id and content hash).

Nothing is ever written under the old home: it is only read, and every
path it names is checked to stay inside it. A second import adds nothing
(events are content-addressed; a recaptured session is unchanged).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from .bucket import Bucket
from .capture import claude_code, codex, pi
from .capture.run import capture_paths
from .errors import OpentracesError, RefusedError
from .events import make_event, normalize_time
from .ids import check_component, trace_id_for
from .writer import writing

MANIFEST_SCHEMA = "opentraces.bucket.manifest.v2"
PARSERS = {"claude-code": claude_code, "claude_code": claude_code, "codex-cli": codex, "codex": codex, "pi": pi}
AGENTS = {"claude-code": "claude-code", "claude_code": "claude-code", "codex-cli": "codex-cli", "codex": "codex-cli",
          "pi": "pi"}
STAGING = "import"  # under the bucket's .state: raw sessions while they are captured, then removed


@dataclass
class ImportReport:
    source: str
    traces: list[dict[str, Any]] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for t in self.traces:
            counts[t["how"]] = counts.get(t["how"], 0) + 1
        return {"source": self.source, "counts": counts, "new_events": sum(t.get("new_events", 0) for t in self.traces),
                "batches": self.batches, "traces": self.traces}


def find_home(path: os.PathLike | str) -> Path:
    """The reference bucket folder under ``path`` (a home or the bucket itself)."""
    base = Path(os.path.abspath(os.path.expanduser(path)))
    for cand in (base / "bucket", base / ".opentraces" / "bucket", base):
        if (cand / "manifest.json").is_file():
            return cand
    raise RefusedError(f"{base} holds no opentraces 0.4.x bucket (no manifest.json there or under bucket/); "
                       "pass the reference home, e.g. --from ~/.opentraces")


def _inside(root: Path, rel: Any) -> Path | None:
    """``root/rel`` when ``rel`` is a relative path that stays inside ``root`` (links followed)."""
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or "\x00" in rel:
        return None
    full = (root / rel).resolve()
    real_root = root.resolve()
    return full if full.is_relative_to(real_root) and full != real_root else None


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


def read_manifest(bucket_dir: Path) -> list[dict[str, Any]]:
    doc = _read_json(bucket_dir / "manifest.json")
    if not isinstance(doc, dict):
        raise RefusedError(f"{bucket_dir / 'manifest.json'} is not a JSON object; is this an opentraces 0.4.x home?")
    if doc.get("schema_version") != MANIFEST_SCHEMA:
        raise RefusedError(f"{bucket_dir / 'manifest.json'} has schema {doc.get('schema_version')!r}, "
                           f"not {MANIFEST_SCHEMA} (opentraces 0.4.x)")
    traces = doc.get("traces")
    if isinstance(traces, dict):
        traces = list(traces.values())
    return [t for t in traces or [] if isinstance(t, dict)]


def _raw_session(bucket_dir: Path, slug: str, ref_id: str) -> tuple[bytes, dict[str, Any]] | str:
    """(bytes, source record) of a trace's stored raw session, or why there is none."""
    meta_path = _inside(bucket_dir, f"objects/raw/v1/sources/{slug}/{ref_id}.json")
    meta = _read_json(meta_path) if meta_path is not None else None
    if not isinstance(meta, dict):
        return "no stored raw session"
    blob = _inside(bucket_dir, meta.get("blob_path"))
    if blob is None or not blob.is_file():
        return "its raw session blob is missing"
    data = blob.read_bytes()
    digest = meta.get("content_digest")
    if not isinstance(digest, str) or digest.removeprefix("sha256:") != hashlib.sha256(data).hexdigest():
        return "its raw session does not hash to the digest the reference recorded"
    if meta.get("parser") not in PARSERS:
        return f"raw session of an agent we do not parse ({meta.get('parser')!r})"
    return data, meta


def _record_events(rec: dict[str, Any], slug: str, ref_id: str) -> tuple[str, list[dict]]:
    """Our events for a TraceRecord kept as it is."""
    agent = AGENTS.get(str((rec.get("agent") or {}).get("name")), str((rec.get("agent") or {}).get("name") or "unknown"))
    sid = rec.get("session_id")
    if not isinstance(sid, str) or not sid:
        raise RefusedError("its trace.json has no session_id")
    check_component(sid, "session id")
    trace_id = trace_id_for(agent, sid)
    start = normalize_time(rec.get("timestamp_start")) or normalize_time(rec.get("timestamp_end"))
    if start is None:
        raise RefusedError("its trace.json has no timestamps")
    end = normalize_time(rec.get("timestamp_end")) or start
    events = [make_event("trace.started", slug, trace_id, None, start, {"agent": agent, "session_id": sid})]
    steps = [s for s in rec.get("steps") or [] if isinstance(s, dict) and isinstance(s.get("step_index"), int)]
    for st in steps:
        record = {k: v for k, v in st.items() if k not in ("context_node_id", "snippets")}
        events.append(make_event("trace.step", slug, trace_id, st["step_index"],
                                 normalize_time(st.get("timestamp")) or start, {"record": record, "rev": 1}))
    task = rec.get("task") or {}
    vcs = (rec.get("environment") or {}).get("vcs") or {}
    outcome = rec.get("outcome") or {}
    meta = dict(rec.get("metadata") or {})
    meta["imported"] = {"from": "opentraces 0.4.x", "trace_id": ref_id, "content_hash": rec.get("content_hash"),
                        "schema_version": rec.get("schema_version")}
    finished = {
        "rev": len(steps), "agent_version": (rec.get("agent") or {}).get("version"),
        "model": (rec.get("agent") or {}).get("model"), "task": task.get("description"),
        "git_branch": vcs.get("branch"), "git_commit": vcs.get("base_commit") or task.get("base_commit"),
        "cwd": None, "success": outcome.get("success"), "terminal_state": outcome.get("terminal_state"),
        "metadata": meta, "context": {}, "skipped_lines": 0,
    }
    if task.get("repository_url"):
        finished["repository_url"] = task["repository_url"]
    events.append(make_event("trace.finished", slug, trace_id, None, end, finished))
    return trace_id, events


def import_reference(bucket: Bucket, source: os.PathLike | str, *, security: Any = None,
                     lock_timeout: float = 30.0,
                     progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Import every trace of the opentraces 0.4.x home at ``source``; see the module docstring."""
    home = find_home(source)
    entries = read_manifest(home)
    report = ImportReport(str(home))
    staged: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    stage = bucket.root / ".state" / STAGING
    records: list[tuple[dict[str, Any], str, list[dict]]] = []
    try:
        for i, t in enumerate(entries):
            if progress:
                progress(i, len(entries))
            row: dict[str, Any] = {"reference_trace_id": t.get("trace_id"), "agent": t.get("agent_name")}
            report.traces.append(row)
            try:
                ref_id = check_component(t.get("trace_id"), "trace id")
                slug = check_component(t.get("project_slug"), "project")
            except OpentracesError as exc:
                row.update(how="skipped", reason=str(exc))
                continue
            raw = _raw_session(home, slug, ref_id)
            if isinstance(raw, tuple):
                data, meta = raw
                name = os.path.basename(str(meta.get("source_basename") or f"{ref_id}.jsonl")) or f"{ref_id}.jsonl"
                folder = stage / hashlib.sha256(data).hexdigest()[:32]
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / name
                path.write_bytes(data)
                staged.setdefault(meta["parser"], []).append((path, row))
                row["how"] = "recaptured"
                continue
            rec_path = _inside(home, t.get("trace_path"))
            rec = _read_json(rec_path) if rec_path is not None else None
            if not isinstance(rec, dict):
                row.update(how="skipped", reason=f"{raw}, and no readable trace.json")
                continue
            try:
                trace_id, events = _record_events(rec, slug, ref_id)
            except OpentracesError as exc:
                row.update(how="skipped", reason=f"{raw}; {exc}")
                continue
            row.update(how="record", reason=raw, trace_id=trace_id, project=slug)
            records.append((row, slug, events))
        for parser, items in staged.items():
            rep = capture_paths(bucket, PARSERS[parser], [p for p, _ in items], lock_timeout=lock_timeout,
                                security=security)
            report.batches += rep.batches
            by_path = {c["path"]: c for c in rep.captured}
            skipped = {s["path"]: s["reason"] for s in rep.skipped}
            for path, row in items:
                got = by_path.get(str(path))
                if got is not None:
                    row.update(trace_id=got["trace_id"], project=got["project"], new_events=got["new_events"])
                elif str(path) in skipped:
                    row.update(how="skipped", reason=skipped[str(path)])
                else:
                    row.update(new_events=0, unchanged=True)
        if records:
            _commit_records(bucket, records, report, lock_timeout)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if progress:
        progress(len(entries), len(entries))
    return report


def _commit_records(bucket: Bucket, records: list[tuple[dict[str, Any], str, list[dict]]], report: ImportReport,
                    lock_timeout: float) -> None:
    with writing(bucket, lock_timeout) as writer:
        names = bucket.names()
        new: list[dict] = []
        seen: set[str] = set()
        for row, slug, events in records:
            seen.update(e["event_id"] for e in bucket.trace_events(names.canonical(slug), row["trace_id"]))
            fresh = [e for e in events if e["event_id"] not in seen]
            seen.update(e["event_id"] for e in fresh)
            row["new_events"] = len(fresh)
            new += fresh
        if new:
            res = writer.commit(new)
            if res.batch:
                report.batches.append(res.batch)
