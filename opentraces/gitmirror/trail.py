"""Trail commits: a project's trail events as history a person can read.

Layout ``opentraces.trail.v2`` (docs/GIT.md):

* **one chain per trace**: one commit per ``trail.*`` event of that trace,
  in canonical order (time, step, kind, event id); its parent is the
  previous event of the same trace. The tree holds only that event::

      event.json          the event, pretty JSON
      patch.diff          trail.patch: the unified diff (git apply at the repo root)
      before/<path>       trail.patch: the file before (absent: did not exist)
      after/<path>        ... and after

* **one project chain**: one merge commit per trace, ordered by the trace's
  first trail event (time, then trace id); parents are the previous project
  commit and the trace's tip; the tree is empty. The trail ref points at the
  last one.

Every commit is a pure function of its events and parents (fixed identity,
event times), so the same events give the same ids everywhere. A new session
appends (fast-forward); an event that arrives late changes its own trace's
chain from its position on, and the project commits from that trace on,
nothing else. No sequence numbers appear in paths or messages.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import orjson
import pygit2

from gitref import ObjectWriter, UnsafeNameError
from gitref.trees import split_path

from ..encoding import pretty_json
from ..errors import OfflineError
from ..events import sort_key

TRAIL_FORMAT = "opentraces.trail.v2"
Raw = Callable[[str], bytes]


def trail_events(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trail.* events, de-duplicated, in canonical order."""
    uniq = {e["event_id"]: e for e in events if e["kind"].startswith("trail.")}
    return sorted(uniq.values(), key=sort_key)


def epoch(time: str) -> int:
    dt = _dt.datetime.fromisoformat(time.replace("Z", "+00:00"))
    return int(dt.timestamp())


def trailers(message: str) -> dict[str, str]:
    """``Key: value`` lines after the subject of a commit message."""
    return dict(line.split(": ", 1) for line in message.splitlines()[1:] if ": " in line)


# ------------------------------------------------------------------ one event

def _event_message(ev: dict[str, Any]) -> str:
    p = ev["payload"]
    trace = ev["trace_id"]
    if ev["kind"] == "trail.patch":
        subject = f"patch {p['path']} (trace {trace[:8]} step {ev['step']})"
    elif ev["kind"] == "trail.anchor":
        subject = (f"anchor {p.get('path')} -> {str(p.get('commit'))[:12]} "
                   f"({p.get('evidence')}, trace {trace[:8]} step {ev['step']})")
    else:
        subject = f"{ev['kind']} (trace {trace[:8]} step {ev['step']})"
    lines = [subject, "", f"Opentraces-Format: {TRAIL_FORMAT}", f"Kind: {ev['kind']}",
             f"Trace: {trace}", f"Step: {ev['step']}", f"Time: {ev['time']}", f"Event: {ev['event_id']}"]
    if p.get("patch_id"):
        lines.append(f"Patch: {p['patch_id']}")
    return "\n".join(lines) + "\n"


def _snapshot(path: str, content: bytes | None) -> dict[str, Any] | None:
    """A nested mapping holding ``content`` at ``path`` (None when there is no file)."""
    if content is None:
        return None
    node: dict[str, Any] = {}
    root = node
    parts = split_path(path)
    for part in parts[:-1]:
        node[part] = {}
        node = node[part]
    node[parts[-1]] = content
    return root


def _event_tree(w: ObjectWriter, ev: dict[str, Any], raw: Raw, reuse: dict[str, Any] | None) -> pygit2.Oid:
    entries: dict[str, Any] = {"event.json": pretty_json(ev)}
    p = ev["payload"]
    if ev["kind"] != "trail.patch":
        return w.tree(entries)
    if reuse:  # the same event's objects from the chain being rebuilt: no re-read, no re-hash
        entries.update({k: v for k, v in reuse.items() if v is not None})
        return w.tree(entries)
    entries["patch.diff"] = p.get("diff", "").encode()
    path = p["path"].lstrip("/")
    before_ok = p.get("before_known", True) and (p.get("before") or p.get("operation") == "create")
    after_ok = p.get("after_known", True) and (p.get("after") or p.get("operation") == "delete")
    if before_ok and after_ok:
        try:
            before = _snapshot(path, raw(p["before"]) if p.get("before") else None)
            after = _snapshot(path, raw(p["after"]) if p.get("after") else None)
        except OfflineError as exc:  # say whose blobs are missing, so a caller can fetch them
            exc.trace_id = ev["trace_id"]
            raise
        except UnsafeNameError:
            return w.tree(entries)  # a path Git cannot hold (e.g. '..'): patch.diff still records it
        if before is not None:
            entries["before"] = before
        if after is not None:
            entries["after"] = after
    return w.tree(entries)


