"""The portable bucket on disk: paths, reads, local state and the writer lock.

``Bucket`` is storage only: it reads canonical files (batches, blobs) and
projections (trace folders, index, manifest) and knows where local state
lives. It imports nothing above it. Every write goes through
``opentraces.writer.writing(bucket)``, which holds the lock and runs
catch-up, commit, projection and the Git mirror in one order.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import orjson

from . import layout, statefiles
from .batches import Batch, list_batch_names, read_batch
from .encoding import loads, pretty_json
from .errors import CorruptionError, NotFoundError, RefusedError
from .fsio import atomic_write, sweep_dead_temps
from .ids import check_component, new_writer_id
from .lock import WriterLock
from .projections import index as index_mod
from .projections import manifest as manifest_mod
from .projections.tracedir import read_trace_events
from .projects import Names

# Paths only an opentraces bucket has (a bare "events/" or ".git" is too common:
# a project checkout or an analytics folder must not be taken for a bucket).
MIRROR_ERROR = statefiles.MIRROR_ERROR
_MARKERS = (layout.EVENTS, layout.TRACES, layout.BLOBS, layout.STATE)


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
        return WriterLock(self.state_dir / statefiles.LOCK, timeout)

    def writer_id(self) -> str:
        """This bucket copy's writer id; a copied bucket gets a fresh one."""
        path = self.state_dir / statefiles.WRITER
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
        """Local state; written without the writer lock too (push records the remote), so a
        process killed mid-write leaves a pid-tagged temp file the next write of it removes."""
        path = self.state_dir / name
        sweep_dead_temps(path)
        atomic_write(path, pretty_json(doc), sync=False, owned=True)

    # -------------------------------------------------------------- reads
    def manifest_head(self) -> dict[str, Any] | None:
        """manifest.json: digest, shard digests, summary, project names (constant size)."""
        return manifest_mod.read_head(self.root / layout.MANIFEST)

    def manifest(self) -> dict[str, Any] | None:
        """The whole manifest, rows included under ``traces`` (reads every shard)."""
        return manifest_mod.full_document(self.root, self.manifest_head())

    def names(self) -> Names:
        """The canonical project names the projections use (docs/FORMATS.md)."""
        head = self.manifest_head()
        return Names((head or {}).get("names"))

    def rows(self) -> list[dict[str, Any]]:
        return manifest_mod.read_rows(self.root, self.manifest_head())

    def shard_rows(self, hh: str) -> list[dict[str, Any]]:
        head = self.manifest_head()
        if not manifest_mod.is_current(head):
            return [r for r in self.rows() if r["trace_id"].startswith(hh)]
        return manifest_mod.read_shard(self.root, hh)

    def find_trace(self, prefix: str) -> dict[str, Any]:
        """The manifest row whose trace id starts with ``prefix`` (like Git short ids)."""
        prefix = prefix.strip().lower()
        if not prefix:
            raise RefusedError("empty trace id", "run 'opentraces trace list'")
        rows = self.shard_rows(prefix[:2]) if len(prefix) >= 2 else self.rows()
        hits = [r for r in rows if r["trace_id"].startswith(prefix)]
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
