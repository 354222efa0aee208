"""``bucket replay --repo CLONE``: write a project's trail into a clone.

The clone gets ``refs/opentraces/local/events/v1`` with exactly the commit
ids of the bucket's ``refs/opentraces/v1/trails/<project>`` (both are the
same pure function of the trail events), plus ``refs/notes/opentraces``
notes on the commits that accepted a patch. Works from the bucket's files
alone (no ``.git`` needed). Objects land as one pack.

A clone that holds an older trail is moved to the new one when the new one
holds every event of the old one (read from the ``Event:`` trailers of the
commits only the old one has); otherwise replay refuses, naming what would
be dropped, unless ``--force`` (which keeps the old value under a backup
ref). The notes commit is a pure function of the trail's anchors, so every
clone computes the same one.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pygit2

import gitref
from gitref import ObjectWriter

from .. import refnames
from ..bucket import Bucket
from ..errors import LockedError, OpentracesError, RefusedError
from ..project import root_commit_of
from ..projects import tag_of
from .mirror import _raw_reader, open_mirror
from .trail import build_project_trail, epoch, event_ids_of, trail_events

LOCAL_REF = refnames.LOCAL_TRAIL
NOTES_REF = refnames.NOTES
BACKUP_PREFIX = refnames.BACKUP_PREFIX


def _open_clone(path: str) -> pygit2.Repository:
    try:
        return gitref.open_repo(path)
    except gitref.GitrefError as exc:
        raise RefusedError(f"{path} is not a Git repository ({exc})", "pass --repo with a clone of the project") from None


def _tag(root_commit: str) -> str:
    return hashlib.sha256(f"git:{root_commit}".encode()).hexdigest()[:8]


def pick_project(bucket: Bucket, clone: pygit2.Repository, project: str | None, path: str) -> str:
    rc = root_commit_of(clone)
    if rc is None:
        raise RefusedError(f"{path} has no commits, so it cannot be matched to a project", "clone the project first")
    tag = _tag(rc)
    slugs = sorted({r["project"] for r in bucket.rows()})
    if project is not None:
        if project not in slugs:
            raise RefusedError(f"the bucket has no project {project!r}", "run 'opentraces trace list' to see projects")
        if tag_of(project) != tag:
            raise RefusedError(
                f"{path} is a different project (root commit {rc[:12]}) than {project}",
                "pass --repo with a clone of that project")
        return project
    hits = [s for s in slugs if tag_of(s) == tag]
    if not hits:
        raise RefusedError(f"no project in the bucket matches {path} (root commit {rc[:12]})",
                           "capture sessions of this repository first, or pass --project")
    if len(hits) > 1:  # only a bucket not yet repaired after the naming rule changed
        raise RefusedError(f"several projects match {path}: {', '.join(hits)}", "run 'opentraces bucket repair'")
    return hits[0]


def _note_text(anchors: list[dict[str, Any]], agent_of) -> str:
    lines = []
    for ev in anchors:
        p = ev["payload"]
        agent = agent_of(ev["trace_id"])
        lines.append(f"opentraces: trace {ev['trace_id']} step {ev['step']}")
        lines.append(f"  patch {p['patch_id']} {p.get('path')} ({p.get('evidence')})")
        lines.append(f"  agent {agent.get('name')} {agent.get('version') or ''} model {agent.get('model') or ''}".rstrip())
    return "\n".join(lines) + "\n"


def notes_commit(w: ObjectWriter, bucket: Bucket, project: str, events: list[dict[str, Any]]) -> pygit2.Oid | None:
    """The notes commit for a trail: a pure function of its anchor events (no parent)."""
    by_commit: dict[str, list[dict[str, Any]]] = {}
    for ev in events:
        if ev["kind"] == "trail.anchor":
            c = str(ev["payload"].get("commit") or "")
            if len(c) == 40 and all(ch in "0123456789abcdef" for ch in c):
                by_commit.setdefault(c, []).append(ev)
    if not by_commit:
        return None
    agents: dict[str, dict[str, Any]] = {}

    def agent_of(trace_id: str) -> dict[str, Any]:  # each trace.json read once
        if trace_id not in agents:
            try:
                agents[trace_id] = bucket.trace_record(project, trace_id)["agent"]
            except OpentracesError:
                agents[trace_id] = {}
        return agents[trace_id]

    entries = {commit: _note_text(anchors, agent_of).encode() for commit, anchors in sorted(by_commit.items())}
    time = max(epoch(e["time"]) for evs in by_commit.values() for e in evs)
    msg = f"opentraces: notes for {len(by_commit)} commit(s) of {project}\n"
    return w.commit(w.tree(entries), [], msg, time)


def _lost_notes(repo: pygit2.Repository, old: pygit2.Oid, new: pygit2.Oid) -> list[str]:
    """Commits annotated in the old notes that the new notes no longer annotate (fan-out ignored)."""
    def annotated(oid):
        return {path.replace("/", "") for path, _o, _m in gitref.iter_tree(repo, oid)}
    return sorted(annotated(old) - annotated(new))


def _lost_events(clone: pygit2.Repository, current: pygit2.Oid, tip: pygit2.Oid, have: set[str]) -> list[str]:
    """What the clone's trail holds that the new trail (events ``have``) does not."""
    if tip in clone and gitref.is_ancestor(clone, current, tip):
        return []
    held: set[str] = set()
    for c in gitref.only_in(clone, current, tip if tip in clone else None):
        held.update(event_ids_of(c))
    return sorted(held - have)


