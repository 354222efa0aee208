"""``bucket verify``: recompute every hash it checks; never writes.

Checks batch files (gzip, name hash, header, event ids, per-writer chains),
blobs (content hash), references (every cited blob present), and
projections (trace folders, index, manifest) against a fresh fold.
Each problem is ``{kind, path, detail}``.
"""

from __future__ import annotations

import hashlib
import os

import orjson
from collections import defaultdict
from typing import Any

from .. import layout
from ..batches import GZIP_HEADER
from ..blobs import addr_from_name, blob_relpath, referenced_blobs
from ..bucket import Bucket
from ..encoding import address, gunzip_bytes, GzipError
from ..projections import index as index_mod
from ..projections import manifest as manifest_mod
from ..projections.schema import validate_record
from ..projections.tracedir import render_trace
from .scan import scan_batches


def _problem(kind: str, path: str, detail: str) -> dict[str, str]:
    return {"kind": kind, "path": path, "detail": detail}


def _blob_files(bucket: Bucket) -> list[str]:
    out = []
    base = bucket.root / layout.BLOBS
    for dirpath, _dirs, files in os.walk(base):
        rel = os.path.relpath(dirpath, bucket.root)
        for f in files:
            if addr_from_name(f):
                out.append(f"{rel}/{f}")
    out.sort()
    return out


def _sample(paths: list[str], n: int | None) -> list[str]:
    if n is None or n >= len(paths):
        return paths
    keyed = sorted(paths, key=lambda p: hashlib.sha256(p.encode()).digest())
    return sorted(keyed[:n])


def check_blob(bucket: Bucket, rel: str) -> dict[str, str] | None:
    kind, addr = addr_from_name(rel.rsplit("/", 1)[1])
    try:
        data = (bucket.root / rel).read_bytes()
    except OSError as exc:
        return _problem("blob_unreadable", rel, str(exc))
    if kind == "context":
        if data[:10] != GZIP_HEADER:  # header bytes are outside the gzip CRC
            return _problem("blob_gzip", rel, "corrupt gzip: not the canonical gzip header")
        try:
            data = gunzip_bytes(data)
        except GzipError as exc:
            return _problem("blob_gzip", rel, str(exc))
    got = address(data)
    if got != addr:
        return _problem("blob_hash", rel, f"content hashes to {got}")
    return None


