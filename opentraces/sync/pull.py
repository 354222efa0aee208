"""``bucket remote pull``: fetch into staging, verify, merge events, re-project, update the mirror.

Order: the remote's events, trails, bucket and ``main`` refs are fetched
into ``refs/opentraces-staging/v1/`` (blob refs too with ``--eager``); every
new batch is verified (``staging.verify_events``) before anything touches the
bucket; then, under the writer lock, the new batch files are written
(fsynced, each one a commit point), ``catch_up`` projects them like any
other batch (trace folders, manifest, index, mirror), and the remote's bucket
commit is merged into the local bucket chain. Context and raw blobs stay on
the remote (lazy) unless ``--eager``; their blob refs are recorded so reads
can fetch them and ``verify`` can tell lazy from lost.
"""

from __future__ import annotations

from typing import Any

import pygit2

import gitref

from .. import layout, refnames, statefiles, trust
from ..batches import write_batch
from ..bucket import Bucket
from ..errors import CorruptionError
from ..gitmirror.mirror import move_ref, open_mirror
from ..refilters import RECORDS, drop_replaced_batches, is_superseded, parse_record, records, superseded, write_record
from ..writer import writing
from . import staging
from .state import record_remote
from .transport import Transport


def _wanted(remote: dict[str, pygit2.Oid], eager: bool) -> list[str]:
    kinds = ("events", "trails", "bucket", "main") + (("blobs",) if eager else ())
    return sorted(n for n in remote if refnames.kind_of(n) in kinds)


def pull(bucket: Bucket, transport: Transport, *, eager: bool = False, progress=None,
         lock_timeout: float = 30.0, adopt_refilter: bool = False) -> dict[str, Any]:
    """Fetch, verify, merge. A remote another machine re-filtered (its history replaces commits
    this bucket holds, and its bucket tree records the re-filter) is refused with exit 5 and
    named; with ``adopt_refilter`` this bucket takes the re-filtered batches instead of its own
    copies and rebuilds its mirror without the old history (docs/SECURITY.md)."""
    bucket.check()
    remote = transport.ls_remote()
    ours = {n: o for n, o in remote.items() if refnames.kind_of(n)}
    if not ours:
        return {"state": "empty", "batches": 0, "events": 0, "traces": [], "fetched": {"objects": 0, "bytes": 0}}
    with writing(bucket, lock_timeout) as w:
        repo = open_mirror(bucket)
        try:
            staged = staging.fetch(transport, repo, _wanted(ours, eager), progress=progress)
            _refuse_rollback(bucket, repo, transport.url, staged)
            new_records = _new_records(bucket, repo, staged)
            on_disk = set(bucket.batch_names())
            adopted = [(name, doc) for name, doc in new_records
                       if any(old in on_disk and old != new for old, new in doc["batches"].items())]
            if adopted and not adopt_refilter:
                ids = ", ".join(r.get("id", "?") for _n, r in adopted)
                raise CorruptionError(
                    f"the remote was re-filtered (record {ids}, {sum(len(r.get('traces') or []) for _n, r in adopted)} "
                    "trace(s)): its history replaces batches this bucket holds; nothing was changed here",
                    "run 'opentraces bucket remote pull --adopt-refilter' to replace your copies with the filtered ones")
            index = bucket.index() or {"writers": {}}
            heads = _kept_heads(bucket, [d for _n, d in adopted]) if adopted else index["writers"]
            incoming = staging.verify_events(repo, staged, heads, ignore_local_refs=bool(adopted))
            keep, first_pin = trust.check_pull(bucket, _staged_endorsements(repo, staged), incoming.batches)
            for name, doc in new_records:  # every check passed: from here on the bucket changes
                if (name, doc) not in adopted:  # kept, so this bucket's pushes carry them on
                    write_record(bucket.root, name, doc)
            pinned_now, trust_files = trust.apply_pull(bucket, keep, first_pin)
            blobs_written = _eager_blobs(bucket, repo, staged) if eager else 0
            if adopted:  # verified: now replace this bucket's copies
                written = _adopt(w, bucket, repo, adopted, incoming)
            else:
                written = _write_batches(bucket, incoming)
                w.catch_up()
            if trust_files and not written:  # new endorsements only: the bucket ref carries them
                w.update_mirror([], [])
            merged = _merge_bucket_ref(repo, staged.get(refnames.BUCKET))
            _align_main(repo)
            blobs_written += _converge_blob_refs(bucket, repo, transport, ours, eager)
            record_remote(bucket, transport.url, ours)
        finally:
            staging.clear(repo)
    traces = sorted({ev["trace_id"] for b, _ in incoming.batches for ev in b.events})
    return {"state": "pulled" if written else "up_to_date", "batches": written,
            "refilters_adopted": [r.get("id") for _n, r in adopted],
            "events": sum(len(b.events) for b, _ in incoming.batches), "writers": incoming.writers,
            "traces": traces, "bucket_merge": merged, "blobs_written": blobs_written,
            "eager": eager, "trust_pinned": pinned_now}