def _reusable(repo: pygit2.Repository, commit: pygit2.Oid, ev: dict[str, Any]) -> dict[str, Any] | None:
    if ev["kind"] != "trail.patch":
        return None
    tree = repo[commit].peel(pygit2.Tree)
    if "patch.diff" not in tree:
        return None
    return {name: (tree[name].id if name in tree else None) for name in ("patch.diff", "before", "after")}


def _event_of(repo: pygit2.Repository, commit: pygit2.Oid) -> dict[str, Any] | None:
    try:
        return orjson.loads(repo[commit].peel(pygit2.Tree)["event.json"].data)
    except (KeyError, ValueError):
        return None


# ------------------------------------------------------------- trace chains

def build_trace_chain(w: ObjectWriter, events: list[dict[str, Any]], raw: Raw, *,
                      parent: pygit2.Oid | None = None, reuse: dict[str, dict[str, Any]] | None = None) -> pygit2.Oid | None:
    """Stage one commit per event (already in canonical order) on ``parent``."""
    tip = parent
    reuse = reuse or {}
    for ev in events:
        tree = _event_tree(w, ev, raw, reuse.get(ev["event_id"]))
        tip = w.commit(tree, [tip] if tip is not None else [], _event_message(ev), epoch(ev["time"]))
    return tip


def extend_trace_chain(w: ObjectWriter, repo: pygit2.Repository, tip: pygit2.Oid | None,
                       new: list[dict[str, Any]], raw: Raw) -> tuple[pygit2.Oid | None, int]:
    """The trace chain ``tip`` with the events ``new`` added (a pure function of the union).

    Walks back from ``tip`` only over the commits whose event sorts after the
    first new event, and rebuilds that suffix with them (reusing their diff
    and snapshot objects), so an append costs one commit per new event.
    """
    if not new:
        return tip, 0
    first = sort_key(new[0])
    suffix: list[dict[str, Any]] = []
    reuse: dict[str, dict[str, Any]] = {}
    base = tip
    while base is not None:
        ev = _event_of(repo, base)
        if ev is None or trailers(repo[base].message).get("Opentraces-Format") != TRAIL_FORMAT:
            raise ValueError(f"{base} is not a trail event commit")
        if sort_key(ev) < first:
            break
        suffix.append(ev)
        objs = _reusable(repo, base, ev)
        if objs is not None:
            reuse[ev["event_id"]] = objs
        parents = repo[base].parent_ids
        base = parents[0] if parents else None
    events = trail_events(suffix + new)
    return build_trace_chain(w, events, raw, parent=base, reuse=reuse), len(events) - len(suffix)


# ----------------------------------------------------------- project chain

@dataclass(frozen=True)
class TraceTip:
    trace_id: str
    first: str  # time of the trace's first trail event (orders the project chain)
    last: str  # time of its last trail event (the project commit's time)
    tip: pygit2.Oid
    events: int

    @property
    def order(self) -> tuple[str, str]:
        return (self.first, self.trace_id)


def _project_message(project: str, t: TraceTip) -> str:
    return (f"trail of trace {t.trace_id[:8]} ({t.events} event{'s' if t.events != 1 else ''})\n\n"
            f"Opentraces-Format: {TRAIL_FORMAT}\nProject: {project}\nTrace: {t.trace_id}\n"
            f"First: {t.first}\nLast: {t.last}\nEvents: {t.events}\n")


