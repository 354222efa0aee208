"""``bucket replay --repo CLONE``: write a project's trail into a clone.

The clone gets ``refs/opentraces/local/events/v1`` with exactly the commit
ids of the bucket's ``refs/opentraces/v1/trails/<project>`` (both are the
same pure function of the trail events), plus ``refs/notes/opentraces``
notes on the commits that accepted a patch. Works from the bucket's files
alone (no ``.git`` needed). Objects land as one pack.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pygit2

import gitref
from gitref import ObjectWriter

from ..bucket import Bucket
from ..errors import OpentracesError, RefusedError
from ..project import root_commit_of
from .mirror import _raw_reader
from .trail import LOCAL_REF, NOTES_REF, build_chain, epoch, trail_events

BACKUP_PREFIX = "refs/opentraces/local/backup/"


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
        if not project.endswith("-" + tag):
            raise RefusedError(
                f"{path} is a different project (root commit {rc[:12]}) than {project}",
                "pass --repo with a clone of that project")
        return project
    hits = [s for s in slugs if s.endswith("-" + tag)]
    if not hits:
        raise RefusedError(f"no project in the bucket matches {path} (root commit {rc[:12]})",
                           "capture sessions of this repository first, or pass --project")
    if len(hits) > 1:
        raise RefusedError(f"several projects match {path}: {', '.join(hits)}", "pass --project SLUG")
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


def _notes(w: ObjectWriter, clone: pygit2.Repository, bucket: Bucket, project: str,
           events: list[dict[str, Any]]) -> tuple[pygit2.Oid | None, pygit2.Oid | None, int]:
    """(current notes tip, new notes tip or None if unchanged, notes written)."""
    by_commit: dict[str, list[dict[str, Any]]] = {}
    for ev in events:
        if ev["kind"] == "trail.anchor":
            c = ev["payload"].get("commit")
            try:
                if c and isinstance(clone.get(c), pygit2.Commit):
                    by_commit.setdefault(c, []).append(ev)
            except ValueError:
                continue
    current = gitref.get_ref(clone, NOTES_REF)
    if not by_commit:
        return current, None, 0
    entries: dict[str, Any] = {}
    if current is not None:
        for path, oid, mode in gitref.iter_tree(clone, current):
            entries[path.replace("/", "")] = (mode, oid)  # flatten any fan-out
    agents: dict[str, dict[str, Any]] = {}

    def agent_of(trace_id: str) -> dict[str, Any]:  # each trace.json read once
        if trace_id not in agents:
            try:
                agents[trace_id] = bucket.trace_record(project, trace_id)["agent"]
            except OpentracesError:
                agents[trace_id] = {}
        return agents[trace_id]

    changed = 0
    for commit, anchors in sorted(by_commit.items()):
        ours = _note_text(anchors, agent_of)
        old = entries.get(commit)
        if old is not None:
            text = clone[old[1]].data.decode("utf-8", "replace")
            if ours in text:
                continue
            ours = text.rstrip("\n") + "\n\n" + ours
        entries[commit] = w.blob(ours.encode())
        changed += 1
    if not changed:
        return current, None, 0
    tree = w.tree(entries)
    time = max(epoch(e["time"]) for evs in by_commit.values() for e in evs)
    if current is not None:
        time = max(time, clone[current].commit_time)
    msg = f"opentraces: notes for {len(by_commit)} commit(s) of {project}\n"
    return current, w.commit(tree, [current] if current is not None else [], msg, time), changed


def replay(bucket: Bucket, repo_path: str, *, project: str | None = None, force: bool = False) -> dict[str, Any]:
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
    tip = build_chain(w, trail, _raw_reader(bucket, slug))
    current = gitref.get_ref(clone, LOCAL_REF)
    backup = None
    state = "current"
    if current != tip:
        if current is None:
            state = "created"
        elif current in w:  # the rebuilt chain passes through the current tip
            state = "fast-forward"
        elif not force:
            raise RefusedError(
                f"{LOCAL_REF} in {repo_path} already holds a different trail ({str(current)[:12]})",
                "pass --force to replace it (the old value is kept under " + BACKUP_PREFIX + ")")
        else:
            state = "replaced"
    notes_old, notes_new, notes_written = _notes(w, clone, bucket, slug, trail)
    pack = w.flush()
    if state == "replaced":
        backup = f"{BACKUP_PREFIX}{str(current)[:12]}"
        gitref.update_ref(clone, backup, current, gitref.get_ref(clone, backup), force=False)
    if state != "current":
        gitref.update_ref(clone, LOCAL_REF, tip, current, force=False, message="opentraces replay")
    if notes_new is not None:
        gitref.update_ref(clone, NOTES_REF, notes_new, notes_old, force=False, message="opentraces replay notes")
    return {
        "repo": os.path.abspath(repo_path), "project": slug, "ref": LOCAL_REF, "head": str(tip),
        "state": state, "events": len(trail), "backup_ref": backup, "notes_written": notes_written,
        "pack": os.path.basename(pack) if pack else None,
    }