def _refuse_rollback(bucket: Bucket, repo: pygit2.Repository, url: str, staged: dict[str, pygit2.Oid]) -> None:
    """A ref that only grows (a writer's events, the bucket) now behind what this bucket last saw
    of the same remote: the host rolled it back (or restored an old backup). Refused and named."""
    last = bucket.read_state(statefiles.REMOTE)
    if not isinstance(last, dict) or last.get("url") != url:
        return
    replaced = superseded(bucket.root)
    for name, seen in sorted((last.get("refs") or {}).items()):
        if refnames.kind_of(name) not in ("events", "bucket") or name not in staged:
            continue
        now = staged[name]
        try:
            before = pygit2.Oid(hex=seen)
        except ValueError:
            continue
        if now == before or before not in repo or is_superseded(before, replaced):
            continue
        if gitref.is_ancestor(repo, now, before):
            raise CorruptionError(
                f"the remote's {name} went back from {seen[:12]} to {str(now)[:12]}, which it held before: "
                "the remote was rolled back (or restored from an old copy); nothing was changed here",
                "run 'opentraces bucket remote push' from this machine to put back what it holds, "
                "and find out who rolled the remote back")


def _write_batches(bucket: Bucket, incoming: staging.Incoming) -> int:
    folder = bucket.root / layout.BATCHES
    n = 0
    for b, data in incoming.batches:
        path = folder / b.name
        if path.exists():
            if path.read_bytes() != data:
                raise CorruptionError(f"batch {b.name} from the remote differs from the file of the same name here",
                                      "run 'opentraces bucket verify --full'")
            continue
        write_batch(folder, b.name, data)
        n += 1
    return n


def _align_main(repo: pygit2.Repository) -> None:
    """``main`` names the bucket commit (an update cut between the two refs is finished here)."""
    bucket, main = gitref.get_ref(repo, refnames.BUCKET), gitref.get_ref(repo, refnames.MAIN)
    if bucket is not None and main != bucket:
        move_ref(repo, refnames.MAIN, bucket, main)


def _merge_bucket_ref(repo: pygit2.Repository, theirs: pygit2.Oid | None) -> str | None:
    """Make the local bucket chain hold the remote's: a merge commit when they diverged."""
    if theirs is None:
        return None
    ours = gitref.get_ref(repo, refnames.BUCKET)
    if ours is None or ours == theirs or gitref.is_ancestor(repo, theirs, ours):
        return None
    if repo[theirs].tree_id == repo[ours].tree_id:  # the same bucket: take the remote's history as ours
        move_ref(repo, refnames.BUCKET, theirs, ours)
        move_ref(repo, refnames.MAIN, theirs, gitref.get_ref(repo, refnames.MAIN))
        return "adopted"
    w = gitref.ObjectWriter(repo)
    c = repo[ours]
    msg = c.message.splitlines()[0] + "\n\n" + "\n".join(c.message.splitlines()[2:]) + "\nMerged: " + str(theirs) + "\n"
    merge = w.commit(c.tree_id, [ours, theirs], msg, max(c.commit_time, repo[theirs].commit_time))
    w.flush()
    move_ref(repo, refnames.BUCKET, merge, ours)
    move_ref(repo, refnames.MAIN, merge, gitref.get_ref(repo, refnames.MAIN))
    return "merged"


