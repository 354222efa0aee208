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

from .. import layout, refilters
from ..blobs import addr_from_name, blob_problem, blob_relpath, referenced_blobs
from ..projects import tag_of
from ..sync.state import remote_blob_traces
from ..bucket import Bucket
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
    try:
        data = (bucket.root / rel).read_bytes()
    except OSError as exc:
        return _problem("blob_unreadable", rel, str(exc))
    bad = blob_problem(rel.rsplit("/", 1)[1], data)
    return _problem(bad[0], rel, bad[1]) if bad else None


def verify(bucket: Bucket, *, sample: int | None = 100, progress=None) -> dict[str, Any]:
    """``sample=None`` is ``--full``: it holds a shared lock, so a capture in progress is either
    wholly before or wholly after what it reads (no false mismatch between files and refs)."""
    from .. import statefiles
    from ..lock import ReaderLock

    if sample is None:
        with ReaderLock(bucket.state_dir / statefiles.LOCK, timeout=300):
            return _verify(bucket, sample=sample, progress=progress)
    return _verify(bucket, sample=sample, progress=progress)


def _verify(bucket: Bucket, *, sample: int | None, progress=None) -> dict[str, Any]:
    problems: list[dict[str, str]] = []
    scan = scan_batches(bucket)
    for name, detail in scan.damaged:
        kind = "batch_gzip" if "gzip" in detail else ("event_id" if "event_id" in detail else "batch_corrupt")
        if "does not match the batch id" in detail:
            kind = "batch_hash"
        elif "signature" in detail:
            kind = "batch_signature"
        problems.append(_problem(kind, f"{layout.BATCHES}/{name}", detail))

    # signed batches: once the bucket pins a root key, every batch must be signed by a trusted key
    from .. import trust

    pins = trust.pinned(bucket)
    if pins is not None:
        trusted = trust.trusted_keys(trust.endorsements(bucket.root), pins["roots"])
        for b in scan.batches:
            why = trust.batch_problem(b.header, trusted, pins.get("unsigned_until") or {})
            if why:
                problems.append(_problem("batch_untrusted", f"{layout.BATCHES}/{b.name}",
                                         f"{why}; if the key is yours, run 'opentraces bucket trust add KEY'"))

    # temp files a dead writer left (under the shared lock, none can belong to a live one)
    if sample is None:
        from ..writer import temp_files

        for rel in temp_files(bucket):
            problems.append(_problem("stale_tempfile", rel, "left by an interrupted write; "
                                     "the next capture or 'opentraces bucket prune' removes it"))

    # batches the index or the mirror knows that the folder lacks (a deleted file)
    if sample is None:
        from .restore import missing_batches

        for name in missing_batches(bucket, index_mod.read_index(bucket.root)):
            problems.append(_problem("batch_missing", f"{layout.BATCHES}/{name}",
                                     "known to the index or the mirror, absent here; run 'opentraces bucket repair' "
                                     "(it restores the batch from the mirror when the mirror holds it)"))

    # re-filters: a replaced batch or a dropped event back in the bucket undoes a redaction (a restore
    # from an old copy, or tampering); the records themselves say what was replaced on purpose
    refilter_records = refilters.records(bucket.root)
    if refilter_records:
        on_disk = set(bucket.batch_names())
        dropped = refilters.dropped_events(bucket.root, refilter_records)
        for rec in refilter_records:
            for old, new in (rec.get("batches") or {}).items():
                if old != new and old in on_disk:
                    problems.append(_problem("refilter_undone", f"{layout.BATCHES}/{old}",
                                             f"replaced by re-filter {rec.get('id')} but present again; delete it "
                                             "and run 'opentraces bucket repair'"))
        back = {ev["event_id"] for b in scan.batches for ev in b.events} & dropped
        if back:
            problems.append(_problem("refilter_undone", layout.BATCHES,
                                     f"{len(back)} event(s) a re-filter dropped are in batches again; run "
                                     "'opentraces bucket refilter' to drop them"))

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
    held = set()  # (repository tag, kind, address): a blob may sit under any claimed name of its repository
    for rel in blob_files:
        parts = rel.split("/")
        hit = addr_from_name(parts[-1])
        if hit:
            held.add((tag_of(parts[2]), hit[0], hit[1]))
    lazy_traces = remote_blob_traces(bucket)  # blobs the remote holds and this bucket has not fetched
    lazy = 0
    for events in scan.by_trace.values():
        for ev in events.values():
            for kind, addr in referenced_blobs(ev):
                if (tag_of(ev["project"]), kind, addr) not in held:
                    if ev["trace_id"] in lazy_traces:
                        lazy += 1
                        continue
                    dangling += 1
                    rel = blob_relpath(ev["project"], kind, addr)
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
        problems.extend(_index_and_manifest_problems(bucket, scan, list(rows.values())))
        problems.extend(_mirror_problems(bucket, scan))
    return {
        "ok": not problems,
        "full": sample is None,
        "batches_checked": len(scan.batches) + len(scan.damaged),
        "refilters": [{"id": r.get("id"), "time": r.get("time"), "traces": len(r.get("traces") or []),
                       "batches_replaced": len(r.get("batches") or {})} for r in refilter_records],
        "events_checked": sum(len(b.events) for b in scan.batches),
        "blobs_total": len(blob_files),
        "blobs_checked": len(checked),
        "blob_bytes_checked": nbytes,
        "traces_checked": len(fold_set),
        "dangling_count": dangling,
        "lazy_blob_citations": lazy,
        "problems": problems,
    }


