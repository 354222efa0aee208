"""Git anchors: find the commits that accepted a trace's patches.

For each ``trail.patch`` of a project's traces we walk the project's
repository (every branch, remote-tracking branch and HEAD, newest first by
committer time) and look for the commit that accepted the patch:

* exact blob (``exact_blob_hash``, ``firm_observed``, rank 1): the commit's
  tree holds, at the patch's path, a blob whose Git id equals the Git id of
  the patch's ``after`` content, and no parent already had that blob there
  (the commit introduced it). Only the oldest such commit counts. A
  deletion with a known pre-image is anchored the same way: the commit
  removes the path and its parents held the ``before`` blob.
* overlapping hunk (``overlapping_hunk``, ``statistically_inferred``,
  rank 5): the commit changed the path and its added lines (against the
  first parent) contain every non-blank added line of the patch's diff, in
  order. Used when the after content is unknown, and as the fallback for a
  known-content patch whose exact content never reached a commit (an
  intermediate edit that a later edit of the same session overwrote).
  Patches whose added text is too short to be evidence are not tried.

Only commits whose committer time is at or after the patch time (less
``SLACK_SECONDS`` for clock skew) qualify, so the walk stops at the oldest
pending patch's time. One ``trail.anchor`` event per (patch, commit) found
is appended as one batch; its time is the commit's committer time (a fact
of the repository, so the same anchor found on two machines is one event).

Incremental: ``.state/anchor-state.json`` remembers per project and trace
the branch tips that trace was last searched up to, the patches still
unanchored after that search, and the trace's (patches, anchored) counts
as its manifest row shows them (so an unchanged trace is not even read;
only its trail companion is read when it is). The next run
hides those tips from the revwalk, so an unchanged repository costs a
reference listing and nothing else, and pending patches are checked only
against commits that arrived since. New patches (a new or grown session)
are searched over the whole reachable history down to their time.

The caller holds a Writer (``opentraces.writer.writing``): the lock, caught up.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

import pygit2
from pygit2.enums import SortMode

from . import layout, statefiles
from .blobs import read_raw
from .bucket import Bucket
from .encoding import gunzip_bytes, parse_jsonl
from .errors import CorruptionError, OpentracesError
from .events import make_event

if TYPE_CHECKING:
    from .writer import Writer

STATE = statefiles.ANCHORS
REPOS = statefiles.REPOS
SLACK_SECONDS = 300  # a commit up to 5 minutes "before" the patch still counts (clock skew)
MIN_HUNK_CHARS = 8  # non-blank added characters a patch needs before a hunk match means anything
EXACT = ("exact_blob_hash", "firm_observed", 1)
HUNK = ("overlapping_hunk", "statistically_inferred", 5)
_TIPS_PREFIXES = ("refs/heads/", "refs/remotes/")


@dataclass
class _Patch:
    patch_id: str
    trace_id: str
    step: int | None
    floor: int  # earliest committer time (epoch seconds) a commit may have
    path: str  # relative to the repository root
    target: pygit2.Oid | None  # Git blob id of the after content (exact tier)
    removed: pygit2.Oid | None  # Git blob id of the before content of a deletion
    added: list[str] | None  # non-blank added lines (hunk tier), None: not tried
    group: tuple[str, ...] | None  # tips this patch was searched up to, None: never
    found: list[tuple] = field(default_factory=list)  # (tier, commit_time, order, commit hex, blob hex)


def _epoch(time: str) -> int | None:
    try:
        return int(_dt.datetime.fromisoformat(time.replace("Z", "+00:00")).timestamp())
    except (ValueError, AttributeError):
        return None


def _rfc3339(epoch: int) -> str:
    return _dt.datetime.fromtimestamp(epoch, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def added_lines(diff: str) -> list[str]:
    """Non-blank added lines of a unified diff (trailing whitespace dropped)."""
    out: list[str] = []
    in_hunk = False
    for line in diff.splitlines():
        if line.startswith("@@"):
            in_hunk = True
        elif line.startswith("diff --git "):
            in_hunk = False
        elif in_hunk and line.startswith("+"):
            text = line[1:].rstrip()
            if text.strip():
                out.append(text)
    return out


def _contains_in_order(needles: list[str], hay: list[str]) -> bool:
    it = iter(hay)
    return all(any(h == n for h in it) for n in needles)


def repo_path_of(path: str, root: str) -> str | None:
    """The patch path relative to the repository root, or None when it
    cannot be placed. Capture already stores paths relative to the project
    root (``emit._project_path``); an absolute path is one outside it."""
    if not path:
        return None
    rel = os.path.normpath(path)
    if os.path.isabs(rel):
        base = os.path.normpath(root).rstrip("/")
        if not rel.startswith(base + "/"):
            return None
        rel = rel[len(base) + 1:]
    if rel in (".", "") or rel.startswith("../") or rel == "..":
        return None
    return rel


def repo_tips(repo: pygit2.Repository) -> list[str]:
    """Commit ids at the tips of every local and remote-tracking branch and HEAD."""
    tips: set[str] = set()
    names = [n for n in repo.references if n.startswith(_TIPS_PREFIXES)]
    for name in names:
        try:
            ref = repo.references[name].resolve()
            tips.add(str(repo[ref.target].peel(pygit2.Commit).id))
        except (pygit2.GitError, KeyError, ValueError, TypeError):
            continue
    try:
        tips.add(str(repo.head.peel(pygit2.Commit).id))
    except (pygit2.GitError, KeyError, ValueError, TypeError):
        pass
    return sorted(tips)


_BLOB = pygit2.enums.ObjectType.BLOB
_TREE = pygit2.enums.ObjectType.TREE


def _path_trie(paths: Iterable[str]) -> dict[str, list]:
    """name -> [sub-trie or None, full path when a file of interest ends here or None]."""
    root: dict[str, list] = {}
    for path in paths:
        node = root
        parts = path.split("/")
        for part in parts[:-1]:
            slot = node.setdefault(part, [None, None])
            if slot[0] is None:
                slot[0] = {}
            node = slot[0]
        node.setdefault(parts[-1], [None, None])[1] = path
    return root


def _entry(tree, name: str):
    if tree is None:
        return None
    try:
        return tree[name]
    except KeyError:
        return None


class _Walker:
    """Check commits against pending patches.

    Per commit, only the paths of interest that differ from the first
    parent are examined, found by comparing tree ids top-down (equal
    subtrees are skipped whole), so a commit costs a few tree lookups
    whatever the number of pending paths.
    """

    def __init__(self, repo: pygit2.Repository):
        self.repo = repo
        self.walked = 0

    def blob_at(self, commit: pygit2.Commit, path: str) -> pygit2.Oid | None:
        obj = _entry(commit.tree, path)
        return obj.id if obj is not None and obj.type == _BLOB else None

    def changed(self, tree, ptree, node: dict[str, list], out: dict[str, tuple]) -> None:
        """Paths of ``node`` whose entry differs between ``tree`` and ``ptree``:
        path -> (blob id in tree or None, blob id in ptree or None)."""
        for name, (sub, leaf) in node.items():
            a = _entry(tree, name)
            b = _entry(ptree, name)
            if a is None and b is None:
                continue
            if a is not None and b is not None and a.id == b.id:
                continue
            if leaf is not None:
                out[leaf] = (a.id if a is not None and a.type == _BLOB else None,
                             b.id if b is not None and b.type == _BLOB else None)
            if sub is not None:
                ta = a if a is not None and a.type == _TREE else None
                tb = b if b is not None and b.type == _TREE else None
                if ta is not None or tb is not None:
                    self.changed(ta, tb, sub, out)

    def commit_added(self, old: pygit2.Oid | None, cur: pygit2.Oid) -> list[str]:
        patch = pygit2.Patch.create_from(self.repo[old] if old is not None else None, self.repo[cur], context_lines=0)
        if patch.delta.is_binary:
            return []
        return [ln.raw_content.decode("utf-8", "replace").rstrip()
                for h in patch.hunks for ln in h.lines if ln.origin == "+"]

    def search(self, tips: list[str], hide: Iterable[str], patches: list[_Patch]) -> None:
        live = [p for p in patches if p.target is not None or p.removed is not None or p.added]
        if not live or not tips:
            return
        by_path: dict[str, list[_Patch]] = {}
        for p in live:
            by_path.setdefault(p.path, []).append(p)
        # a path is of interest to commits at or after its earliest patch floor
        path_floor = sorted((min(p.floor for p in ps), path) for path, ps in by_path.items())
        floors = [f for f, _ in path_floor]
        floor = floors[0]
        walker = self.repo.walk(None, SortMode.TIME)
        for tip in tips:
            walker.push(pygit2.Oid(hex=tip))
        for h in hide:
            try:
                oid = pygit2.Oid(hex=h)
                if isinstance(self.repo.get(oid), pygit2.Commit):
                    walker.hide(oid)
            except (ValueError, pygit2.GitError):
                continue
        order = 0
        trie: dict[str, list] = {}
        trie_n = -1
        next_id = next_tree = None
        for commit in walker:
            t = commit.commit_time
            if t < floor:
                break
            self.walked += 1
            order += 1
            n = bisect.bisect_right(floors, t)
            if n != trie_n:
                trie, trie_n = _path_trie(path for _, path in path_floor[:n]), n
            pids = commit.parent_ids
            tree = next_tree if next_id == commit.id else commit.tree
            ptree = self.repo[pids[0]].tree if pids else None
            next_id, next_tree = (pids[0], ptree) if pids else (None, None)  # usually the next commit walked
            diffs: dict[str, tuple] = {}
            self.changed(tree, ptree, trie, diffs)
            for path, (cur, first) in diffs.items():
                cands = [p for p in by_path[path] if t >= p.floor]
                if not cands:
                    continue
                before = [first] + [self.blob_at(self.repo[pid], path) for pid in pids[1:]] if pids else []
                if cur is not None:
                    if cur in before:
                        continue  # a parent already had this content: not introduced here
                    added = None
                    for p in cands:
                        if p.target is not None and p.target == cur:
                            p.found.append((0, t, -order, str(commit.id), str(cur)))
                        elif p.added:
                            if added is None:
                                added = self.commit_added(first, cur)
                            if _contains_in_order(p.added, added):
                                p.found.append((1, t, -order, str(commit.id), str(cur)))
                elif before and all(b is not None for b in before):
                    for p in cands:
                        if p.removed is not None and p.removed in before:
                            p.found.append((0, t, -order, str(commit.id), None))


def _trail_events(bucket: Bucket, project: str, trace_id: str) -> list[dict] | None:
    """The trace's trace.* and trail.* events (its trail companion only), or
    None when the trace does not exist."""
    folder = bucket.trace_path(project, trace_id)
    try:
        data = (folder / layout.TRAIL).read_bytes()
    except FileNotFoundError:
        return None
    try:
        return parse_jsonl(gunzip_bytes(data))
    except ValueError:
        raise CorruptionError(f"the trail companion of trace {trace_id} is damaged",
                              "run 'opentraces bucket repair'") from None


def _build_patch(bucket: Bucket, project: str, trace_id: str, ev: dict, root: str,
                 group: tuple[str, ...] | None) -> _Patch | None:
    p = ev["payload"]
    rel = repo_path_of(p.get("path") or "", root)
    when = _epoch(ev["time"])
    if rel is None or when is None:
        return None
    target = removed = None
    known = bool(p.get("before_known", True)) and bool(p.get("after_known", True))
    if p.get("operation") == "delete":
        if p.get("before"):
            try:
                removed = pygit2.hash(read_raw(bucket.root, project, p["before"]))
            except OpentracesError:
                removed = None
    elif known and p.get("after"):
        try:
            target = pygit2.hash(read_raw(bucket.root, project, p["after"]))
        except OpentracesError:  # blob not here (a pulled bucket): fall back to the hunk tier
            target = None
    added = added_lines(p.get("diff") or "") if p.get("operation") != "delete" else []
    if sum(len(a.strip()) for a in added) < MIN_HUNK_CHARS:
        added = None
    return _Patch(p["patch_id"], trace_id, ev.get("step"), when - SLACK_SECONDS, rel, target, removed,
                  added, group)


def load_repos(bucket: Bucket) -> dict[str, str]:
    doc = bucket.read_state(REPOS)
    return dict(doc) if isinstance(doc, dict) else {}


def anchor_project(writer: "Writer", project_slug: str, repo_path: str, *,
                   traces: Iterable[str] | None = None) -> dict[str, Any]:
    """Search ``repo_path`` for the commits that accepted the patches of
    ``project_slug``'s traces (all, or only ``traces``); append what is found.

    Returns a report: traces, traces_read, patches_checked, patches_pending,
    patches_unplaced, anchors_added, commits_walked, batch.
    """
    bucket = writer.bucket
    canon = bucket.names().canonical(project_slug)  # where the traces are projected (docs/FORMATS.md)
    report: dict[str, Any] = {
        "project": canon, "repo": str(repo_path), "traces": 0, "traces_read": 0,
        "patches_checked": 0, "patches_pending": 0, "patches_unplaced": 0,
        "anchors_added": 0, "commits_walked": 0, "batch": None,
    }
    try:
        repo = pygit2.Repository(str(repo_path))
    except pygit2.GitError:
        report["error"] = f"{repo_path} is not a Git repository"
        return report
    root = (repo.workdir or str(repo_path)).rstrip("/")
    tips = repo_tips(repo)
    tips_key = tuple(tips)

    all_state = bucket.read_state(STATE)
    all_state = all_state if isinstance(all_state, dict) else {}
    pstate = all_state.get(project_slug) if isinstance(all_state.get(project_slug), dict) else {}
    tipsets = [tuple(t) for t in pstate.get("tipsets", [])]
    tstate: dict[str, dict] = dict(pstate.get("traces") or {})

    if traces is not None:  # the caller names the traces: no need to read the manifest
        rows = [{"trace_id": tid, "counts": None} for tid in sorted(set(traces))]
    else:
        rows = [{"trace_id": r["trace_id"], "counts": [r.get("patches"), r.get("anchored")]}
                for r in bucket.rows() if r["project"] == canon]

    patches: list[_Patch] = []
    per_trace: dict[str, dict[str, Any]] = {}  # trace -> {"counts", "pending", "have"}
    for row in rows:
        tid = row["trace_id"]
        st = tstate.get(tid) if isinstance(tstate.get(tid), dict) else None
        old = None
        if st is not None:
            idx = st.get("tipset")
            old = tipsets[idx] if isinstance(idx, int) and 0 <= idx < len(tipsets) else None
            if (row["counts"] is not None and st.get("counts") == row["counts"]
                    and (not st.get("open") or old == tips_key)):
                per_trace[tid] = {"counts": row["counts"], "pending": list(st.get("open") or [])}
                continue
        events = _trail_events(bucket, canon, tid)
        if events is None:
            continue  # no such trace in this project
        report["traces_read"] += 1
        have = {e["event_id"] for e in events}
        anchored = {e["payload"].get("patch_id") for e in events if e["kind"] == "trail.anchor"}
        searched = set(st.get("open") or []) if st is not None else set()
        pending: list[str] = []
        patch_evs = sorted((e for e in events if e["kind"] == "trail.patch"),
                           key=lambda e: (e["payload"].get("seq", 0), e["event_id"]))
        ids = {e["payload"]["patch_id"] for e in patch_evs}
        for ev in patch_evs:
            pid = ev["payload"]["patch_id"]
            if pid in anchored or pid in pending:
                continue
            pending.append(pid)
            group = old if (pid in searched and old is not None) else None
            if group == tips_key:
                continue  # searched up to the current tips already
            patch = _build_patch(bucket, ev["project"], tid, ev, root, group)
            if patch is None:
                report["patches_unplaced"] += 1
                continue
            patches.append(patch)
        # the manifest row's (patches, anchored): what tells the next run whether this trace changed
        per_trace[tid] = {"counts": [len(ids), len(ids & anchored)], "pending": pending, "have": have}
    report["traces"] = len(per_trace)

    walker = _Walker(repo)
    groups: dict[tuple[str, ...] | None, list[_Patch]] = {}
    for p in patches:
        groups.setdefault(p.group, []).append(p)
    for group in sorted(groups, key=lambda g: (g is not None, g or ())):
        walker.search(tips, group or (), groups[group])
    report["commits_walked"] = walker.walked
    report["patches_checked"] = sum(1 for p in patches if p.target is not None or p.removed is not None or p.added)

    new_events: list[dict] = []
    for p in patches:
        if not p.found:
            continue
        tier, t, _neg_order, commit, blob = min(p.found, key=lambda f: (f[0], f[1], f[2]))
        evidence, firmness, rank = EXACT if tier == 0 else HUNK
        ev = make_event("trail.anchor", canon, p.trace_id, p.step, _rfc3339(t), {
            "patch_id": p.patch_id, "commit": commit, "path": p.path, "blob": blob,
            "evidence": evidence, "firmness": firmness, "rank": rank,
        })
        info = per_trace[p.trace_id]
        if ev["event_id"] in info["have"]:
            continue
        info["have"].add(ev["event_id"])
        if p.patch_id in info["pending"]:
            info["pending"].remove(p.patch_id)
            info["counts"][1] += 1
        new_events.append(ev)
    if new_events:
        res = writer.commit(new_events)
        report["batch"] = res.batch
    report["anchors_added"] = len(new_events)

    # remember how far every trace we looked at has been searched
    for tid, info in per_trace.items():
        tstate[tid] = {"counts": info["counts"], "open": sorted(info["pending"]), "tipset": tips_key}
    report["patches_pending"] = sum(len(i["pending"]) for i in per_trace.values())
    used: list[tuple[str, ...]] = []
    out_traces: dict[str, dict] = {}
    for tid in sorted(tstate):
        st = dict(tstate[tid])
        ts = st.get("tipset")
        if isinstance(ts, tuple):
            key = ts
        elif isinstance(ts, int) and 0 <= ts < len(tipsets):
            key = tipsets[ts]
        else:
            key = None
        if key is None:
            st.pop("tipset", None)
        else:
            if key not in used:
                used.append(key)
            st["tipset"] = used.index(key)
        out_traces[tid] = st
    new_pstate = {"repo": root, "tipsets": [list(k) for k in used], "traces": out_traces}
    if new_pstate != pstate:
        all_state[project_slug] = new_pstate
        bucket.write_state(STATE, all_state)
    return report


def _known_repo(bucket: Bucket, slug: str, folder: str) -> bool:
    """Cheap identity check: a tip searched last time is in this repository
    (else the caller derives the project id from the root commit)."""
    doc = bucket.read_state(STATE)
    pstate = doc.get(slug) if isinstance(doc, dict) else None
    if not isinstance(pstate, dict):
        return False
    try:
        repo = pygit2.Repository(folder)
    except pygit2.GitError:
        return False
    for tips in pstate.get("tipsets") or []:
        for tip in tips:
            try:
                if isinstance(repo.get(pygit2.Oid(hex=tip)), pygit2.Commit):
                    return True
            except (ValueError, pygit2.GitError):
                continue
    return False


def anchor_all(writer: "Writer", repos: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Anchor every project whose repository folder is known and still here."""
    from .project import resolve_project

    bucket = writer.bucket
    repos = load_repos(bucket) if repos is None else repos
    out = []
    for slug in sorted(repos):
        folder = repos[slug]
        if not folder or not os.path.isdir(folder):
            continue
        if not _known_repo(bucket, slug, folder) and resolve_project(folder).slug != slug:
            out.append({"project": slug, "repo": folder, "error": "the folder now holds a different repository",
                        "anchors_added": 0, "commits_walked": 0, "patches_checked": 0})
            continue
        try:
            out.append(anchor_project(writer, slug, folder))
        except pygit2.GitError as exc:  # a repository libgit2 cannot read: report it, go on
            out.append({"project": slug, "repo": folder, "error": f"cannot read the repository ({exc})",
                        "anchors_added": 0, "commits_walked": 0, "patches_checked": 0})
    return out


def anchor_captured(writer: "Writer", repos: dict[str, str], captured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Anchor the traces a capture just wrote, for projects whose repository
    is on this machine (capture calls this under its lock, after its batches)."""
    by_project: dict[str, set[str]] = {}
    for item in captured:
        by_project.setdefault(item["project"], set()).add(item["trace_id"])
    out = []
    for slug, traces in sorted(by_project.items()):
        folder = repos.get(slug)
        if not folder or not os.path.isdir(folder):
            continue
        try:
            out.append(anchor_project(writer, slug, folder, traces=traces))
        except (OpentracesError, pygit2.GitError, OSError) as exc:  # the capture itself is committed
            out.append({"project": slug, "repo": folder, "error": str(exc), "anchors_added": 0,
                        "commits_walked": 0, "patches_checked": 0})
    return out