def _project_entry(repo: pygit2.Repository, commit: pygit2.Oid) -> tuple[TraceTip, pygit2.Oid | None] | None:
    """(the trace this project commit adds, the previous project commit) or None if not one."""
    c = repo[commit]
    f = trailers(c.message)
    if f.get("Opentraces-Format") != TRAIL_FORMAT or "First" not in f or "Trace" not in f:
        return None
    parents = c.parent_ids
    last = f.get("Last", f["First"])
    if len(parents) == 1:
        return TraceTip(f["Trace"], f["First"], last, parents[0], int(f.get("Events", 0))), None
    if len(parents) == 2:
        return TraceTip(f["Trace"], f["First"], last, parents[1], int(f.get("Events", 0))), parents[0]
    return None


def build_project_chain(w: ObjectWriter, project: str, tips: list[TraceTip],
                        parent: pygit2.Oid | None = None) -> pygit2.Oid | None:
    empty = w.tree({})
    head = parent
    for t in sorted(tips, key=lambda t: t.order):
        head = w.commit(empty, ([head] if head is not None else []) + [t.tip], _project_message(project, t),
                        max(epoch(t.last), 0))
    return head


def update_project_trail(w: ObjectWriter, repo: pygit2.Repository, project: str, current: pygit2.Oid | None,
                         new_by_trace: dict[str, list[dict[str, Any]]], raw: Raw,
                         old_first: dict[str, str | None]) -> pygit2.Oid | None:
    """The project trail ``current`` with ``new_by_trace`` (trace id -> new trail events) added.

    ``old_first``: per changed trace, the time of its first trail event before
    these (None: it had none, so it is not in the chain yet). Reads back only
    the project commits from the earliest changed trace on: a trace's tip is
    part of every project commit after it, so those are the ones that change.
    """
    new_by_trace = {t: trail_events(evs) for t, evs in new_by_trace.items()}
    new_by_trace = {t: evs for t, evs in new_by_trace.items() if evs}
    if not new_by_trace:
        return current
    low = min((min(evs[0]["time"], old_first.get(t) or evs[0]["time"]), t) for t, evs in new_by_trace.items())
    walked: dict[str, TraceTip] = {}
    base = current
    while base is not None:
        entry = _project_entry(repo, base)
        if entry is None:
            raise ValueError(f"{base} is not a project trail commit")
        t, prev = entry
        if t.order < low:
            break
        walked[t.trace_id] = t
        base = prev
    for trace_id, evs in new_by_trace.items():
        old = walked.get(trace_id)
        if old is None and old_first.get(trace_id):
            raise ValueError(f"trace {trace_id} is missing from the project trail")
        tip, added = extend_trace_chain(w, repo, old.tip if old else None, evs, raw)
        first = min(evs[0]["time"], old.first) if old else evs[0]["time"]
        last = max(evs[-1]["time"], old.last) if old else evs[-1]["time"]
        walked[trace_id] = TraceTip(trace_id, first, last, tip, (old.events if old else 0) + added)
    return build_project_chain(w, project, list(walked.values()), parent=base)


def build_project_trail(w: ObjectWriter, project: str, events: Iterable[dict[str, Any]], raw: Raw) -> pygit2.Oid | None:
    """The project trail from its events alone (repair, verify, replay)."""
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for ev in trail_events(events):
        by_trace.setdefault(ev["trace_id"], []).append(ev)
    tips = []
    for trace_id, evs in by_trace.items():
        tip = build_trace_chain(w, evs, raw)
        tips.append(TraceTip(trace_id, evs[0]["time"], max(e["time"] for e in evs), tip, len(evs)))
    return build_project_chain(w, project, tips)


def event_ids_of(commit: pygit2.Commit) -> list[str]:
    """What a commit of a trail holds, for superset checks: the event of an event commit
    (its ``Event:`` trailer, any layout version), nothing for a project commit, and the
    commit itself for anything that is not a trail commit (someone else's data)."""
    f = trailers(commit.message)
    if "Event" in f:
        return [f["Event"]]
    if f.get("Opentraces-Format", "").startswith("opentraces.trail."):
        return []
    return [f"commit {commit.id}"]
