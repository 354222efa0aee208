"""``bucket remote status`` and ``bucket remote diff``: read-only comparisons with the remote.

Neither writes under the bucket. ``status`` is one ``ls-remote`` compared
with the mirror's refs (objects the mirror already has decide ancestry).
``diff`` fetches the remote's events and bucket refs into a temporary
repository outside the bucket that borrows the mirror's objects
(``objects/info/alternates``), so only what the bucket lacks is downloaded,
and lists batches, traces and blob refs each side has that the other lacks.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
import pygit2

import gitref

from .. import layout, refnames
from ..bucket import Bucket
from ..gitmirror.mirror import lost_rule, managed_refs, open_mirror
from ..gitmirror.trail import trailers
from .transport import Transport, UnauthorizedError, UnreachableError

STATES = ("in_sync", "local_ahead", "remote_ahead", "diverged", "empty", "unreachable", "unauthorized")


def _local(bucket: Bucket) -> tuple[pygit2.Repository | None, dict[str, pygit2.Oid]]:
    repo = open_mirror(bucket, create=False)
    return (None, {}) if repo is None else (repo, managed_refs(repo))


def _side(repo, a: pygit2.Oid | None, b: pygit2.Oid | None) -> str:
    """How local ``a`` relates to remote ``b``: same, local, remote, both."""
    if a == b:
        return "same"
    if b is None:
        return "local"
    if a is None or repo is None or b not in repo:
        return "remote"
    if gitref.is_ancestor(repo, b, a):
        return "local"
    if gitref.is_ancestor(repo, a, b):
        return "remote"
    return "both"


def _digest_of(repo, oid) -> str | None:
    if repo is None or oid is None or oid not in repo:
        return None
    return trailers(repo[oid].message).get("Manifest-Digest")


def status(bucket: Bucket, transport: Transport, remote_refs: dict[str, pygit2.Oid] | None = None) -> dict[str, Any]:
    """``remote_refs``: the remote's refs when the caller has just listed them (one ``ls-remote`` a command)."""
    head = bucket.manifest_head() or {}
    summ = head.get("summary") or {}
    local_side = {"digest": head.get("digest"), "traces": summ.get("trace_count", 0),
                  "batches": (summ.get("batches") or {}).get("batch_count", 0)}
    out: dict[str, Any] = {"url": transport.url, "local": local_side,
                           "encrypted": getattr(transport, "fingerprint", None)}  # the remote key, when encrypted
    try:
        listed = transport.ls_remote() if remote_refs is None else remote_refs
    except (UnauthorizedError, UnreachableError) as exc:
        return {**out, "state": exc.state, "reason": str(exc)}
    remote = {n: o for n, o in listed.items() if refnames.kind_of(n)}
    repo, local = _local(bucket)
    local_side["writers"] = sum(1 for n in local if refnames.kind_of(n) == "events")
    local_side["blob_refs"] = sum(1 for n in local if refnames.kind_of(n) == "blobs")
    out["remote"] = {"digest": _digest_of(repo, remote.get(refnames.BUCKET)),
                     "bucket_commit": str(remote[refnames.BUCKET]) if refnames.BUCKET in remote else None,
                     "writers": sum(1 for n in remote if refnames.kind_of(n) == "events"),
                     "blob_refs": sum(1 for n in remote if refnames.kind_of(n) == "blobs"),
                     "refs": len(remote)}
    if not remote:
        out["state"] = "empty"
        return out
    ahead: dict[str, list[str]] = {"local": [], "remote": []}
    for name in sorted(set(local) | set(remote)):
        kind = refnames.kind_of(name)
        if kind == "blobs" and name not in local:
            continue  # blobs not fetched here (lazy): nothing either side lacks
        side = _side(repo, local.get(name), remote.get(name))
        if side == "both" and kind in ("trails", "blobs", "bucket", "main") and not list(
                lost_rule(name)(repo, remote[name], local[name])):
            side = "local"  # a derived ref this bucket rewrote to hold everything the remote's holds
        if side in ("local", "both"):
            ahead["local"].append(name)
        if side in ("remote", "both"):
            ahead["remote"].append(name)
    if ahead["local"] and ahead["remote"]:
        state = "diverged"
    elif ahead["remote"]:
        state = "remote_ahead"
    elif ahead["local"]:
        state = "local_ahead"
    else:
        state = "in_sync"
    out.update({"state": state, "local_ahead_refs": ahead["local"], "remote_ahead_refs": ahead["remote"]})
    return out


def diff(bucket: Bucket, transport: Transport) -> dict[str, Any]:
    try:
        listed = transport.ls_remote()
    except (UnauthorizedError, UnreachableError) as exc:
        return {"state": exc.state, "reason": str(exc)}
    st = status(bucket, transport, listed)
    remote = {n: o for n, o in listed.items() if refnames.kind_of(n)}
    repo, local = _local(bucket)
    with tempfile.TemporaryDirectory(prefix="opentraces-diff-") as tmp:
        view = pygit2.init_repository(tmp, bare=True)
        if repo is not None:  # borrow the mirror's objects: only what the bucket lacks is downloaded
            (Path(tmp) / "objects" / "info" / "alternates").write_text(str(Path(repo.path) / "objects") + "\n")
            view = pygit2.Repository(tmp)
        names = sorted(n for n in remote if refnames.kind_of(n) in ("events", "bucket"))
        if names:
            transport.fetch(view, [f"{n}:refs/view/{n[len('refs/'):]}" for n in names])
        remote_batches = _batches(view, {n: remote[n] for n in names if refnames.kind_of(n) == "events"})
        remote_traces = _traces(view, remote.get(refnames.BUCKET))
    local_batches = set(bucket.batch_names())
    local_traces = {r["trace_id"] for r in bucket.rows()}
    local_blobs = {n[len(refnames.BLOBS_PREFIX):]: str(o) for n, o in local.items() if refnames.kind_of(n) == "blobs"}
    remote_blobs = {n[len(refnames.BLOBS_PREFIX):]: str(o) for n, o in remote.items() if refnames.kind_of(n) == "blobs"}
    return {
        "state": st["state"],
        "batches": {"local_only": sorted(local_batches - remote_batches), "remote_only": sorted(remote_batches - local_batches)},
        "traces": {"local_only": sorted(local_traces - remote_traces), "remote_only": sorted(remote_traces - local_traces)},
        "blob_sets": {"local_only": sorted(k for k in local_blobs if k not in remote_blobs),
                      "remote_only": sorted(k for k in remote_blobs if k not in local_blobs),
                      "differ": sorted(k for k in local_blobs if k in remote_blobs and local_blobs[k] != remote_blobs[k])},
    }


def _batches(view: pygit2.Repository, tips: dict[str, pygit2.Oid]) -> set[str]:
    out = set()
    for tip in tips.values():
        for c in gitref.only_in(view, tip, None):
            name = trailers(c.message).get("Batch")
            if name:
                out.add(name)
    return out


def _traces(view: pygit2.Repository, tip: pygit2.Oid | None) -> set[str]:
    if tip is None:
        return set()
    tree = view[tip].peel(pygit2.Tree)
    out = set()
    try:
        shards = view[tree[layout.MANIFEST_SHARDS].id].peel(pygit2.Tree)
    except KeyError:
        return out
    for entry in shards:
        try:
            doc = orjson.loads(view[entry.id].data)
            out.update(r["trace_id"] for r in doc.get("traces", []))
        except (ValueError, KeyError, TypeError):
            continue
    return out
