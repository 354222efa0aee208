"""The bucket's Git mirror in ``<bucket>/.git`` (bare), DESIGN.md §5.

Refs (the same names on a remote):
  refs/opentraces/v1/events/<writer>          one commit per batch of that writer
  refs/opentraces/v1/trails/<project>         the project's trail chain (trail.py)
  refs/opentraces/v1/blobs/<project>/<trace>  that trace's blobs, at their bucket paths
  refs/opentraces/v1/bucket                   the bucket without blobs and local state

Blob and bucket commits have no parent: each is a pure function of its tree,
so the same content is the same commit. Every update stages objects in
memory and writes one pack; packs are consolidated when they pile up.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import pygit2

import gitref
from gitref import ObjectWriter
from gitref.edit import Replace, update_tree

from .. import layout
from ..blobs import blob_relpath, referenced_blobs, read_raw
from ..bucket import Bucket
from ..events import sort_key
from .state import MIRROR_STATE
from .trail import reusable_objects, build_chain, epoch, extend_chain, tip_position, trail_events, trail_ref

PREFIX = "refs/opentraces/v1/"
BUCKET_REF = PREFIX + "bucket"
MAX_PACKS = 24
_BUCKET_TOP = ("manifest.json", "events", "traces")


def events_ref(writer: str) -> str:
    return f"{PREFIX}events/{writer}"


def blobs_ref(project: str, trace_id: str) -> str:
    return f"{PREFIX}blobs/{project}/{trace_id}"


def open_mirror(bucket: Bucket, create: bool = True) -> pygit2.Repository | None:
    path = bucket.root / layout.GIT
    if not create:  # never initialise anything (a dry run, a read)
        return gitref.open_repo(path) if path.exists() else None
    return gitref.open_or_init_bare(path)


def _set(repo: pygit2.Repository, name: str, new: pygit2.Oid | None) -> bool:
    old = gitref.get_ref(repo, name)
    if new is None or old == new:
        return False
    gitref.update_ref(repo, name, new, old, force=False, message="opentraces mirror")
    return True


def _files_under(root: Path, rel: str) -> dict[str, bytes]:
    out = {}
    base = root / rel
    for dirpath, dirs, files in os.walk(base):
        dirs.sort()
        for f in sorted(files):
            if f.startswith("."):
                continue  # temp files
            p = Path(dirpath) / f
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def _bucket_changes(bucket: Bucket, traces: Iterable[tuple[str, str]], batches: Iterable[str]) -> dict[str, Any]:
    root = bucket.root
    changes: dict[str, Any] = {}
    for project, trace_id in traces:
        rel = layout.trace_dir(project, trace_id)
        changes[rel] = Replace({k[len(rel) + 1:]: v for k, v in _files_under(root, rel).items()})
    for name in batches:
        changes[f"{layout.BATCHES}/{name}"] = (root / layout.BATCHES / name).read_bytes()
    for rel in (layout.INDEX, layout.MANIFEST):
        try:
            changes[rel] = (root / rel).read_bytes()
        except FileNotFoundError:
            changes[rel] = None
    return changes


def _full_bucket_files(bucket: Bucket) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for top in _BUCKET_TOP:
        p = bucket.root / top
        if p.is_file():
            files[top] = p.read_bytes()
        elif p.is_dir():
            files.update(_files_under(bucket.root, top))
    return files


def _fields(msg: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in msg.splitlines()[1:] if ": " in line)


def _batch_time(batch) -> int:
    return max((epoch(e["time"]) for e in batch.events), default=0)


def _events_chains(w: ObjectWriter, repo: pygit2.Repository, bucket: Bucket, batches: list, full: bool) -> dict[str, pygit2.Oid]:
    """New tips of refs/opentraces/v1/events/<writer>."""
    by_writer: dict[str, list] = {}
    for b in batches:
        by_writer.setdefault(b.header.writer, []).append(b)
    tips = {}
    for writer, new in sorted(by_writer.items()):
        new.sort(key=lambda b: b.header.seq)
        current = gitref.get_ref(repo, events_ref(writer))
        seq = int(_fields(repo[current].message).get("Seq", 0)) if current is not None else 0
        if full or seq != new[0].header.seq - 1:
            if not full:  # the mirror missed batches: take the writer's whole chain from disk
                from ..maintenance.scan import scan_batches

                new = sorted((b for b in scan_batches(bucket).batches if b.header.writer == writer),
                             key=lambda b: b.header.seq)
            current = None
        tip = current
        for b in new:
            h = b.header
            raw = (bucket.root / layout.BATCHES / b.name).read_bytes()
            msg = (f"batch {h.seq} of writer {writer} ({h.events} events)\n\n"
                   f"Batch: {b.name}\nWriter: {writer}\nSeq: {h.seq}\nEvents: {h.events}\n"
                   f"Sha256: {b.sha256}\nPrev: {h.prev}\n")
            tree = w.tree({"events": {"v1": {"batches": {b.name: raw}}}})
            tip = w.commit(tree, [tip] if tip is not None else [], msg, _batch_time(b))
        tips[events_ref(writer)] = tip
    return tips


def _raw_reader(bucket: Bucket, project: str):
    return lambda addr: read_raw(bucket.root, project, addr)


def _trail_tip(w: ObjectWriter, repo: pygit2.Repository, bucket: Bucket, project: str,
               new_events: list[dict[str, Any]], full: bool) -> pygit2.Oid | None:
    """New tip of the project's trail ref: the chain is kept up to the first new event and rebuilt
    from there (an append when the new events sort last); ``full`` builds it from the events alone."""
    current = gitref.get_ref(repo, trail_ref(project))
    new = trail_events(new_events)
    if not new and not full:
        return current
    raw = _raw_reader(bucket, project)
    if full:  # from the canonical events alone: the current ref is what is being checked or repaired
        return build_chain(w, new, raw)
    if current is not None:
        back = _rewind(repo, current, sort_key(new[0]))
        if back is not None:  # keep the chain up to the first new event, rebuild only what follows it
            parent, seq, suffix, reuse = back
            return build_chain(w, trail_events(suffix + new), raw, parent=parent, start_seq=seq + 1, reuse=reuse)
    events: list[dict[str, Any]] = []
    for row in bucket.rows():
        if row["project"] == project:
            events.extend(e for e in bucket.trace_events(project, row["trace_id"]) if e["kind"].startswith("trail."))
    return extend_chain(w, repo, current, trail_events(events), raw)


def _rewind(repo: pygit2.Repository, tip: pygit2.Oid,
            first: tuple) -> tuple[pygit2.Oid | None, int, list[dict[str, Any]], dict[str, Any]] | None:
    """Walk the chain back from ``tip`` to the last commit whose event sorts before ``first``.

    Returns (that commit or None, its seq or 0, the events of the commits after
    it, oldest first), reading them from the commits themselves, so the cost is
    that of the part that changes (nothing for an append). None when a commit on
    the way is not the trail commit its position requires (the caller then
    rebuilds from the bucket's files).
    """
    suffix: list[dict[str, Any]] = []
    reuse: dict[str, dict[str, Any]] = {}
    oid: pygit2.Oid | None = tip
    expect = None
    while oid is not None:
        seq, event_id = tip_position(repo, oid)
        ev = _tip_event(repo, oid, seq) if seq else None
        if ev is None or ev.get("event_id") != event_id or (expect is not None and seq != expect):
            return None
        if sort_key(ev) < first:
            return oid, seq, suffix[::-1], reuse
        suffix.append(ev)
        objs = reusable_objects(repo, oid, ev)
        if objs is not None:
            reuse[ev["event_id"]] = objs
        parents = repo[oid].parent_ids
        if len(parents) != (0 if seq == 1 else 1):
            return None
        oid, expect = (parents[0] if parents else None), seq - 1
    return None, 0, suffix[::-1], reuse


def _tip_event(repo: pygit2.Repository, tip: pygit2.Oid, seq: int) -> dict[str, Any] | None:
    import orjson

    try:
        tree = repo[tip].peel(pygit2.Tree)
        return orjson.loads(repo[tree["events"].id].peel(pygit2.Tree)[f"{seq:012d}.json"].data)
    except (KeyError, ValueError):
        return None


def _blob_commit(w: ObjectWriter, repo: pygit2.Repository, bucket: Bucket, project: str, trace_id: str,
                 events: list[dict[str, Any]], full: bool) -> pygit2.Oid | None:
    name = blobs_ref(project, trace_id)
    current = None if full else gitref.get_ref(repo, name)
    changes: dict[str, Any] = {}
    time = 0  # the latest event that cites a blob: anchors and the like do not move this ref
    for ev in events:
        cited = referenced_blobs(ev)
        if cited:
            time = max(time, epoch(ev["time"]))
        for kind, addr in cited:
            rel = blob_relpath(project, kind, addr)
            if rel in changes:
                continue
            try:
                changes[rel] = (bucket.root / rel).read_bytes()
            except FileNotFoundError:
                continue  # not fetched here (lazy): the remote keeps it
    base = None
    if current is not None:
        base = repo[current].peel(pygit2.Tree).id
        time = max(time, repo[current].commit_time)
        if not changes and time == repo[current].commit_time:
            return current
    tree = update_tree(w, repo, base, changes)
    msg = f"blobs of trace {trace_id}\n\nProject: {project}\nTrace: {trace_id}\n"
    return w.commit(tree, [], msg, time)


def update_mirror(bucket: Bucket, batches: list, traces: list[tuple[str, str]], *, full: bool = False,
                  dry_run: bool = False, scan=None) -> dict[str, Any]:
    """Bring the mirror up to date after ``batches`` touched ``traces``.

    ``full``: rebuild every ref from the files (``bucket repair``). An
    incremental update that finds the mirror behind (a failed update, a
    bucket copied without ``.git``) is done as a full one.
    ``dry_run``: compute the tips a full rebuild would set and return them as
    ``{"tips": {ref: oid}}``; nothing is written (no ``.git`` created, no
    pack, no ref). ``bucket verify --full`` compares them with the refs.
    ``scan``: the batches already read by the caller (``maintenance.scan``),
    so a full rebuild does not read every batch a second time.
    """
    repo = open_mirror(bucket, create=not dry_run)
    if repo is None:
        return {"tips": {}}
    full = full or dry_run
    w = ObjectWriter(repo)
    index = bucket.index() or {"batch_count": 0}
    current = gitref.get_ref(repo, BUCKET_REF)
    if not full:
        recorded = int(_fields(repo[current].message).get("Batches", -1)) if current is not None else 0
        if recorded + len(batches) != index["batch_count"]:
            full = True  # the mirror missed batches: every ref may be behind, not only these traces'
    if full:
        from ..maintenance.scan import scan_batches

        scan = scan if scan is not None else scan_batches(bucket)
        batches = scan.batches
        by_trace = {k: list(v.values()) for k, v in scan.by_trace.items()}
        traces = sorted(by_trace)
    else:
        by_trace = {}
        for b in batches:
            for ev in b.events:
                by_trace.setdefault((ev["project"], ev["trace_id"]), []).append(ev)
    tips: dict[str, pygit2.Oid | None] = dict(_events_chains(w, repo, bucket, batches, full))
    projects = sorted({p for p, _ in by_trace})
    for project in projects:
        evs = [e for (p, _t), es in by_trace.items() if p == project for e in es]
        tips[trail_ref(project)] = _trail_tip(w, repo, bucket, project, evs, full)
    for (project, trace_id), evs in sorted(by_trace.items()):
        tips[blobs_ref(project, trace_id)] = _blob_commit(w, repo, bucket, project, trace_id, evs, full)
        if dry_run:  # nothing later refers to these objects: keep memory to one trace's blobs
            w.discard()
    # the bucket ref, last: it names the manifest the other refs back
    if full or current is None:
        files = _full_bucket_files(bucket)
        tree = w.tree(gitref.trees.nest_paths(files)) if files else w.tree({})
        time = max((epoch(e["time"]) for es in by_trace.values() for e in es), default=0)
    else:
        tree = update_tree(w, repo, repo[current].peel(pygit2.Tree).id,
                           _bucket_changes(bucket, traces, [b.name for b in batches]))
        time = max([repo[current].commit_time] + [_batch_time(b) for b in batches])
    head = bucket.manifest_head() or {}
    msg = (f"opentraces bucket ({(head.get('summary') or {}).get('trace_count', 0)} traces)\n\n"
           f"Manifest-Digest: {head.get('digest')}\nBatches: {index['batch_count']}\n")
    tips[BUCKET_REF] = w.commit(tree, [], msg, time)
    if dry_run:
        w.discard()
        return {"tips": {name: tip for name, tip in sorted(tips.items()) if tip is not None}}
    w.flush()
    changed = [name for name, tip in sorted(tips.items()) if _set(repo, name, tip)]
    bucket.write_state(MIRROR_STATE, {"bucket_commit": str(tips[BUCKET_REF]), "digest": head.get("digest")})
    if gitref.pack_count(repo) > MAX_PACKS:
        gitref.consolidate_packs(repo)
    return {"refs_updated": len(changed), "refs": changed}


def mirror_state(bucket: Bucket, digest: str | None) -> dict[str, Any]:
    """``current`` when the bucket ref names the manifest's digest; cheap (one ref, one commit)."""
    path = bucket.root / layout.GIT
    if not path.exists():
        return {"state": "absent"}
    try:
        repo = gitref.open_repo(path)
        tip = gitref.get_ref(repo, BUCKET_REF)
    except gitref.GitrefError as exc:
        return {"state": "damaged", "detail": str(exc)}
    if tip is None:
        return {"state": "absent"}
    try:
        recorded = _fields(repo[tip].message).get("Manifest-Digest")
    except (KeyError, ValueError, AttributeError) as exc:  # the ref names a missing or non-commit object
        return {"state": "damaged", "detail": f"{BUCKET_REF} -> {tip}: {exc}"}
    return {"state": "current" if recorded == digest else "behind", "commit": str(tip)}