def _converge_blob_refs(bucket: Bucket, repo: pygit2.Repository, transport: Transport,
                        remote: dict[str, pygit2.Oid], eager: bool) -> int:
    """Blob refs both sides built for one trace (its blobs were here too): adopt or merge the remote's,
    so the two machines converge on one history instead of pushing merges back and forth."""
    from .prefetch import adopt_blob_ref

    both = [n for n, o in remote.items() if refnames.kind_of(n) == "blobs"
            and gitref.get_ref(repo, n) not in (None, o) and not eager]
    if not both:
        return 0
    staged = staging.fetch(transport, repo, sorted(both))
    n = 0
    for name, tip in sorted(staged.items()):
        local = gitref.get_ref(repo, name)
        if local is not None and repo[local].tree_id == repo[tip].tree_id:
            move_ref(repo, name, tip, local)  # the same blobs: take the remote's commit
        else:
            n += adopt_blob_ref(bucket, repo, name, tip)
    return n


def _eager_blobs(bucket: Bucket, repo: pygit2.Repository, staged: dict[str, pygit2.Oid]) -> int:
    from .prefetch import adopt_blob_ref

    n = 0
    for name, tip in sorted(staged.items()):
        if refnames.kind_of(name) == "blobs":
            n += adopt_blob_ref(bucket, repo, name, tip)
    return n


# ------------------------------------------------------------------ re-filters from another machine


def _staged_folder(repo: pygit2.Repository, staged: dict[str, pygit2.Oid], folder: str, parse) -> list[tuple[str, Any]]:
    """(file name, parsed document) of the files in a folder of the remote's bucket tree."""
    tip = staged.get(refnames.BUCKET)
    if tip is None:
        return []
    try:
        tree = repo[tip].peel(pygit2.Tree)
        entries = repo[tree[folder].id]
    except KeyError:
        return []
    out = []
    for entry in entries:
        obj = repo.get(entry.id)
        doc = parse(obj.data) if isinstance(obj, pygit2.Blob) else None
        if doc is not None:
            out.append((entry.name, doc))
    return out


def _staged_records(repo: pygit2.Repository, staged: dict[str, pygit2.Oid]) -> list[tuple[str, dict[str, Any]]]:
    """The re-filter records in the remote's bucket tree."""
    return _staged_folder(repo, staged, RECORDS, parse_record)


def _staged_endorsements(repo: pygit2.Repository, staged: dict[str, pygit2.Oid]) -> list[dict[str, Any]]:
    """The trust endorsements in the remote's bucket tree whose signatures verify."""
    return [doc for name, doc in _staged_folder(repo, staged, trust.FOLDER, trust.parse) if name == trust.file_name(doc)]


def _new_records(bucket: Bucket, repo: pygit2.Repository, staged: dict[str, pygit2.Oid]) -> list[tuple[str, dict]]:
    """(file name, record) of the remote's re-filter records this bucket lacks."""
    have = {r.get("id") for r in records(bucket.root)}
    return [(name, doc) for name, doc in _staged_records(repo, staged) if doc.get("id") not in have]


def _kept_heads(bucket: Bucket, adopted: list[dict[str, Any]]) -> dict[str, dict]:
    """Each writer's head once the replaced batches are gone: where the remote's chain resumes."""
    from ..maintenance.scan import scan_batches

    replaced = {old for doc in adopted for old, new in doc["batches"].items() if old != new}
    heads: dict[str, dict] = {}
    for b in scan_batches(bucket, check_events=False).batches:
        if b.name in replaced:
            continue
        h = heads.get(b.header.writer)
        if h is None or b.header.seq > h["seq"]:
            heads[b.header.writer] = {"seq": b.header.seq, "head": b.sha256, "name": b.name}
    return heads


def _adopt(w, bucket: Bucket, repo: pygit2.Repository, adopted: list[tuple[str, dict[str, Any]]], incoming) -> int:
    """Replace this bucket's copies of the re-filtered batches by the verified remote ones, then
    rebuild projections and a mirror without the old history; blobs only the replaced events
    cited are deleted and no object of the old history stays in ``.git``."""
    from ..security.refilter import drop_old_history

    for name, doc in adopted:  # first: repair and verify then know the replaced batches are gone on purpose
        write_record(bucket.root, name, doc)
    written = _write_batches(bucket, incoming)
    drop_replaced_batches(bucket.root, [d for _n, d in adopted])
    drop_old_history(w, repo, keep_staging=True)  # the staged remote refs are merged next
    return written
