"""Re-filtering: traces captured before a policy, or under an older one, filtered again.

For each trace the raw session is put back together from its stored
chunks, filtered under the current policy and captured again, exactly as a
capture under that policy would have done: the same events, the same ids.
Everything that held the unfiltered text goes:

1. the trace's old events leave every batch that held them; each touched
   writer's chain is re-chained from its first touched batch (same sequence
   numbers, new hashes), so ``verify`` walks an intact chain;
2. blobs no event cites any more (the old raw chunks, context packs) are
   deleted;
3. the Git mirror's history is rebuilt from the rewritten files, its old
   refs and reflogs dropped and its object store repacked and pruned, so no
   old object stays in ``.git``.

The rewrite is recorded in ``events/v1/refilters/<time>-<id>.json``: which
batches it replaced by which, the ids of the events it dropped, and the
commits of the mirror history it superseded. Other tools read it to tell a
re-filter from tampering: a push may replace a remote ref whose value is one
of those commits (and only then), and ``verify`` checks that no replaced
batch is back. Each re-filtered trace also gets a ``security.refiltered``
event. What was pushed before stays on the remote's disk until its own
garbage collection (docs/SECURITY.md).
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import replace
from typing import Any

import pygit2

import gitref

from .. import layout, refnames
from .. import signing
from ..batches import encode_batch, write_batch
from ..blobs import PendingBlobs, stored_source
from ..bucket import Bucket
from ..capture.agents import AGENTS, agent_module
from ..capture.emit import session_events
from ..capture.run import _project_for
from ..encoding import address, canonical_json
from ..errors import OfflineError, RefusedError
from ..events import make_event
from ..maintenance.scan import scan_batches
from ..refilters import RECORD_FORMAT, drop_replaced_batches, write_record
from . import gate as gate_mod
from .tools import CaptureFilter

PENDING = "refilter-pending.json"  # .state: a re-filter that did not finish (the push gate stays closed)
SESSION_KINDS = {"source.captured", "trace.started", "trace.step", "trace.finished", "context.node",
                 "context.layer", "trail.patch", "security.filtered"}


def pending(bucket: Bucket) -> dict[str, Any] | None:
    return bucket.read_state(PENDING)


def _module_for(agent: str):
    for key in AGENTS:
        mod = agent_module(key)
        if mod.AGENT == agent:
            return mod
    raise RefusedError(f"no parser for agent {agent!r}", "upgrade opentraces")


def _scrub(value: Any, filt: CaptureFilter) -> Any:
    if isinstance(value, str):
        return filt.redactor.redact_text(value)
    if isinstance(value, list):
        return [_scrub(v, filt) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, filt) for k, v in value.items()}
    return value


def _trace_events(bucket: Bucket, filt: CaptureFilter, project: str, trace_id: str,
                  old: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], PendingBlobs]:
    """The trace's events as a capture under ``filt`` gives them, plus its other facts, scrubbed."""
    sources = [e for e in old if e["kind"] == "source.captured"]
    if not sources:
        raise RefusedError(f"trace {trace_id} has no stored raw session to filter again",
                           "re-capture it from its session file")
    try:
        data, last = stored_source(bucket.root, sources)
    except ValueError:
        raise RefusedError(f"trace {trace_id}: its raw session is stored in pieces that do not join",
                           "re-capture it from the session file instead") from None
    except OfflineError:
        raise OfflineError(f"the raw session of trace {trace_id} is not in this bucket",
                           f"run 'opentraces bucket prefetch {trace_id}', then refilter again") from None
    mod = _module_for(last["agent"])
    red = filt.run(data)
    parsed = mod.parse(red.data, last["name"])
    real = _project_for(parsed, None, filt.unmask_home(parsed.cwd, red.users))
    seen_as = replace(real, slug=project, root=filt.mask_home(real.root))
    events, blobs = session_events(parsed, red.data, last["name"], seen_as, trace_id, [])
    events.append(make_event("security.filtered", project, trace_id, None, parsed.ended_at, filt.payload(red)))
    new_patch = {e["payload"]["seq"]: e["payload"]["patch_id"] for e in events if e["kind"] == "trail.patch"}
    old_seq = {e["payload"]["patch_id"]: e["payload"]["seq"] for e in old if e["kind"] == "trail.patch"}
    for e in old:
        if e["kind"] in SESSION_KINDS or e["kind"] == "security.refiltered":
            continue
        payload = _scrub(e["payload"], filt)
        if "patch_id" in payload:
            seq = old_seq.get(e["payload"]["patch_id"])
            if seq is None or seq not in new_patch:
                continue  # its patch is gone from the filtered session
            payload["patch_id"] = new_patch[seq]
        events.append(make_event(e["kind"], project, trace_id, e["step"], e["time"], payload))
    return events, blobs