def verify(bucket: Bucket, *, sample: int | None = 100, progress=None) -> dict[str, Any]:
    """``sample=None`` is ``--full``."""
    problems: list[dict[str, str]] = []
    scan = scan_batches(bucket)
    for name, detail in scan.damaged:
        kind = "batch_gzip" if "gzip" in detail else ("event_id" if "event_id" in detail else "batch_corrupt")
        if "does not match the batch id" in detail:
            kind = "batch_hash"
        problems.append(_problem(kind, f"{layout.BATCHES}/{name}", detail))

    # per-writer hash chains
    chains: dict[str, list] = defaultdict(list)
    for b in scan.batches:
        chains[b.header.writer].append(b)
    damaged_names = {n for n, _ in scan.damaged}
    for writer, batches in chains.items():
        batches.sort(key=lambda b: b.header.seq)
        prev = None
        expect = 1
        for b in batches:
            path = f"{layout.BATCHES}/{b.name}"
            if b.header.seq != expect and not damaged_names:
                problems.append(_problem("batch_chain", path, f"writer {writer}: expected batch {expect}, found {b.header.seq}"))
            elif b.header.prev != prev and b.header.seq == expect:
                problems.append(_problem("batch_chain", path, f"writer {writer}: prev does not match batch {expect - 1}"))
            prev = b.sha256
            expect = b.header.seq + 1

    # blobs: hashes and references
    blob_files = _blob_files(bucket)
    present = set(blob_files)
    checked = _sample(blob_files, sample)
    nbytes = 0
    for i, rel in enumerate(checked):
        if progress:
            progress(i, len(checked))
        p = check_blob(bucket, rel)
        if p:
            problems.append(p)
        else:
            nbytes += os.path.getsize(bucket.root / rel)
    dangling = 0
    for (project, _trace), events in scan.by_trace.items():
        for ev in events.values():
            for kind, addr in referenced_blobs(ev):
                rel = blob_relpath(project, kind, addr)
                if rel not in present:
                    dangling += 1
                    problems.append(_problem("dangling_blob", rel, f"cited by event {ev['event_id']} ({ev['kind']})"))
    # de-duplicate dangling reports of one blob cited many times
    seen = set()
    unique = []
    for p in problems:
        key = (p["kind"], p["path"]) if p["kind"] == "dangling_blob" else id(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    problems = unique

    # projections against a fresh fold
    traces = sorted(scan.by_trace)
    fold_set = traces if sample is None else _sample_traces(traces, sample)
    rows = {}
    for project, trace_id in traces:
        events = list(scan.by_trace[(project, trace_id)].values())
        if (project, trace_id) not in fold_set and not scan.damaged:
            continue
        try:
            files = render_trace(trace_id, events)
        except Exception as exc:  # a fold that fails is itself a finding
            problems.append(_problem("fold_failed", layout.trace_dir(project, trace_id), str(exc)))
            continue
        base = layout.trace_dir(project, trace_id)
        for name, data in files.items():
            path = bucket.root / base / name
            try:
                disk = path.read_bytes()
            except FileNotFoundError:
                problems.append(_problem("projection_missing", f"{base}/{name}", "run 'opentraces bucket repair'"))
                continue
            if disk != data:
                problems.append(_problem("projection_mismatch", f"{base}/{name}", "differs from a fresh fold of the events"))
        tj = files[layout.TRACE_JSON]
        if sample is None:  # --full: the fold's output must be what opentraces-schema accepts
            why = validate_record(orjson.loads(tj))
            if why:
                problems.append(_problem("schema_invalid", f"{base}/{layout.TRACE_JSON}", why))
        rows[(project, trace_id)] = manifest_mod.trace_row(project, trace_id, orjson.loads(tj), tj, len(events))
    if sample is None and not scan.damaged:
        index = index_mod.build_index([index_mod.entry(b) for b in scan.batches])
        try:
            disk_index = (bucket.root / layout.INDEX).read_bytes()
        except FileNotFoundError:
            disk_index = None
        if scan.batches and disk_index != index_mod.encode(index):
            problems.append(_problem("index_mismatch" if disk_index else "projection_missing", layout.INDEX,
                                     "differs from the batch files"))
        want = manifest_mod.encode(manifest_mod.build_manifest(list(rows.values()), index_mod.summary(index)))
        try:
            disk_manifest = (bucket.root / layout.MANIFEST).read_bytes()
        except FileNotFoundError:
            disk_manifest = None
        if scan.batches and disk_manifest != want:
            problems.append(_problem("manifest_mismatch" if disk_manifest else "projection_missing", layout.MANIFEST,
                                     "differs from a fresh fold of the events"))
        problems.extend(_mirror_problems(bucket, scan))
    return {
        "ok": not problems,
        "full": sample is None,
        "batches_checked": len(scan.batches) + len(scan.damaged),
        "events_checked": sum(len(b.events) for b in scan.batches),
        "blobs_total": len(blob_files),
        "blobs_checked": len(checked),
        "blob_bytes_checked": nbytes,
        "traces_checked": len(fold_set),
        "dangling_count": dangling,
        "problems": problems,
    }


def _sample_traces(traces: list[tuple[str, str]], n: int) -> set[tuple[str, str]]:
    keyed = sorted(traces, key=lambda t: hashlib.sha256(f"{t[0]}/{t[1]}".encode()).digest())
    return set(keyed[:n])


def _mirror_problems(bucket: Bucket, scan) -> list[dict[str, str]]:
    """The Git mirror's refs against the tips a rebuild from the files would give (writes nothing)."""
    if not (bucket.root / layout.GIT).exists():
        return []
    import gitref

    from ..gitmirror.mirror import PREFIX, update_mirror

    try:
        expected = update_mirror(bucket, [], [], dry_run=True, scan=scan)["tips"]
        actual = gitref.list_refs(gitref.open_repo(bucket.root / layout.GIT), PREFIX)
    except Exception as exc:  # an unreadable mirror is a finding, not a crash
        return [_problem("mirror_damaged", layout.GIT, f"{type(exc).__name__}: {exc}")]
    managed = tuple(PREFIX + f for f in ("events/", "trails/", "blobs/", "bucket"))
    out = []
    for name in sorted(set(expected) | {n for n in actual if n.startswith(managed)}):
        want, have = expected.get(name), actual.get(name)
        if have is None:
            out.append(_problem("mirror_missing", name, f"absent; a rebuild from the files gives {want}"))
        elif want is None:
            out.append(_problem("mirror_mismatch", name, f"at {have}, but nothing in the files produces this ref"))
        elif want != have:
            out.append(_problem("mirror_mismatch", name, f"at {have}, the files give {want}"))
    return out
