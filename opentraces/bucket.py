"""The portable bucket: canonical events + blobs on disk, and their projections.

``Bucket`` is the library API the CLI wraps. Reads never lock and never
write. Writes happen under the single writer lock and follow one order:
blobs, then the batch file (the commit point), then projections (trace
folders, index, manifest). A crash at any point leaves either the old state
or committed events whose projections ``catch_up``/``repair`` complete.
"""

from __future__ import annotations

import os
import socket
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import orjson

from . import layout
from .batches import Batch, BatchError, BatchHeader, encode_batch, list_batch_names, read_batch, write_batch
from .blobs import PendingBlobs
from .encoding import loads, pretty_json
from .errors import CorruptionError, NotFoundError, RefusedError
from .fsio import atomic_write, write_if_changed, write_many_new
from .ids import check_component, new_writer_id
from .lock import WriterLock
from .projections import index as index_mod
from .projections import manifest as manifest_mod
from .projections.tracedir import read_trace_events, write_trace

# Paths only an opentraces bucket has (a bare "events/" or ".git" is too common:
# a project checkout or an analytics folder must not be taken for a bucket).
MIRROR_ERROR = "mirror-error.json"  # in .state/: why the last mirror update failed
_MARKERS = (layout.EVENTS, layout.TRACES, layout.BLOBS, layout.STATE)


@dataclass
class CommitResult:
    batch: str | None = None
    events: int = 0
    blobs_written: int = 0
    traces: list[tuple[str, str]] = field(default_factory=list)