def plan(bucket: Bucket, ready: list[str], trace_ids: list[str] | None) -> list[dict[str, Any]]:
    """The rows to re-filter: the named traces, or every unfiltered or stale one."""
    rows = bucket.rows()
    if trace_ids:
        out = []
        for tid in trace_ids:
            hit = [r for r in rows if r["trace_id"] == tid or (len(tid) >= 8 and r["trace_id"].startswith(tid))]
            if not hit:
                raise RefusedError(f"no trace {tid}", "list them with 'opentraces trace list'")
            out += hit
        return list({r["trace_id"]: r for r in out}.values())
    held = {h.trace_id for h in gate_mod.evaluate(rows, ready).held if h.reason in ("unfiltered", "stale")}
    return [r for r in rows if r["trace_id"] in held]


def refilter(writer, filt: CaptureFilter, trace_ids: list[str] | None = None, *, dry_run: bool = False,
             now: _dt.datetime | None = None) -> dict[str, Any]:
    bucket: Bucket = writer.bucket
    if not filt.redactor.active:
        raise RefusedError("no redaction tool is on: there is nothing to filter with",
                           "choose a policy first: 'opentraces bucket security --policy recommended'")
    left = pending(bucket)
    if left:
        _finish(writer, left)
    rows = plan(bucket, filt.stamp["tools"], trace_ids)
    out: dict[str, Any] = {"dry_run": dry_run, "traces": [r["trace_id"] for r in rows], "policy": filt.stamp["policy"],
                           "tools": filt.stamp["tools"], "version": filt.stamp["version"]}
    if dry_run or not rows:
        out.update({"batches_rewritten": 0, "events_dropped": 0, "events_written": 0})
        return out
    scan = scan_batches(bucket)
    if scan.damaged:
        raise RefusedError(f"damaged batches ({', '.join(n for n, _ in scan.damaged)}): a re-filter rewrites batches",
                           "run 'opentraces bucket verify --full' and 'opentraces bucket repair' first")
    when = (now or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    new_events: list[dict[str, Any]] = []
    blobs = PendingBlobs()
    dropped: set[str] = set()
    for row in rows:
        key = (row["project"], row["trace_id"])
        old = list(scan.by_trace.get(key, {}).values())
        evs, bl = _trace_events(bucket, filt, row["project"], row["trace_id"], old)
        evs.append(make_event("security.refiltered", row["project"], row["trace_id"], None, stamp, {
            "policy": filt.stamp["policy"], "tools": filt.stamp["tools"], "version": filt.stamp["version"],
            "events_dropped": len(old)}))
        new_events += evs
        blobs.items.update(bl.items)
        dropped.update(e["event_id"] for e in old)
    new_ids = {e["event_id"] for e in new_events}
    dropped -= new_ids  # an event the filtered capture gives again stays where it is
    kept = {ev["event_id"] for b in scan.batches for ev in b.events} - dropped
    new_events = [e for e in new_events if e["event_id"] not in kept]
    if not dropped:  # the filter changed nothing already stored: no history to rewrite
        writer.commit(new_events, blobs)
        out.update({"batches_rewritten": 0, "events_dropped": 0, "events_written": len(new_events)})
        return out
    repo = _mirror(bucket)
    commits = _history(repo) if repo is not None else set()
    # 1. the new events, as an ordinary batch (the chain's rewrite below includes it)
    writer.commit(new_events, blobs)
    # 2. the rewrite, announced first so that a crash leaves the gate closed and the next run finishes it
    batches_now = scan_batches(bucket).batches
    renames = _rechain(batches_now, dropped, signing.writer_key(bucket.state_dir, bucket.writer_id()))
    names = {old: new for old, (new, _data) in sorted(renames.items())}
    record_id = address(canonical_json({"time": stamp, "batches": names, "dropped": sorted(dropped)}))[7:23]
    record = {"format": RECORD_FORMAT, "id": record_id, "time": stamp, "policy": filt.stamp["policy"],
              "tools": filt.stamp["tools"], "version": filt.stamp["version"],
              "traces": sorted(r["trace_id"] for r in rows),
              "batches": names,
              "dropped_events": sorted(dropped), "superseded_commits": sorted(c[:16] for c in commits)}
    bucket.write_state(PENDING, {"record": record})
    folder = bucket.root / layout.BATCHES
    for old, (new, data) in sorted(renames.items()):
        if not (folder / new).exists():
            write_batch(folder, new, data)
    write_record(bucket.root, f"{stamp[:19].replace(':', '')}Z-{record_id}.json", record)
    _finish(writer, {"record": record})
    out.update({"batches_rewritten": len(renames), "events_dropped": len(dropped), "events_written": len(new_events),
                "record": record_id})
    return out


def _rechain(batches, dropped: set[str], signer) -> dict[str, tuple[str, bytes]]:
    """old name -> (new name, gzip bytes) for every batch from each writer's first touched one on,
    signed by this writer (the one that re-filtered)."""
    by_writer: dict[str, list] = {}
    for b in batches:
        by_writer.setdefault(b.header.writer, []).append(b)
    out: dict[str, tuple[str, bytes]] = {}
    for writer_id, chain in by_writer.items():
        chain.sort(key=lambda b: b.header.seq)
        first = next((i for i, b in enumerate(chain) if any(e["event_id"] in dropped for e in b.events)), None)
        if first is None:
            continue
        prev = chain[first].header.prev
        for b in chain[first:]:
            kept = [e for e in b.events if e["event_id"] not in dropped]
            name, digest, data = encode_batch(writer_id, b.header.seq, prev, kept, signer)
            out[b.name] = (name, data)
            prev = digest
    return out


def _finish(writer, state: dict[str, Any]) -> None:
    """Delete the replaced batches, then rebuild everything derived without the old history."""
    drop_replaced_batches(writer.bucket.root, [state["record"]])
    repo = _mirror(writer.bucket)
    drop_old_history(writer, repo, keep_staging=False)
    _remove_state(writer.bucket, PENDING)


def drop_old_history(writer, repo: pygit2.Repository | None, *, keep_staging: bool) -> None:
    """After batches were replaced on purpose (a re-filter here, or one adopted from a remote):
    drop the mirror's refs (and staging refs unless a pull still needs them), rebuild projections
    and mirror from the files, delete blobs no event cites, and drop every unreachable object."""
    from ..maintenance.prune import prune

    if repo is not None:
        names = list(gitref.list_refs(repo, refnames.PREFIX))
        if not keep_staging:
            names += list(gitref.list_refs(repo, refnames.STAGING_PREFIX))
        if gitref.get_ref(repo, refnames.MAIN) is not None:
            names.append(refnames.MAIN)
        for name in names:
            repo.references.delete(name)
    writer.repair()
    prune(writer, dry_run=False)
    if repo is not None:
        gitref.drop_unreachable(repo)


def _remove_state(bucket: Bucket, name: str) -> None:
    try:
        os.unlink(bucket.root / layout.STATE / name)
    except FileNotFoundError:
        pass


def _mirror(bucket: Bucket) -> pygit2.Repository | None:
    if not (bucket.root / layout.GIT).is_dir():
        return None
    return gitref.open_repo(bucket.root / layout.GIT)


def _history(repo: pygit2.Repository) -> set[str]:
    """Every commit reachable from the mirror's managed refs."""
    from ..gitmirror.mirror import managed_refs

    return {str(c.id) for tip in managed_refs(repo).values() for c in gitref.only_in(repo, tip, None)}
