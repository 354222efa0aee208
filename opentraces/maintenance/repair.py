"""``bucket repair`` and ``bucket rebuild``: re-project from events + blobs.

Both are idempotent: files are written only when their bytes change, so a
second run writes nothing. Both run through a Writer (the lock is held).
Trace folders left under a project's old name (after the naming rule chose
another name, or a bucket written before the rule) are moved by re-projection
and the old folders removed; a folder whose trace no batch mentions is left
alone (it may hold the only copy of lost events).
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any, Callable

import orjson

from .. import layout
from ..refilters import dropped_events
from ..errors import CorruptionError
from ..fsio import OutsideError, check_inside, write_if_changed
from ..projections import index as index_mod
from ..projections import manifest as manifest_mod
from ..projections.tracedir import render_trace
from .scan import scan_batches

if TYPE_CHECKING:
    from ..writer import Writer

SUBSTRATES = ("trail", "traces", "context-tree", "all")

_FILES: dict[str, Callable[[str], bool]] = {
    "trail": lambda n: n == layout.TRAIL or n.startswith(layout.HISTORY + "/"),
    "context-tree": lambda n: n == layout.CONTEXT,
    "traces": lambda n: n in (layout.TRACE_JSON, layout.SOURCES),
    "all": lambda n: True,
}


def _stale_folders(root, traces: set[tuple[str, str]]) -> list[str]:
    """Trace folders of traces the batches place under another project name."""
    placed = {t for _p, t in traces}
    out = []
    base = root / layout.TRACES
    if not base.is_dir():
        return out
    for project in sorted(os.listdir(base)):
        pdir = base / project
        if not pdir.is_dir():
            continue
        for trace_id in sorted(os.listdir(pdir)):
            if trace_id in placed and (project, trace_id) not in traces:
                out.append(f"{layout.TRACES}/{project}/{trace_id}")
    return out


def rebuild(writer: "Writer", substrate: str = "all", progress=None, *, check_blobs: bool = False) -> dict[str, Any]:
    """Re-project one substrate (or all) from canonical state."""
    if substrate not in SUBSTRATES:
        raise ValueError(substrate)
    bucket = writer.bucket
    want = _FILES[substrate]
    restored = _restore_canonical(bucket, check_blobs) if substrate == "all" else {}
    scan = scan_batches(bucket)
    if scan.damaged:
        # the trace folders may hold the only readable copy of a damaged batch's
        # events: re-projecting without them would destroy it, so refuse
        names = ", ".join(n for n, _ in scan.damaged)
        raise CorruptionError(f"damaged batches ({names}); nothing was rewritten",
                              "run 'opentraces bucket verify --full'")
    if substrate == "all":
        _refuse_orphans(bucket, scan)
    written = 0
    rows = []
    traces = sorted(scan.by_trace)
    for i, (project, trace_id) in enumerate(traces):
        if progress:
            progress(i, len(traces))
        events = list(scan.by_trace[(project, trace_id)].values())
        files = render_trace(trace_id, events)
        try:
            base = check_inside(bucket.root, bucket.root / layout.trace_dir(project, trace_id))
        except OutsideError as exc:
            raise CorruptionError(str(exc), "replace the symbolic link with the folder it stands for") from None
        for name, data in files.items():
            if name != layout.TRACE_JSON and want(name):
                written += write_if_changed(base / name, data, sync=False)
        if want(layout.HISTORY + "/"):
            hist = base / layout.HISTORY
            keep = {n.split("/", 1)[1] for n in files if n.startswith(layout.HISTORY + "/")}
            if hist.is_dir():
                for name in sorted(os.listdir(hist)):
                    if name not in keep:
                        os.unlink(hist / name)
                        written += 1
        if want(layout.TRACE_JSON):
            written += write_if_changed(base / layout.TRACE_JSON, files[layout.TRACE_JSON], sync=False)
        tj = files[layout.TRACE_JSON]
        rows.append(manifest_mod.trace_row(project, trace_id, orjson.loads(tj), tj, len(events)))
    moved = []
    if substrate == "all":
        for rel in _stale_folders(bucket.root, set(traces)):
            if (bucket.root / rel).is_symlink():
                (bucket.root / rel).unlink()  # the link, never what it points at
                moved.append(rel)
                continue
            shutil.rmtree(bucket.root / rel)
            moved.append(rel)
            parent = (bucket.root / rel).parent
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
    index = index_mod.build_index(scan.batches)
    index_written = manifest_written = False
    if substrate in ("all", "trail"):
        index_written = write_if_changed(bucket.root / layout.INDEX, index_mod.encode(index), sync=False)
    if substrate in ("all", "traces"):
        manifest_written = writer.write_full_manifest(rows, index, scan.names)
    mirror = None
    if substrate in ("all", "trail"):
        mirror = writer.update_mirror(scan.batches, traces, full=True, scan=scan, names=scan.names)
    return {
        "substrate": substrate,
        "traces": len(traces),
        "files_written": written + index_written + manifest_written + len(moved),
        "index_written": index_written,
        "manifest_written": manifest_written,
        "folders_moved": moved,
        "batches": len(scan.batches),
        "damaged_batches": [{"name": n, "detail": d} for n, d in scan.damaged],
        "mirror": mirror,
        **restored,
    }


def orphan_events(bucket, scan) -> dict[str, int]:
    """{trace id: events} its folder holds that no batch holds (their batch was lost)."""
    known = {eid for evs in scan.by_trace.values() for eid in evs} | dropped_events(bucket.root)  # re-filtered away
    out: dict[str, int] = {}
    base = bucket.root / layout.TRACES
    for folder in sorted(base.glob("*/*")) if base.is_dir() else []:
        if folder.is_symlink() or not folder.is_dir():
            continue
        try:
            events = bucket.trace_events(folder.parent.name, folder.name)
        except (CorruptionError, ValueError, OSError):
            continue  # a damaged companion: re-projection rewrites it from the batches
        n = sum(1 for e in events if e.get("event_id") not in known)
        if n:
            out[folder.name] = n
    return out


def _refuse_orphans(bucket, scan) -> None:
    orphans = orphan_events(bucket, scan)
    if orphans:
        total = sum(orphans.values())
        shown = ", ".join(t[:12] for t in list(orphans)[:3])
        raise CorruptionError(
            f"{total} event(s) of {len(orphans)} trace(s) ({shown}) exist only in their trace folders (their batch "
            "is lost); repair would drop them, so nothing was rewritten",
            "capture those sessions' files again (their events come back), then run repair")


def _restore_canonical(bucket, check_blobs: bool) -> dict[str, Any]:
    """Put back canonical files the mirror holds good copies of; refuse to re-project without a batch.

    Re-projecting without a deleted batch would drop its events from every
    projection (and make prune treat their blobs as garbage), so a batch that
    the index or the mirror knows and no copy can restore stops repair."""
    from ..projections import index as index_mod
    from .restore import missing_batches, restore_batches, restore_blobs

    out: dict[str, Any] = {}
    missing = missing_batches(bucket, index_mod.read_index(bucket.root))
    if missing:
        restored, lost = restore_batches(bucket, missing)
        out["batches_restored"] = restored
        if lost:
            raise CorruptionError(
                f"batch(es) {', '.join(lost)} are gone and no copy is here; repair would drop their events, "
                "so nothing was rewritten",
                "copy the batch back (from a backup, or 'git --git-dir=<bucket>/.git show <commit>:events/v1/batches/<name>' "
                "from a clone of the mirror), or capture the session files again")
    if check_blobs:
        blobs = restore_blobs(bucket)
        if blobs["restored"]:
            out["blobs_restored"] = blobs["restored"]
    return out


def repair(writer: "Writer", progress=None) -> dict[str, Any]:
    """``bucket repair``: re-project everything and the manifest; restore damaged canonical files
    from the mirror's copies first."""
    return rebuild(writer, "all", progress, check_blobs=True)