class Bucket:
    def __init__(self, root: str | os.PathLike, *, mirror: bool = True):
        self.root = Path(os.path.abspath(root))
        self.mirror = mirror

    # ----------------------------------------------------------- identity
    @classmethod
    def open(cls, root: str | os.PathLike, *, mirror: bool = True) -> "Bucket":
        b = cls(root, mirror=mirror)
        b.check()
        return b

    def exists(self) -> bool:
        return (self.root / layout.EVENTS).is_dir() or (self.root / layout.MANIFEST).is_file()

    def check(self) -> None:
        """Refuse a folder that is not ours (or a reference-implementation bucket)."""
        if not self.root.exists():
            return
        if not self.root.is_dir():
            raise RefusedError(f"{self.root} is not a folder", "pass --bucket with a bucket folder")
        ours = any((self.root / m).exists() for m in _MARKERS)
        manifest = self.root / layout.MANIFEST
        if manifest.is_file():
            try:
                manifest_mod.read_head(manifest)  # raises on a reference-implementation bucket
                ours = True
            except CorruptionError:
                pass  # damaged: ours only if the markers say so (then repair rewrites it)
        names = set(os.listdir(self.root)) - {layout.GIT}
        if names and not ours:
            raise RefusedError(
                f"{self.root} is not an opentraces bucket (it holds other files)",
                "pass --bucket with an empty folder or an existing bucket",
            )

    # -------------------------------------------------------------- state
    @property
    def state_dir(self) -> Path:
        return self.root / layout.STATE

    def lock(self, timeout: float = 30.0) -> WriterLock:
        return WriterLock(self.state_dir / "lock", timeout)

    def writer_id(self) -> str:
        """This bucket copy's writer id; a copied bucket gets a fresh one."""
        path = self.state_dir / "writer.json"
        # the root as text JSON can hold (a path with undecodable bytes is escaped)
        here = {"bucket": os.fsencode(self.root).decode("utf-8", "backslashreplace"), "host": socket.gethostname()}
        try:
            doc = loads(path.read_bytes())
            if doc.get("bucket") == here["bucket"] and doc.get("host") == here["host"]:
                return check_component(doc["writer"], "writer id")
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            pass
        doc = {"writer": new_writer_id(), **here}
        atomic_write(path, pretty_json(doc))
        return doc["writer"]

    def read_state(self, name: str) -> Any:
        try:
            return loads((self.state_dir / name).read_bytes())
        except (FileNotFoundError, ValueError):
            return None

    def write_state(self, name: str, doc: Any) -> None:
        atomic_write(self.state_dir / name, pretty_json(doc), sync=False)

    # -------------------------------------------------------------- reads
    def manifest(self) -> dict[str, Any] | None:
        return manifest_mod.read_manifest(self.root / layout.MANIFEST)

    def manifest_head(self) -> dict[str, Any] | None:
        return manifest_mod.read_head(self.root / layout.MANIFEST)

    def rows(self) -> list[dict[str, Any]]:
        m = self.manifest()
        return list(m["traces"]) if m else []

    def find_trace(self, prefix: str) -> dict[str, Any]:
        """The manifest row whose trace id starts with ``prefix`` (like Git short ids)."""
        prefix = prefix.strip().lower()
        if not prefix:
            raise RefusedError("empty trace id", "run 'opentraces trace list'")
        hits = [r for r in self.rows() if r["trace_id"].startswith(prefix)]
        if not hits:
            raise NotFoundError(f"no trace matches {prefix!r}", "run 'opentraces trace list'")
        if len(hits) > 1:
            ids = ", ".join(r["trace_id"][:12] for r in hits[:5])
            raise RefusedError(f"trace id {prefix!r} is ambiguous ({len(hits)} traces: {ids})",
                               "give more characters of the trace id")
        return hits[0]

    def trace_path(self, project: str, trace_id: str) -> Path:
        return self.root / layout.trace_dir(project, trace_id)

    def trace_events(self, project: str, trace_id: str) -> list[dict[str, Any]]:
        try:
            return read_trace_events(self.trace_path(project, trace_id))
        except ValueError:
            raise CorruptionError(f"a companion file of trace {trace_id} is damaged",
                                  "run 'opentraces bucket repair'") from None

    def trace_record(self, project: str, trace_id: str) -> dict[str, Any]:
        path = self.trace_path(project, trace_id) / layout.TRACE_JSON
        try:
            return orjson.loads(path.read_bytes())
        except FileNotFoundError:
            raise NotFoundError(f"trace {trace_id} has no trace.json", "run 'opentraces bucket repair'") from None
        except orjson.JSONDecodeError:
            raise CorruptionError(f"{path} is not valid JSON", "run 'opentraces bucket repair'") from None

    def index(self) -> dict[str, Any] | None:
        return index_mod.read_index(self.root)

    def batch_names(self) -> list[str]:
        return list_batch_names(self.root / layout.BATCHES)

    def read_batch(self, name: str) -> Batch:
        return read_batch(self.root / layout.BATCHES / name)

    # ------------------------------------------------------------- writes
    def commit(self, events: list[dict[str, Any]], blobs: PendingBlobs | None = None) -> CommitResult:
        """Append ``events`` as one batch (caller holds the lock and ran catch_up)."""
        result = CommitResult()
        if blobs is not None and blobs.items:
            result.blobs_written = write_many_new([(self.root / rel, data) for rel, data in blobs.items.items()])
        if not events:
            return result
        index = self.index() or index_mod.build_index([])
        writer = self.writer_id()
        head = index["writers"].get(writer)
        seq = head["seq"] + 1 if head else 1
        prev = head["head"] if head else None
        name, digest, data = encode_batch(writer, seq, prev, events)
        write_batch(self.root / layout.BATCHES, name, data)
        self.write_state("last-batch.json", {"name": name})
        batch = Batch(name, BatchHeader(writer, seq, prev, len(events)), digest, events)
        result.batch = name
        result.events = len(events)
        result.traces = self._project_batches([batch], index)
        return result

    def catch_up(self) -> int:
        """Project committed batches that the projections do not yet include."""
        index = self.index()
        names = self.batch_names()
        if index is None:
            if not names and not (self.root / layout.MANIFEST).exists():
                return 0
            from .maintenance.repair import repair

            repair(self)
            return len(names)
        known = {e["name"] for e in index["batches"]}
        missing = [n for n in names if n not in known]
        if not missing:
            if index["batch_count"] and not self._manifest_matches(index):
                # a crash between index.json and manifest.json (or a deleted
                # manifest): rows of the last batch are missing; re-project
                from .maintenance.repair import repair

                repair(self)
            elif self.mirror and index["batch_count"]:
                self._catch_up_mirror()
            return 0
        batches = []
        for n in missing:
            try:
                batches.append(self.read_batch(n))
            except (BatchError, OSError) as exc:
                raise CorruptionError(f"batch {n} is damaged ({exc})", "run 'opentraces bucket verify --full'") from None
        self._project_batches(batches, index)
        return len(missing)

    def _catch_up_mirror(self) -> None:
        """Rebuild the Git mirror if a crash left it behind the manifest."""
        from .gitmirror.state import recorded_state

        head = self.manifest_head() or {}
        if recorded_state(self, head.get("digest"))["state"] != "current":
            self.update_mirror([], [], full=True)

    def _manifest_matches(self, index: dict[str, Any]) -> bool:
        """Whether manifest.json was written for exactly this index (head read only)."""
        try:
            head = self.manifest_head()
        except CorruptionError:
            return False
        return bool(head) and (head.get("summary") or {}).get("batches") == index_mod.summary(index)

    def _project_batches(self, batches: list[Batch], index: dict[str, Any]) -> list[tuple[str, str]]:
        by_trace: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for b in batches:
            for ev in b.events:
                by_trace[(ev["project"], ev["trace_id"])].append(ev)
        rows = {}
        for (project, trace_id), evs in sorted(by_trace.items()):
            merged = {e["event_id"]: e for e in self.trace_events(project, trace_id)}
            for e in evs:
                merged.setdefault(e["event_id"], e)
            _, trace_json = write_trace(self.root, project, trace_id, list(merged.values()))
            rows[(project, trace_id)] = manifest_mod.trace_row(
                project, trace_id, orjson.loads(trace_json), trace_json, len(merged))
        entries = index["batches"] + [index_mod.entry(b) for b in batches]
        new_index = index_mod.build_index(entries)
        atomic_write(self.root / layout.INDEX, index_mod.encode(new_index), sync=False)
        current = self.manifest()
        old_rows = {(r["project"], r["trace_id"]): r for r in (current["traces"] if current else [])}
        old_rows.update(rows)
        self.write_manifest(list(old_rows.values()), new_index)
        self.update_mirror(batches, sorted(by_trace))
        return sorted(by_trace)

    def update_mirror(self, batches: list[Batch], traces: list[tuple[str, str]], *, full: bool = False,
                      scan=None) -> dict | None:
        """Refresh the Git mirror; a failure leaves it behind (status says so), never the bucket."""
        if not self.mirror:
            return None
        from .gitmirror.mirror import update_mirror

        try:
            result = update_mirror(self, batches, traces, full=full, scan=scan)
        except Exception as exc:  # the events are committed; the mirror catches up next time
            self.write_state(MIRROR_ERROR, {"error": f"{type(exc).__name__}: {exc}"})
            return {"error": str(exc)}
        (self.state_dir / MIRROR_ERROR).unlink(missing_ok=True)
        return result

    def write_manifest(self, rows: Iterable[dict[str, Any]], index: dict[str, Any]) -> bool:
        doc = manifest_mod.build_manifest(list(rows), index_mod.summary(index))
        return write_if_changed(self.root / layout.MANIFEST, manifest_mod.encode(doc), sync=False)