def replay(bucket: Bucket, repo_path: str, *, project: str | None = None, force: bool = False) -> dict[str, Any]:
    try:
        return _replay(bucket, repo_path, project=project, force=force)
    except gitref.RefLockedError as exc:
        lock = os.path.join(_open_clone(repo_path).path, exc.name + ".lock")
        raise LockedError(f"{exc.name} is locked in {repo_path} ({lock} exists): another git process is "
                          "updating it, or one was killed",
                          f"if no git process is running there, delete {lock} and run replay again") from None


def _replay(bucket: Bucket, repo_path: str, *, project: str | None = None, force: bool = False) -> dict[str, Any]:
    bucket.check()
    if not bucket.exists():
        raise RefusedError(f"no bucket at {bucket.root}", "capture sessions first")
    clone = _open_clone(repo_path)
    slug = pick_project(bucket, clone, project, repo_path)
    events: list[dict[str, Any]] = []
    for row in bucket.rows():
        if row["project"] == slug:
            events.extend(bucket.trace_events(slug, row["trace_id"]))
    trail = trail_events(events)
    if not trail:
        raise RefusedError(f"project {slug} has no trail events to replay", "capture a session that edits files")
    w = ObjectWriter(clone)
    mirror = open_mirror(bucket, create=False)  # a pulled bucket: snapshots of unfetched traces are there
    tip = build_project_trail(w, slug, trail, _raw_reader(bucket, slug, mirror))
    notes_new = notes_commit(w, bucket, slug, trail)
    current = gitref.get_ref(clone, LOCAL_REF)
    lost = _lost_events(clone, current, tip, {ev["event_id"] for ev in trail}) if current not in (None, tip) else []
    if lost and not force:  # checked before anything is written into the clone
        raise RefusedError(
            f"{LOCAL_REF} in {repo_path} holds {len(lost)} event(s) or commit(s) this bucket's trail does not "
            f"(e.g. {lost[0]}); replay would drop them",
            "capture or pull the sessions that hold them, or pass --force (the old value is kept under "
            + BACKUP_PREFIX + ")")
    pack = w.flush()
    backup = None
    try:
        state = gitref.guarded_update(clone, LOCAL_REF, tip, current, lost=gitref.lost_commit_keys(event_ids_of),
                                      message="opentraces replay")
    except gitref.WouldLoseError:
        backup = f"{BACKUP_PREFIX}{str(current)[:12]}"
        gitref.update_ref(clone, backup, current, gitref.get_ref(clone, backup), force=False)
        gitref.update_ref(clone, LOCAL_REF, tip, current, force=False, message="opentraces replay --force")
        state = "replaced"
    notes_written = 0
    notes_old = gitref.get_ref(clone, NOTES_REF)
    if notes_new is not None and notes_new != notes_old:
        try:
            gitref.guarded_update(clone, NOTES_REF, notes_new, notes_old, lost=_lost_notes, message="opentraces notes")
        except gitref.WouldLoseError as exc:
            if not force:
                raise RefusedError(f"{NOTES_REF} in {repo_path} holds notes on {len(exc.lost)} commit(s) "
                                   "that this trail does not annotate; replay would drop them",
                                   "pass --force to replace them") from None
            gitref.update_ref(clone, NOTES_REF, notes_new, notes_old, force=False)
        notes_written = len(list(gitref.iter_tree(clone, notes_new)))
    return {
        "repo": os.path.abspath(repo_path), "project": slug, "ref": LOCAL_REF, "head": str(tip),
        "state": {"unchanged": "current"}.get(state, state), "events": len(trail), "backup_ref": backup,
        "notes_written": notes_written, "notes": str(notes_new) if notes_new else None,
        "pack": os.path.basename(pack) if pack else None,
    }
