"""The bucket's Git mirror in ``<bucket>/.git`` (bare), DESIGN.md §5 and docs/GIT.md.

Refs (the same names on a remote), see ``opentraces.refnames``:

  refs/opentraces/v1/events/<writer>          one commit per batch of that writer (canonical, grows)
  refs/opentraces/v1/trails/<project>         the project's trail (trail.py; deterministic)
  refs/opentraces/v1/blobs/<project>/<trace>  that trace's blobs; a new commit on the old one when it grows
  refs/opentraces/v1/bucket                   the bucket without blobs and local state, a chain
  refs/heads/main (HEAD)                      the same commit, so `git clone` shows the bucket

Every update edits trees in place (cost of the change), stages objects in
memory, writes one pack, then moves each ref with a guarded
compare-and-swap (``gitref.guarded_update``): fast-forwards, or rewrites that
keep every event and blob the old value held; nothing is forced.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import orjson
import pygit2

import gitref
from gitref import ObjectWriter
from gitref.edit import Replace, update_tree
from gitref.objects import BLOB

from .. import layout, refnames, statefiles
from ..blobs import blob_path, blob_problem, read_raw, referenced_blobs
from ..bucket import Bucket
from .. import signing
from ..refilters import RECORDS
from ..encoding import address
from ..errors import OfflineError
from ..projections import manifest as manifest_mod
from ..projects import Names
from .readme import readme_bytes
from .trail import (build_project_trail, epoch, event_ids_of, trail_events, trailers, update_project_trail)

PREFIX = refnames.PREFIX
BUCKET_REF = refnames.BUCKET
MAX_PACKS = 24
_BUCKET_TOP = (layout.MANIFEST, layout.MANIFEST_SHARDS, "events", "traces")
events_ref = refnames.events_ref
blobs_ref = refnames.blobs_ref
trail_ref = refnames.trail_ref


def open_mirror(bucket: Bucket, create: bool = True) -> pygit2.Repository | None:
    path = bucket.root / layout.GIT
    if not create:  # never initialise anything (a dry run, a read)
        return gitref.open_repo(path) if path.exists() else None
    repo = gitref.open_or_init_bare(path)
    gitref.set_head(repo, refnames.HEAD_TARGET)
    return repo


# ------------------------------------------------------------ what each ref holds

def _batch_keys(c: pygit2.Commit) -> list[str]:
    f = trailers(c.message)
    return [f["Batch"]] if "Batch" in f else []


def _bucket_batches(repo: pygit2.Repository, old: pygit2.Oid, new: pygit2.Oid) -> list[str]:
    """Batch files of the old bucket tree that the new one lacks."""
    def names(oid):
        try:
            t = repo[oid].peel(pygit2.Tree)
            sub = t[layout.BATCHES]
            return {e.name for e in repo[sub.id]}
        except KeyError:
            return set()
    return sorted(names(old) - names(new))


LOST_RULES = {
    "events": gitref.lost_commit_keys(_batch_keys),
    "trails": gitref.lost_commit_keys(event_ids_of),
    "blobs": gitref.lost_tree_paths,
    "bucket": _bucket_batches,
    "main": _bucket_batches,
}


def lost_rule(name: str):
    """The superset rule of a managed ref (what a rewrite must keep)."""
    return LOST_RULES[refnames.kind_of(name)]


def move_ref(repo: pygit2.Repository, name: str, new: pygit2.Oid, expected_old: pygit2.Oid | None) -> str:
    """The one way the mirror (and sync) moves a managed ref: guarded compare-and-swap."""
    return gitref.guarded_update(repo, name, new, expected_old, lost=lost_rule(name), message="opentraces mirror")


def managed_refs(repo: pygit2.Repository) -> dict[str, pygit2.Oid]:
    """Every ref the mirror manages, by name: ``refs/opentraces/v1/*`` and ``refs/heads/main``."""
    refs = gitref.list_refs(repo, refnames.PREFIX)
    main = gitref.get_ref(repo, refnames.MAIN)
    if main is not None:
        refs[refnames.MAIN] = main
    return {n: o for n, o in refs.items() if refnames.kind_of(n)}


def merge_blob_refs(repo: pygit2.Repository, name: str, ours: pygit2.Oid, theirs: pygit2.Oid) -> pygit2.Oid:
    """Two machines grew one trace's blob ref: a commit on both whose tree holds the union of their
    blobs; ``name`` moves to it (from ``ours``). Both sides' objects must be here."""
    w = ObjectWriter(repo)
    mine = {p for p, _o, _m in gitref.iter_tree(repo, ours)}
    extra = {p: o for p, o, _m in gitref.iter_tree(repo, theirs) if p not in mine}
    tree = update_tree(w, repo, repo[ours].tree_id, extra)
    c = repo[ours]
    merge = w.commit(tree, [ours, theirs], c.message, max(c.commit_time, repo[theirs].commit_time))
    w.flush()
    move_ref(repo, name, merge, ours)
    return merge


def push_ref(repo: pygit2.Repository, url: str, name: str, *, env: dict[str, str] | None = None) -> gitref.PushResult:
    """Push one managed ref to a remote under its superset rule (plain push when it grows,
    compare-and-swap with a lease when a derived ref must be rewritten); what sync uses."""
    return gitref.push_ref(repo, url, name, lost=lost_rule(name), env=env)


# ------------------------------------------------------------------- files

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
    changes: dict[str, Any] = {layout.README: readme_bytes()}
    shards = set()
    for project, trace_id in traces:
        rel = layout.trace_dir(project, trace_id)
        changes[rel] = Replace({k[len(rel) + 1:]: v for k, v in _files_under(root, rel).items()})
        shards.add(manifest_mod.shard_path(manifest_mod.shard_of(trace_id)))
    for name in batches:
        changes[f"{layout.BATCHES}/{name}"] = (root / layout.BATCHES / name).read_bytes()
    changes.update(_files_under(root, RECORDS))  # re-filter records: few, small, and every machine needs them
    changes.update(_files_under(root, layout.TRUST))  # trust endorsements: the same
    for rel in (layout.INDEX, layout.MANIFEST, *sorted(shards)):
        try:
            changes[rel] = (root / rel).read_bytes()
        except FileNotFoundError:
            changes[rel] = None
    return changes


def _full_bucket_files(bucket: Bucket) -> dict[str, bytes]:
    files: dict[str, bytes] = {layout.README: readme_bytes()}
    for top in _BUCKET_TOP:
        p = bucket.root / top
        if p.is_file():
            files[top] = p.read_bytes()
        elif p.is_dir():
            files.update(_files_under(bucket.root, top))
    return files


def _batch_time(batch) -> int:
    return max((epoch(e["time"]) for e in batch.events), default=0)


# ------------------------------------------------------------------- refs

def _events_chains(w: ObjectWriter, repo: pygit2.Repository, bucket: Bucket, batches: list, full: bool) -> dict[str, pygit2.Oid]:
    """New tips of refs/opentraces/v1/events/<writer>."""
    by_writer: dict[str, list] = {}
    for b in batches:
        by_writer.setdefault(b.header.writer, []).append(b)
    tips = {}
    for writer, new in sorted(by_writer.items()):
        new.sort(key=lambda b: b.header.seq)
        current = gitref.get_ref(repo, events_ref(writer))
        seq = int(trailers(repo[current].message).get("Seq", 0)) if current is not None else 0
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
            if h.key:  # who signed it (docs/SECURITY.md "Signed batches")
                msg += f"Signed-By: {h.key}\nKey-Fingerprint: {signing.fingerprint(h.key)}\n"
            tree = w.tree({"events": {"v1": {"batches": {b.name: raw}}}})
            tip = w.commit(tree, [tip] if tip is not None else [], msg, _batch_time(b))
        tips[events_ref(writer)] = tip
    return tips


def _raw_reader(bucket: Bucket, project: str, repo: pygit2.Repository | None = None):
    """Raw blob bytes for trail snapshots: the bucket's file, else (a pulled bucket whose blobs
    are not fetched yet) the same content in trail commits already in the mirror."""
    index = SnapshotIndex(repo) if repo is not None else None

    def read(addr: str) -> bytes:
        try:
            return read_raw(bucket.root, project, addr)
        except OfflineError:
            data = index.get(addr) if index is not None else None
            if data is None:
                raise
            return data
    return read


class SnapshotIndex:
    """sha256 address -> bytes, from the before/after files of trail.patch commits in the repository
    (local trails and a pull's staged ones). Built on first use only; every hit is re-hashed."""

    def __init__(self, repo: pygit2.Repository):
        self.repo = repo
        self._map: dict[str, pygit2.Oid] | None = None

    def _build(self) -> dict[str, pygit2.Oid]:
        out: dict[str, pygit2.Oid] = {}
        tips = [oid for prefix in (refnames.TRAILS_PREFIX, refnames.STAGING_PREFIX + "trails/")
                for oid in gitref.list_refs(self.repo, prefix).values()]
        seen: set = set()
        for tip in tips:
            for c in gitref.only_in(self.repo, tip, None):
                if c.id in seen:
                    continue
                seen.add(c.id)
                if trailers(c.message).get("Kind") != "trail.patch":
                    continue
                tree = c.peel(pygit2.Tree)
                try:
                    ev = orjson.loads(tree["event.json"].data)
                except (KeyError, ValueError):
                    continue
                p = ev.get("payload") or {}
                path = str(p.get("path", "")).lstrip("/")
                for side in ("before", "after"):
                    if p.get(side) and side in tree:
                        try:
                            out.setdefault(p[side], self.repo[tree[side].id].peel(pygit2.Tree)[path].id)
                        except (KeyError, ValueError):
                            continue
        return out

    def get(self, addr: str) -> bytes | None:
        if self._map is None:
            self._map = self._build()
        oid = self._map.get(addr)
        if oid is None:
            return None
        data = self.repo[oid].data
        return data if address(data) == addr else None


def _project_events(bucket: Bucket, project: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for row in bucket.rows():
        if row["project"] == project:
            events.extend(bucket.trace_events(project, row["trace_id"]))
    return events


def _trail_tip(w: ObjectWriter, repo: pygit2.Repository, bucket: Bucket, project: str,
               by_trace: dict[str, list[dict[str, Any]]], full: bool,
               trail_first: dict[tuple[str, str], str | None] | None = None) -> pygit2.Oid | None:
    """New tip of the project's trail ref (``full``: from the given events alone)."""
    raw = _raw_reader(bucket, project, repo)
    if full:
        return build_project_trail(w, project, [e for evs in by_trace.values() for e in evs], raw)
    current = gitref.get_ref(repo, trail_ref(project))
    try:
        if trail_first is not None and all((project, t) in trail_first for t in by_trace):
            old_first = {t: trail_first[(project, t)] for t in by_trace}  # the writer read the folders already
        else:
            old_first = _old_first(bucket, project, by_trace)
        return update_project_trail(w, repo, project, current, by_trace, raw, old_first)
    except (ValueError, KeyError):  # a trail of an older layout: build it from the bucket's files
        return build_project_trail(w, project, _project_events(bucket, project), raw)


def _old_first(bucket: Bucket, project: str, by_trace: dict[str, list[dict[str, Any]]]) -> dict[str, str | None]:
    """Per trace: the time of its first trail event among those it had before ``by_trace``'s."""
    out: dict[str, str | None] = {}
    for trace_id, new in by_trace.items():
        fresh = {e["event_id"] for e in new}
        old = [e["time"] for e in trail_events(bucket.trace_events(project, trace_id)) if e["event_id"] not in fresh]
        out[trace_id] = min(old) if old else None
    return out


def _blob_files(bucket: Bucket, project: str, events: Iterable[dict[str, Any]]) -> tuple[dict[str, bytes], int]:
    """{bucket path: bytes} of the blobs the events cite and this bucket holds, and the latest citing time."""
    changes: dict[str, bytes] = {}
    time = 0
    for ev in events:
        cited = referenced_blobs(ev)
        if cited:
            time = max(time, epoch(ev["time"]))
        for kind, addr in cited:
            path = blob_path(bucket.root, ev["project"], kind, addr)
            rel = path.relative_to(bucket.root).as_posix()
            if rel in changes:
                continue
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # not fetched here (lazy): the remote keeps it
            if blob_problem(path.name, data):
                continue  # damaged here: the ref keeps the good copy it has (repair restores the file from it)
            changes[rel] = data
    return changes, time


def _blob_commit(w: ObjectWriter, repo: pygit2.Repository, bucket: Bucket, project: str, trace_id: str,
                 events: list[dict[str, Any]], full: bool) -> tuple[pygit2.Oid | None, dict[str, pygit2.Oid]]:
    """(new tip, {path: blob id} the files give): the current commit, or a new one on it holding more."""
    current = gitref.get_ref(repo, blobs_ref(project, trace_id))
    changes, time = _blob_files(bucket, project, events)
    if not changes and current is None:
        return None, {}  # none of its blobs are here (pulled, not fetched yet): the remote keeps them
    base_tree = repo[current].peel(pygit2.Tree).id if current is not None else None
    # what verify expects to find inside the ref: the blobs the files give
    expected = {rel: gitref.object_id(BLOB, data) for rel, data in changes.items()} if full else {}
    tree = update_tree(w, repo, base_tree, changes)
    if current is not None and tree == base_tree:
        return current, expected
    if current is not None:
        time = max(time, repo[current].commit_time)
    msg = f"blobs of trace {trace_id}\n\nProject: {project}\nTrace: {trace_id}\n"
    return w.commit(tree, [current] if current is not None else [], msg, time), expected


def _bucket_commit(w: ObjectWriter, repo: pygit2.Repository, bucket: Bucket, batches: list, traces, full: bool,
                   batch_count: int, times: list[int], head: dict[str, Any]) -> tuple[pygit2.Oid, pygit2.Oid]:
    """(new tip of the bucket chain, its tree); ``head`` is manifest.json's head (its message names it)."""
    current = gitref.get_ref(repo, BUCKET_REF)
    base = repo[current].tree_id if current is not None else None
    if full or current is None:
        files = _full_bucket_files(bucket)
        tree = w.tree(gitref.trees.nest_paths(files))
    else:
        tree = update_tree(w, repo, base, _bucket_changes(bucket, traces, [b.name for b in batches]))
    if current is not None and base == tree:
        return current, tree
    time = max([repo[current].commit_time if current is not None else 0] + times + [0])
    msg = (f"opentraces bucket ({(head.get('summary') or {}).get('trace_count', 0)} traces)\n\n"
           f"Manifest-Digest: {head.get('digest')}\nBatches: {batch_count}\n")
    return w.commit(tree, [current] if current is not None else [], msg, time), tree


def _group(batches: list, names: Names) -> dict[tuple[str, str], list[dict[str, Any]]]:
    by_trace: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for b in batches:
        for ev in b.events:
            by_trace.setdefault((names.canonical(ev["project"]), ev["trace_id"]), []).append(ev)
    return by_trace


def update_mirror(bucket: Bucket, batches: list, traces: list[tuple[str, str]], *, full: bool = False,
                  dry_run: bool = False, scan=None, names: Names | None = None,
                  trail_first: dict[tuple[str, str], str | None] | None = None) -> dict[str, Any]:
    """Bring the mirror up to date after ``batches`` touched ``traces``.

    ``full``: rebuild every ref from the files (``bucket repair``). An
    incremental update that finds the mirror behind (a failed update, a
    bucket copied without ``.git``) is done as a full one.
    ``dry_run``: compute what a full rebuild gives and return
    ``{"tips": {ref: oid}, "trees": {ref: tree}}`` without writing anything;
    ``bucket verify --full`` compares them with the refs.
    ``scan``: the batches already read by the caller (``maintenance.scan``).
    ``trail_first``: per (project, trace), the time of its first trail event
    before these batches, as the writer read it from the trace folder (saves
    reading every touched trace's companions a second time).
    """
    repo = open_mirror(bucket, create=not dry_run)
    if repo is None:
        return {"tips": {}, "trees": {}}
    healed: dict[str, Any] = {}
    if full and not dry_run:
        healed, repo = _heal_storage(bucket, repo)
    full = full or dry_run
    w = ObjectWriter(repo)
    index = bucket.index() or {"batch_count": 0}
    current = gitref.get_ref(repo, BUCKET_REF)
    if not full:
        recorded = int(trailers(repo[current].message).get("Batches", -1)) if current is not None else 0
        if recorded + len(batches) != index["batch_count"]:
            full = True  # the mirror missed batches: every ref may be behind, not only these traces'
    if full:
        from ..maintenance.scan import scan_batches

        scan = scan if scan is not None else scan_batches(bucket)
        batches = scan.batches
        names = scan.names
        by_trace = {k: list(v.values()) for k, v in scan.by_trace.items()}
    else:
        names = names if names is not None else bucket.names()
        by_trace = _group(batches, names)
    tips: dict[str, pygit2.Oid | None] = dict(_events_chains(w, repo, bucket, batches, full))
    trees: dict[str, Any] = {}
    projects = sorted({p for p, _ in by_trace})
    for project in projects:
        per_trace = {t: evs for (p, t), evs in by_trace.items() if p == project}
        tips[trail_ref(project)] = _trail_tip(w, repo, bucket, project, per_trace, full, trail_first)
    for (project, trace_id), evs in sorted(by_trace.items()):
        name = blobs_ref(project, trace_id)
        tips[name], trees[name] = _blob_commit(w, repo, bucket, project, trace_id, evs, full)
        if dry_run:  # nothing later refers to these objects: keep memory to one trace's blobs
            w.discard()
    # the bucket ref, last: it names the manifest the other refs back
    times = [_batch_time(b) for b in batches] if not full else [
        max((epoch(e["time"]) for es in by_trace.values() for e in es), default=0)]
    head = bucket.manifest_head() or {}
    tips[BUCKET_REF], trees[BUCKET_REF] = _bucket_commit(w, repo, bucket, batches, sorted(by_trace), full,
                                                         index["batch_count"], times, head)
    tips[refnames.MAIN] = tips[BUCKET_REF]
    if dry_run:
        w.discard()
        return {"tips": {n: t for n, t in sorted(tips.items()) if t is not None},
                "trees": {n: t for n, t in sorted(trees.items())}}
    w.flush()
    changed = []
    for name, tip in sorted(tips.items(), key=lambda kv: _push_order(kv[0])):
        if tip is not None and move_ref(repo, name, tip, gitref.get_ref(repo, name)) != "unchanged":
            changed.append(name)
    if full:
        changed += _drop_stale(repo, bucket, tips, scan)
    bucket.write_state(statefiles.MIRROR, {"bucket_commit": str(tips[BUCKET_REF]), "digest": head.get("digest")})
    compact(bucket, repo)
    return {"refs_updated": len(changed), "refs": changed, **healed}


def _heal_storage(bucket: Bucket, repo: pygit2.Repository) -> tuple[dict[str, Any], pygit2.Repository]:
    """Before a full rebuild: drop ref files that hold no value (a truncated write) and move damaged
    packs aside (to ``.state/damaged-packs/``, kept for inspection); the rebuild writes every object
    the bucket's files can give again."""
    out: dict[str, Any] = {}
    head = Path(repo.path) / "HEAD"
    if not head.exists() or head.read_bytes() != f"ref: {refnames.HEAD_TARGET}\n".encode():
        head.write_bytes(f"ref: {refnames.HEAD_TARGET}\n".encode())  # holds no data: rewritten when damaged
        out["head_reset"] = True
        repo = gitref.open_repo(Path(repo.path))
    dropped = gitref.drop_corrupt_refs(repo)
    if dropped:
        out["refs_dropped"] = dropped
    bad = gitref.pack_problems(repo)
    if bad:
        aside = bucket.state_dir / "damaged-packs"
        aside.mkdir(parents=True, exist_ok=True)
        gitdir = Path(repo.path)
        for rel, _why in bad:
            p = gitdir / rel
            for suffix in (".idx", ".pack", ".rev"):
                q = p.with_suffix(suffix)
                if q.exists():
                    q.rename(aside / q.name)
        out["packs_set_aside"] = [rel for rel, _why in bad]
        repo = gitref.open_repo(gitdir)  # forget the packs it had opened
    if dropped or bad:  # refs may name objects that went with a pack: let them be set anew
        for name, oid in managed_refs(repo).items():
            if oid not in repo:
                gitref.delete_ref(repo, name, oid)
    return out, repo


def compact(bucket: Bucket, repo: pygit2.Repository, *, force_prune: bool = False) -> dict[str, Any]:
    """Keep the mirror small: roll small packs up when they pile up; prune unreachable
    objects and re-delta everything when the packs have doubled since the last prune
    (so the cost is amortised, proportional to growth). Runs under the writer lock."""
    rec = bucket.read_state(statefiles.REPACK) or {}
    size = gitref.packs_size(repo)
    last = rec.get("bytes", 0) if isinstance(rec, dict) else 0
    if force_prune or (gitref.pack_count(repo) > MAX_PACKS and size > 2 * max(last, 1 << 20)):
        after = gitref.prune_repack(repo)
        bucket.write_state(statefiles.REPACK, {"bytes": after})
        return {"pruned": True, "bytes_before": size, "bytes_after": after}
    if gitref.pack_count(repo) > MAX_PACKS:
        gitref.consolidate_packs(repo, MAX_PACKS)
        gitref.pack_refs(repo)  # as often as packs roll up: refs/ never holds thousands of files
    return {"pruned": False, "bytes_before": size, "bytes_after": gitref.packs_size(repo)}


def _push_order(name: str) -> tuple[int, str]:
    """Blobs, then events, then trails, then the bucket ref and main (DESIGN.md §6)."""
    order = {"blobs": 0, "events": 1, "trails": 2, "bucket": 3, "main": 4}
    return order.get(refnames.kind_of(name) or "", 5), name


def _drop_stale(repo: pygit2.Repository, bucket: Bucket, tips: dict[str, Any], scan) -> list[str]:
    """Delete derived refs no event produces any more (a project renamed by the naming rule),
    only when the bucket still holds everything they hold."""
    event_ids = {eid for evs in scan.by_trace.values() for eid in evs}
    dropped = []
    for name, oid in gitref.list_refs(repo, PREFIX).items():
        kind = refnames.kind_of(name)
        if name in tips or kind not in ("trails", "blobs"):
            continue
        if kind == "trails":
            held = {k for c in gitref.only_in(repo, oid, None) for k in event_ids_of(c)}
            covered = held <= event_ids
        else:
            covered = all((bucket.root / path).exists() for path, _o, _m in gitref.iter_tree(repo, oid))
        if covered:
            gitref.delete_ref(repo, name, oid)
            dropped.append(name)
    return dropped


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
        recorded = trailers(repo[tip].message).get("Manifest-Digest")
    except (KeyError, ValueError, AttributeError) as exc:  # the ref names a missing or non-commit object
        return {"state": "damaged", "detail": f"{BUCKET_REF} -> {tip}: {exc}"}
    return {"state": "current" if recorded == digest else "behind", "commit": str(tip)}
