#!/usr/bin/env python3
"""Benchmark: Git anchor search over a generated repository.

Builds (with ``git fast-import``) a repository of N commits (default 10,000)
on one branch, each changing one of 200 files, one minute apart; and a
bucket holding one trace whose patches match commits spread over the whole
history (exact-blob patches, unknown-content hunk patches, and patches that
never reach a commit). Then times:

1. the first search (every patch new; the walk goes down to the oldest patch),
2. a second search over the unchanged repository (incremental: no walk),
   also through ``anchor_all`` (what ``trail anchor`` runs, with the lock),
3. a search after 100 new commits land (only those are walked),

next to ``git rev-list --count --all`` (Git walking the same history).

    python scripts/bench_anchors.py [--commits 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentraces.anchors import anchor_all, anchor_project  # noqa: E402
from opentraces.blobs import PendingBlobs  # noqa: E402
from opentraces.bucket import Bucket  # noqa: E402
from opentraces.writer import writing  # noqa: E402
from opentraces.events import make_event  # noqa: E402
from opentraces.project import resolve_project  # noqa: E402

FILES = 200
BASE = 1_780_000_000  # 2026-05-28, arbitrary fixed epoch
STEP = 60


def content(k: int, i: int) -> bytes:
    body = "".join(f"line_{j} = {k} * {j}\n" for j in range(20))
    return f"# file {k}\n{body}value_{k} = {i}  # commit {i}\n".encode()


def path_of(k: int) -> str:
    return f"src/mod{k // 20:02d}/f{k:03d}.py"


def fast_import(repo: Path, start: int, count: int) -> None:
    out = bytearray()
    for i in range(start, start + count):
        k = i % FILES
        msg = f"commit {i}\n".encode()
        data = content(k, i)
        out += b"commit refs/heads/main\n"
        out += f"mark :{i + 1}\n".encode()
        out += f"committer Bench <bench@example.invalid> {BASE + i * STEP} +0000\n".encode()
        out += f"data {len(msg)}\n".encode() + msg
        if i > 0:
            out += f"from :{i}\n".encode() if i > start else b"from refs/heads/main^0\n"
        out += f"M 100644 inline {path_of(k)}\n".encode()
        out += f"data {len(data)}\n".encode() + data + b"\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=bytes(out), check=True)


def rfc(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def build_bucket(root: Path, project: str, n_commits: int) -> tuple[int, int, int]:
    b = Bucket(root)
    blobs = PendingBlobs()
    tid = "00000000-0000-5000-8000-000000000001"
    events = [make_event("trace.started", project, tid, None, rfc(BASE), {"agent": "claude-code", "session_id": "bench"})]
    seq = 0
    exact = hunk = never = 0
    # exact-blob patches: 50 commits spread over the whole history (the oldest first)
    for i in range(FILES, n_commits, max(1, n_commits // 50)):
        k = i % FILES
        before, after = content(k, i - FILES), content(k, i)
        diff = f"@@ -22 +22 @@\n-value_{k} = {i - FILES}  # commit {i - FILES}\n+value_{k} = {i}  # commit {i}\n"
        events.append(make_event("trail.patch", project, tid, seq, rfc(BASE + i * STEP - 20), {
            "patch_id": f"sha256:{seq:064x}", "seq": seq, "path": path_of(k), "tool": "Edit", "tool_call_id": None,
            "operation": "modify", "before": blobs.add_raw(project, before), "after": blobs.add_raw(project, after),
            "before_known": True, "after_known": True, "diff": diff}))
        seq += 1
        exact += 1
    # unknown-content patches (hunk tier): 10 more commits
    for i in range(FILES + 7, n_commits, max(1, n_commits // 10)):
        k = i % FILES
        diff = f"@@ -22 +22 @@\n+value_{k} = {i}  # commit {i}\n"
        events.append(make_event("trail.patch", project, tid, seq, rfc(BASE + i * STEP - 20), {
            "patch_id": f"sha256:{seq:064x}", "seq": seq, "path": path_of(k), "tool": "Edit", "tool_call_id": None,
            "operation": "modify", "before": None, "after": None, "before_known": False, "after_known": False,
            "diff": diff}))
        seq += 1
        hunk += 1
    # 10 patches whose content never reaches a commit (they stay pending)
    for j in range(10):
        k = j * 7
        after = content(k, 10_000_000 + j)
        events.append(make_event("trail.patch", project, tid, seq, rfc(BASE + STEP * (j + 1)), {
            "patch_id": f"sha256:{seq:064x}", "seq": seq, "path": path_of(k), "tool": "Write", "tool_call_id": None,
            "operation": "modify", "before": None, "after": blobs.add_raw(project, after),
            "before_known": True, "after_known": True,
            "diff": f"@@ -22 +22 @@\n+value_{k} = never {j}  # uncommitted work\n"}))
        seq += 1
        never += 1
    events.append(make_event("trace.finished", project, tid, None, rfc(BASE + n_commits * STEP), {"rev": 1}))
    with writing(b) as w:
        w.commit(events, blobs)
    return exact, hunk, never


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commits", type=int, default=10_000)
    ap.add_argument("--keep", default=None, help="Work in this folder and keep it.")
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-anchors-"))
    if work.exists() and args.keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
    try:
        repo = work / "repo"
        repo.mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
        _, t_import = timed(lambda: fast_import(repo, 0, args.commits))
        project = resolve_project(repo).slug
        bucket_root = work / "bucket"
        exact, hunk, never = build_bucket(bucket_root, project, args.commits)
        bucket = Bucket(bucket_root)
        _, t_revlist = timed(lambda: subprocess.run(["git", "rev-list", "--count", "--all"], cwd=repo,
                                                    check=True, capture_output=True))

        def run():
            with writing(bucket) as w:
                return anchor_project(w, project, str(repo))

        print(f"repository: {args.commits} commits, {FILES} files (git fast-import {t_import * 1000:.0f} ms); "
              f"git rev-list --count --all: {t_revlist * 1000:.1f} ms")
        print(f"patches: {exact} exact-blob, {hunk} unknown-content (hunk), {never} never committed")
        r1, t1 = timed(run)
        print(f"first run:        {t1 * 1000:8.1f} ms  walked {r1['commits_walked']:>6}  checked {r1['patches_checked']:>3}  "
              f"anchors +{r1['anchors_added']}  pending {r1['patches_pending']}")
        r2, t2 = timed(run)
        print(f"second run:       {t2 * 1000:8.1f} ms  walked {r2['commits_walked']:>6}  checked {r2['patches_checked']:>3}  "
              f"anchors +{r2['anchors_added']}  pending {r2['patches_pending']}")

        def run_all():
            with writing(bucket) as w:
                return anchor_all(w, {project: str(repo)})

        (r2b,), t2b = timed(run_all)
        print(f"second, all projects:{t2b * 1000:6.1f} ms  walked {r2b['commits_walked']:>6}  (what 'trail anchor' does: "
              f"lock, catch-up, repository check, search)")
        fast_import(repo, args.commits, 100)
        r3, t3 = timed(run)
        print(f"after +100 commits:{t3 * 1000:7.1f} ms  walked {r3['commits_walked']:>6}  checked {r3['patches_checked']:>3}  "
              f"anchors +{r3['anchors_added']}  pending {r3['patches_pending']}")
        ok = (r1["anchors_added"] == exact + hunk and r2["commits_walked"] == 0 and r2["anchors_added"] == 0
              and r2b["commits_walked"] == 0 and r3["commits_walked"] == 100)
        print("checks:", "ok" if ok else "FAILED")
        if not ok:
            sys.exit(1)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
