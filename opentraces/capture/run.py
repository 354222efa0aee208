"""A capture run: session files in, one or more committed batches out.

Under the writer lock: catch up projections, then for each file parse it,
build its events, drop the events the bucket already holds, and commit
what is new (blobs first, then the batch). Re-capturing an unchanged
session writes nothing; a grown session appends only its new part.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from .. import cursors as cursors_mod, statefiles
from ..blobs import PendingBlobs
from ..bucket import Bucket
from ..writer import writing
from ..errors import OpentracesError
from ..events import make_event
from ..ids import trace_id_for
from ..project import Project, resolve_project
from .emit import session_events
from .session import SessionParseError

if TYPE_CHECKING:
    from ..security.tools import CaptureFilter

MAX_BATCH_EVENTS = 50_000
MAX_BATCH_BYTES = 64 * 1024 * 1024
CURSORS = statefiles.CURSORS
REPOS = statefiles.REPOS


@dataclass
class CaptureReport:
    captured: list[dict[str, Any]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    events: int = 0
    blobs_written: int = 0
    lines_skipped: int = 0
    anchors: list[dict[str, Any]] = field(default_factory=list)  # per project: anchor search counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "captured": self.captured, "unchanged": self.unchanged, "skipped": self.skipped,
            "batches": self.batches, "events": self.events, "blobs_written": self.blobs_written,
            "lines_skipped": self.lines_skipped, "anchors": self.anchors,
        }


class _Pending:
    def __init__(self) -> None:
        self.events: list[dict] = []
        self.ids: set[str] = set()
        self.blobs = PendingBlobs()
        self.size = 0
        self.traces: set[tuple[str, str]] = set()

    def add(self, key: tuple[str, str], events: list[dict], blobs: PendingBlobs) -> int:
        n = 0
        for ev in events:
            if ev["event_id"] not in self.ids:
                self.ids.add(ev["event_id"])
                self.events.append(ev)
                n += 1
        for rel, data in blobs.items.items():
            if rel not in self.blobs.items:
                self.blobs.items[rel] = data
                self.size += len(data)
        self.traces.add(key)
        return n


def _stored_prefix(bucket: Bucket, cur: dict[str, Any] | None):
    """Reads the first ``m`` redacted bytes of the file ``cur`` describes back from the bucket."""
    if not cur or "redaction" not in cur:
        return None

    def read(m: int) -> bytes | None:
        from ..blobs import stored_source

        try:
            sources = [e for e in bucket.trace_events(cur["project"], cur["trace"]) if e["kind"] == "source.captured"]
            if not sources:
                return None
            data, _ = stored_source(bucket.root, sources)
        except (OpentracesError, ValueError, OSError):
            return None
        return data[:m] if len(data) >= m else None

    return read


def _project_for(parsed, project_dir: str | None, cwd: str | None) -> Project:
    if project_dir:
        return resolve_project(project_dir)
    if cwd and os.path.isabs(cwd):
        return resolve_project(cwd)
    # no cwd, or a relative one: never resolve it against where capture runs
    return resolve_project("/unknown-project")


def capture_paths(
    bucket: Bucket,
    agent: ModuleType,
    paths: list[Path],
    *,
    project_dir: str | None = None,
    lock_timeout: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
    security: "CaptureFilter | None" = None,
) -> CaptureReport:
    """Capture ``paths``; with ``security`` each file's bytes are redacted
    before they are parsed, so nothing unfiltered reaches an event, a blob or
    the mirror, and each captured trace gets a ``security.filtered`` event."""
    report = CaptureReport()
    with writing(bucket, lock_timeout) as writer:
        cursors = cursors_mod.read(bucket.root)
        repos = bucket.read_state(REPOS) or {}
        pending = _Pending()
        names = bucket.names()
        batch_ids: set[str] | None = None

        def flush() -> None:
            nonlocal pending, names
            if pending.events or pending.blobs.items:
                res = writer.commit(pending.events, pending.blobs)
                if res.batch:
                    report.batches.append(res.batch)
                report.blobs_written += res.blobs_written
            pending = _Pending()
            names = bucket.names()  # a commit may have named a repository (docs/FORMATS.md)

        for i, path in enumerate(paths):
            if progress:
                progress(i, len(paths))
            key = os.path.abspath(path)
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:  # undecodable bytes in the name: JSON and events cannot hold it
                shown = os.fsencode(path).decode("utf-8", "backslashreplace")
                report.skipped.append({"path": shown, "reason": "the file name is not valid UTF-8; rename the file to capture it"})
                continue
            try:
                st = os.stat(path)
                if stat.S_ISDIR(st.st_mode):
                    os.listdir(path)  # raises for the unreadable folder a walk had to pass over
                    report.skipped.append({"path": str(path), "reason": "a folder; pass its session files"})
                    continue
                if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read (and the lock) forever
                    report.skipped.append({"path": str(path), "reason": "not a regular file (a FIFO, socket or device); capture reads regular files only"})
                    continue
                cur = cursors.get(key)
                if cursors_mod.unchanged(bucket.root, cur, st):
                    report.unchanged.append(str(path))
                    continue
                data = Path(path).read_bytes()
            except OSError as exc:
                report.skipped.append({"path": str(path), "reason": f"unreadable: {exc.strerror or exc}"})
                continue
            red = None
            original = data
            if security is not None:
                red = security.run(data, (cur or {}).get("redaction"), prefix=_stored_prefix(bucket, cur))
                data = red.data
            try:
                parsed = agent.parse(data, Path(path).name)
                real_cwd = security.unmask_home(parsed.cwd, red.users) if red is not None else parsed.cwd
                project = _project_for(parsed, project_dir, real_cwd)
                trace_id = trace_id_for(parsed.agent, parsed.session_id)
            except (SessionParseError, OpentracesError) as exc:
                report.skipped.append({"path": str(path), "reason": str(exc)})
                continue
            tkey = (project.slug, trace_id)
            if project.root_commit and repos.get(project.slug) != project.root:
                repos[project.slug] = project.root
            if tkey in pending.traces:
                flush()  # the same session twice: let the second see the first
            canon = names.canonical(project.slug)
            existing = bucket.trace_events(canon, trace_id)
            if not existing and tkey not in pending.traces:
                if any(r["trace_id"] == trace_id for r in bucket.shard_rows(trace_id[:2])):
                    # its trace folder was deleted: re-project from the batches
                    # first, so old events are not committed again
                    writer.repair()
                    names = bucket.names()
                    canon = names.canonical(project.slug)
                    existing = bucket.trace_events(canon, trace_id)
            if writer.orphans:  # a lost batch's events are in the folders but in no batch: emit them again
                if batch_ids is None:
                    from ..maintenance.scan import scan_batches

                    batch_ids = {eid for evs in scan_batches(bucket).by_trace.values() for eid in evs}
                existing = [e for e in existing if e["event_id"] in batch_ids]
            have = {e["event_id"] for e in existing}
            seen_as = project if security is None else replace(
                project, root=security.mask_home(project.root),
                repository_url=security.redactor.redact_text(project.repository_url) if project.repository_url else None)
            events, blobs = session_events(parsed, data, Path(path).name, seen_as, trace_id, existing)
            if red is not None:
                events.append(make_event("security.filtered", project.slug, trace_id, None, parsed.ended_at,
                                         security.payload(red)))
            new = [e for e in events if e["event_id"] not in have]
            report.lines_skipped += len(parsed.skipped)
            cursors[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "project": canon, "trace": trace_id}
            if red is not None:
                cursors[key]["redaction"] = security.cursor(original, red)
            if not new:
                report.unchanged.append(str(path))
                continue
            added = pending.add(tkey, new, blobs)
            report.events += added
            report.captured.append({"path": str(path), "trace_id": trace_id, "project": project.slug,
                                    "session_id": parsed.session_id, "new_events": added,
                                    "skipped_lines": [list(s) for s in parsed.skipped]})
            if len(pending.events) >= MAX_BATCH_EVENTS or pending.size >= MAX_BATCH_BYTES:
                flush()
        flush()
        bucket.write_state(CURSORS, cursors)
        if repos != (bucket.read_state(REPOS) or {}):
            bucket.write_state(REPOS, repos)
        from ..anchors import anchor_captured  # after the batches, still under the lock

        report.anchors = anchor_captured(writer, repos, report.captured)
        if progress:
            progress(len(paths), len(paths))
    return report
