"""Trail commits: a project's trail events as a chain a person can read.

One commit per trail event, in the canonical order of events (time, step,
kind, event id), each a pure function of its event and its parent, so the
same events give the same commit ids on every machine and in every clone.

Tree of one commit (per event, not cumulative):

    events/<seq:012d>.json                    the event, pretty JSON
    patches/<seq:012d>-<patch12>.diff         trail.patch: the unified diff
    snapshots/<patch12>/before/<path>         trail.patch: the file before
    snapshots/<patch12>/after/<path>          ... and after (when known)

so ``git diff <c>:snapshots/<p>/before <c>:snapshots/<p>/after`` shows the
patch. Commit time is the event's time; identity is fixed.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Callable, Iterable

import pygit2

from gitref import ObjectWriter, UnsafeNameError
from gitref.trees import split_path

from ..encoding import pretty_json
from ..events import sort_key

TRAIL_FORMAT = "opentraces.trail.v1"
LOCAL_REF = "refs/opentraces/local/events/v1"
NOTES_REF = "refs/notes/opentraces"


def trail_ref(project: str) -> str:
    return f"refs/opentraces/v1/trails/{project}"


def trail_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trail.* events, de-duplicated, in canonical order."""
    uniq = {e["event_id"]: e for e in events if e["kind"].startswith("trail.")}
    return sorted(uniq.values(), key=sort_key)


def epoch(time: str) -> int:
    dt = _dt.datetime.fromisoformat(time.replace("Z", "+00:00"))
    return int(dt.timestamp())


def _message(seq: int, ev: dict[str, Any]) -> str:
    p = ev["payload"]
    trace = ev["trace_id"]
    if ev["kind"] == "trail.patch":
        subject = f"patch {p['path']} (trace {trace[:8]} step {ev['step']})"
    elif ev["kind"] == "trail.anchor":
        subject = f"anchor {p.get('path')} -> {str(p.get('commit'))[:12]} ({p.get('evidence')}, trace {trace[:8]} step {ev['step']})"
    else:
        subject = f"{ev['kind']} (trace {trace[:8]} step {ev['step']})"
    lines = [subject, "", f"Opentraces-Format: {TRAIL_FORMAT}", f"Seq: {seq}", f"Kind: {ev['kind']}",
             f"Trace: {trace}", f"Step: {ev['step']}", f"Time: {ev['time']}", f"Event: {ev['event_id']}"]
    if p.get("patch_id"):
        lines.append(f"Patch: {p['patch_id']}")
    return "\n".join(lines) + "\n"


def _snapshot(path: str, content: bytes | None) -> dict[str, Any]:
    """A nested mapping holding ``content`` at ``path`` (empty when None)."""
    if content is None:
        return {}
    node: dict[str, Any] = {}
    root = node
    parts = split_path(path)
    for part in parts[:-1]:
        node[part] = {}
        node = node[part]
    node[parts[-1]] = content
    return root


def _tree_for(w: ObjectWriter, seq: int, ev: dict[str, Any], raw: Callable[[str], bytes],
              reuse: dict[str, Any] | None = None) -> pygit2.Oid:
    name = f"{seq:012d}"
    entries: dict[str, Any] = {"events": {f"{name}.json": pretty_json(ev)}}
    p = ev["payload"]
    if ev["kind"] == "trail.patch":
        short = p["patch_id"][7:19]
        if reuse:  # the same event's objects from the chain being rebuilt: no re-read, no re-hash
            entries["patches"] = {f"{name}-{short}.diff": reuse["diff"]}
            if reuse.get("snapshots") is not None:
                entries["snapshots"] = {short: reuse["snapshots"]}
            return w.tree(entries)
        entries["patches"] = {f"{name}-{short}.diff": p.get("diff", "").encode()}
        path = p["path"].lstrip("/")
        before_ok = p.get("before_known", True) and (p.get("before") or p.get("operation") == "create")
        after_ok = p.get("after_known", True) and (p.get("after") or p.get("operation") == "delete")
        if before_ok and after_ok:
            try:
                before = raw(p["before"]) if p.get("before") else None
                after = raw(p["after"]) if p.get("after") else None
                entries["snapshots"] = {short: {"before": _snapshot(path, before), "after": _snapshot(path, after)}}
            except UnsafeNameError:
                pass  # a path Git cannot hold (e.g. '..'): the diff file still records it
    return w.tree(entries)


def build_chain(
    w: ObjectWriter,
    events: list[dict[str, Any]],
    raw: Callable[[str], bytes],
    *,
    parent: pygit2.Oid | None = None,
    start_seq: int = 1,
    reuse: dict[str, dict[str, Any]] | None = None,
) -> pygit2.Oid | None:
    """Stage the commits for ``events`` (already in canonical order) on ``parent``.

    ``reuse`` maps event ids to objects of an earlier commit of the same event
    (``diff`` blob id, ``snapshots`` tree id) that are already in the repository."""
    tip = parent
    reuse = reuse or {}
    for i, ev in enumerate(events):
        seq = start_seq + i
        tree = _tree_for(w, seq, ev, raw, reuse.get(ev["event_id"]))
        tip = w.commit(tree, [tip] if tip is not None else [], _message(seq, ev), epoch(ev["time"]))
    return tip


def reusable_objects(repo: pygit2.Repository, commit: pygit2.Oid, ev: dict[str, Any]) -> dict[str, Any] | None:
    """The diff blob and snapshot tree of a trail.patch commit, for ``build_chain(reuse=...)``."""
    if ev["kind"] != "trail.patch":
        return None
    short = ev["payload"]["patch_id"][7:19]
    tree = repo[commit].peel(pygit2.Tree)
    try:
        diff = next(e.id for e in repo[tree["patches"].id] if e.name.endswith(f"-{short}.diff"))
    except (KeyError, StopIteration):
        return None
    try:
        snaps = repo[tree["snapshots"].id].peel(pygit2.Tree)[short].id
    except KeyError:
        snaps = None
    return {"diff": diff, "snapshots": snaps}


def tip_position(repo: pygit2.Repository, tip: pygit2.Oid | None) -> tuple[int, str | None]:
    """(seq, event id) recorded in a trail commit's message, or (0, None)."""
    if tip is None:
        return 0, None
    try:
        msg = repo[tip].message
    except (KeyError, ValueError):
        return 0, None
    fields = dict(line.split(": ", 1) for line in msg.splitlines()[2:] if ": " in line)
    if fields.get("Opentraces-Format") != TRAIL_FORMAT:
        return 0, None
    return int(fields.get("Seq", 0)), fields.get("Event")


def extend_chain(
    w: ObjectWriter,
    repo: pygit2.Repository,
    current: pygit2.Oid | None,
    events: list[dict[str, Any]],
    raw: Callable[[str], bytes],
) -> pygit2.Oid | None:
    """The tip for ``events``, reusing ``current`` when it is a prefix of them.

    When the current chain's last event is at position k of the canonical
    order, only events after k are written; otherwise (an earlier event
    arrived late, or no chain yet) the chain is built from the start. Both
    give the ids a fresh build would.
    """
    seq, last = tip_position(repo, current)
    if seq and seq <= len(events) and events[seq - 1]["event_id"] == last:
        if seq == len(events):
            return current
        return build_chain(w, events[seq:], raw, parent=current, start_seq=seq + 1)
    return build_chain(w, events, raw)