def _read(path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _index_and_manifest_problems(bucket: Bucket, scan, rows: list[dict]) -> list[dict[str, str]]:
    """index.json, manifest.json and every manifest shard against a fresh build (full verify)."""
    out = []
    if not scan.batches:
        return out
    index = index_mod.build_index(scan.batches)
    disk_index = _read(bucket.root / layout.INDEX)
    if disk_index != index_mod.encode(index):
        out.append(_problem("index_mismatch" if disk_index else "projection_missing", layout.INDEX,
                            "differs from the batch files"))
    head, files = manifest_mod.build_manifest(rows, index_mod.summary(index), scan.names.as_json())
    files[layout.MANIFEST] = manifest_mod.encode(head)
    shard_dir = bucket.root / layout.MANIFEST_SHARDS
    on_disk = {f"{layout.MANIFEST_SHARDS}/{n}" for n in os.listdir(shard_dir)} if shard_dir.is_dir() else set()
    for rel in sorted(set(files) | on_disk):
        disk = _read(bucket.root / rel)
        if rel not in files:
            out.append(_problem("manifest_mismatch", rel, "no trace produces this shard"))
        elif disk is None:
            out.append(_problem("projection_missing", rel, "run 'opentraces bucket repair'"))
        elif disk != files[rel]:
            out.append(_problem("manifest_mismatch", rel, "differs from a fresh fold of the events"))
    return out


def _sample_traces(traces: list[tuple[str, str]], n: int) -> set[tuple[str, str]]:
    keyed = sorted(traces, key=lambda t: hashlib.sha256(f"{t[0]}/{t[1]}".encode()).digest())
    return set(keyed[:n])


def _mirror_problems(bucket: Bucket, scan) -> list[dict[str, str]]:
    """The Git mirror's refs against the tips a rebuild from the files would give (writes nothing)."""
    if not (bucket.root / layout.GIT).exists():
        return []
    import gitref

    from ..gitmirror.mirror import PREFIX, update_mirror
    from ..refnames import BUCKET, MANAGED, MAIN, kind_of

    storage = []
    try:
        repo = gitref.open_repo(bucket.root / layout.GIT)
        storage += [_problem("mirror_pack", f"{layout.GIT}/{rel}", why) for rel, why in gitref.pack_problems(repo)]
        storage += [_problem("mirror_ref", f"{layout.GIT}/{rel}", "not a valid reference (a truncated write?)")
                    for rel in gitref.corrupt_refs(repo)]
        packed = gitref.packed_refs_problem(repo)
        if packed:
            storage.append(_problem("mirror_ref", f"{layout.GIT}/packed-refs", packed))
        head = (bucket.root / layout.GIT / "HEAD").read_bytes() if (bucket.root / layout.GIT / "HEAD").exists() else b""
        if head != f"ref: {MAIN}\n".encode():
            storage.append(_problem("mirror_ref", f"{layout.GIT}/HEAD", f"does not name {MAIN}"))
    except Exception as exc:
        return [_problem("mirror_damaged", layout.GIT, f"{type(exc).__name__}: {exc}")]
    try:
        want = update_mirror(bucket, [], [], dry_run=True, scan=scan)
        actual = gitref.list_refs(repo, PREFIX)
        main = gitref.get_ref(repo, MAIN)
        missing = gitref.unreachable_objects(repo, sorted(set(actual.values())))
        if missing:
            storage.append(_problem("mirror_objects", layout.GIT, f"objects the refs need are missing ({missing})"))
    except Exception as exc:  # an unreadable mirror is a finding, not a crash
        return storage + [_problem("mirror_damaged", layout.GIT, f"{type(exc).__name__}: {exc}")]
    expected, trees = want["tips"], want["trees"]
    out = []
    for name in sorted((set(expected) - {MAIN}) | {n for n in actual if n.startswith(MANAGED)}):
        want_tip, have = expected.get(name), actual.get(name)
        kind = kind_of(name)
        if have is None:
            out.append(_problem("mirror_missing", name, f"absent; a rebuild from the files gives {want_tip}"))
        elif want_tip is None:
            out.append(_problem("mirror_mismatch", name, f"at {have}, but nothing in the files produces this ref"))
        elif kind in ("events", "trails"):  # pure functions of the events: the very same commit
            if want_tip != have:
                out.append(_problem("mirror_mismatch", name, f"at {have}, the files give {want_tip}"))
        else:  # chains that grow: the tip's tree must hold what the files give
            why = _tree_problem(repo, have, trees[name], exact=(kind == "bucket"))
            if why:
                out.append(_problem("mirror_mismatch", name, why))
    if actual.get(BUCKET) is not None and main != actual.get(BUCKET):
        out.append(_problem("mirror_mismatch", MAIN, f"at {main}, not at the bucket ref"))
    return storage + out


def _tree_problem(repo, tip, want, *, exact: bool) -> str | None:
    """``want``: the tree id a rebuild gives (exact), or {path: blob id} the tree must hold."""
    import pygit2

    import gitref

    try:
        have_tree = repo[tip].peel(pygit2.Tree)
        if exact:
            return None if have_tree.id == want else f"tree {have_tree.id} differs from the files ({want})"
        # a blob ref may hold more (blobs this bucket has not fetched); it must hold what the files give
        have = {path: oid for path, oid, _m in gitref.iter_tree(repo, have_tree.id)}
    except (KeyError, ValueError, pygit2.GitError) as exc:  # a damaged pack can hand back the wrong type
        return f"at {tip}, which cannot be read ({exc})"
    missing = sorted(path for path, oid in want.items() if have.get(path) != oid)
    return f"lacks or differs at {len(missing)} blob(s), e.g. {missing[0]}" if missing else None
