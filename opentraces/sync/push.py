"""``bucket remote push``: blobs, then events, then trails, then the bucket ref and ``main``.

Only what the remote lacks moves (Git's negotiation; a no-op push is one
``ls-remote`` and nothing else). Each stage is one ``git push`` of several
refs; every ref's result is checked. Refs that grow are pushed plainly (the
server refuses a non-fast-forward); a derived ref that must be rewritten is
checked against the remote's value first and pushed with a lease on it.

If the remote holds events this bucket lacks (another machine pushed), the
push pulls first (fetch, verify, merge, re-derive) and goes on; if it loses a
race (a lease or fast-forward refused because the remote moved meanwhile) it
pulls and tries again. Two machines never need ``--force`` and never lose
data. A ref refused for another reason (a hook, a protected ref) stops the
push with the ref and the server's reason (exit 3); the stages already done
leave the remote consistent, and a rerun completes it.
"""

from __future__ import annotations

from typing import Any, Callable

import pygit2

import gitref

from .. import refnames
from ..bucket import Bucket
from ..errors import RefusedError
from ..gitmirror.mirror import lost_rule, managed_refs, merge_blob_refs, open_mirror
from . import staging
from ..refilters import is_superseded, superseded
from .pull import pull
from .state import record_remote
from .transport import RejectedError, Transport

STAGES = (("blobs",), ("events",), ("trails",), ("bucket", "main"))
RETRIES = 6
_RACE = ("stale info", "fetch first", "non-fast-forward", "failed to lock", "cannot lock ref", "incorrect old value")


class _Again(Exception):
    """The remote moved or holds events we lack: pull and start over."""


def _remote_has_new_events(repo: pygit2.Repository, remote: dict[str, pygit2.Oid], replaced: set[str]) -> bool:
    for name, oid in remote.items():
        if refnames.kind_of(name) != "events" or is_superseded(oid, replaced):
            continue
        local = gitref.get_ref(repo, name)
        if local == oid:
            continue
        if oid not in repo or local is None or not gitref.is_ancestor(repo, oid, local):
            return True
    return False


def _plan(transport: Transport, repo: pygit2.Repository, kinds: tuple[str, ...], local: dict[str, pygit2.Oid],
          remote: dict[str, pygit2.Oid], replaced: set[str]) -> list[tuple[str, pygit2.Oid, pygit2.Oid | None]]:
    """The (name, new, lease) updates of one stage. A remote value that a recorded re-filter
    superseded (``replaced``) is replaced with a lease on it, without fetching it back."""
    updates = []
    names = [n for n in sorted(local) if refnames.kind_of(n) in kinds]
    for n in [n for n in names if remote.get(n) != local[n] and is_superseded(remote.get(n), replaced)]:
        updates.append((n, local[n], remote[n]))
    names = [n for n in names if not is_superseded(remote.get(n), replaced)]
    unknown = [n for n in names if remote.get(n) is not None and remote[n] != local[n] and remote[n] not in repo]
    if unknown:  # a value we never saw (a blob ref another machine grew): fetch it to compare
        staged = staging.fetch(transport, repo, unknown)
        missing = [n for n in unknown if n not in staged]
        if missing:
            raise _Again()
    for name in names:
        new, old = local[name], remote.get(name)
        kind = refnames.kind_of(name)
        try:
            state, lease = gitref.plan_update(repo, name, new, old, lost=lost_rule(name))
        except gitref.WouldLoseError:
            if kind == "blobs":  # both sides grew one trace's blobs: the union, on both parents
                updates.append((name, merge_blob_refs(repo, name, new, old), None))
                continue
            raise _Again() from None  # the remote holds events we lack: pull, re-derive, retry
        if state in ("unchanged", "behind"):
            continue  # (behind: the remote holds what we hold and more)
        updates.append((name, new, lease))
    return updates


def _one_round(bucket: Bucket, transport: Transport, progress, transfer: gitref.Transfer) -> dict[str, Any]:
    remote = transport.ls_remote()
    repo = open_mirror(bucket)
    replaced = superseded(bucket.root)
    if _remote_has_new_events(repo, remote, replaced):
        raise _Again()
    local = managed_refs(repo)
    pushed: dict[str, str] = {}
    try:
        for kinds in STAGES:
            updates = _plan(transport, repo, kinds, local, remote, replaced)
            if not updates:
                continue
            statuses = transport.push(repo, updates, progress=progress, transfer=transfer)
            rejected = {n: st.reason for n, st in statuses.items() if not st.ok}
            if rejected:
                if all(any(r in reason for r in _RACE) for reason in rejected.values()):
                    raise _Again()
                shown = "; ".join(f"{n}: {r}" for n, r in sorted(rejected.items()))
                raise RejectedError(f"the remote rejected {len(rejected)} ref(s): {shown}",
                                    "fix what the server objects to, then run 'opentraces bucket remote push' again",
                                    rejected)
            for n, new, _lease in updates:
                pushed[n] = str(new)
                remote[n] = new
                local[n] = new  # (a merged blob ref); refs a capture moved meanwhile wait for the next push
    finally:
        staging.clear(repo)
    record_remote(bucket, transport.url, remote)
    return {"refs": pushed}


def push(bucket: Bucket, transport: Transport, *, progress=None, lock_timeout: float = 30.0,
         gate: Callable[[Bucket], None] | None = None) -> dict[str, Any]:
    """Push every changed ref. ``gate`` runs first, before any network traffic, and
    refuses by raising (the security push gate, ``opentraces.security.gate``)."""
    bucket.check()
    if not bucket.exists():
        raise RefusedError(f"no bucket at {bucket.root}", "capture sessions first")
    if gate is not None:
        gate(bucket)
    transfer = gitref.Transfer()
    pulls = []
    for attempt in range(RETRIES):
        try:
            # no writer lock while bytes move: a capture (the Claude Code hook) must not wait for the
            # network. Local refs are read once per round and only moved by compare-and-swap; a capture
            # that lands meanwhile is pushed by the next push.
            res = _one_round(bucket, transport, progress, transfer)
            return {"state": "pushed" if res["refs"] else "up_to_date", "refs": res["refs"],
                    "sent": {"objects": transfer.objects, "bytes": transfer.bytes},
                    "pulled_first": pulls, "attempts": attempt + 1}
        except _Again:
            pulls.append(pull(bucket, transport, progress=progress, lock_timeout=lock_timeout))
    raise RejectedError(f"the remote kept moving during {RETRIES} attempts", "run 'opentraces bucket remote push' again", {})
