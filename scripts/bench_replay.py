#!/usr/bin/env python3
"""Benchmark: trail replay vs ``git fast-import``, and the Git mirror's cost per capture.

Part 1, replay. Generates N ``trail.patch`` events (default 100,000) the way
capture emits them: one project of 200 Python files (gen_sessions.py's
generator, 30-160 lines each), every event a small edit of one file (1-3
lines replaced, inserted or deleted), its diff made by libgit2 as capture
does, its before/after contents stored as raw blobs in a temporary bucket
through ``PendingBlobs`` + ``fsio.write_many_new``. Then times, into fresh
bare repositories:

- ours: ``trail_events`` (canonical order) + ``build_project_trail`` (reads and
  hash-checks every blob from the bucket, pretty-prints every event, hashes
  every object) + ``ObjectWriter.flush`` (one pack) -- exactly what
  ``bucket replay`` does after reading the events;
- ``git fast-import`` fed the same commits (``deleteall`` + ``M`` lines, the
  same messages, identity and times; every distinct blob once), plain and
  with ``MALLOC_TOP_PAD_=64M``. The stream is written beforehand and not
  timed. Its tip must equal ours: the same commit id means the same trees
  and blobs, i.e. the same objects.

``git count-objects -v`` must show no loose objects after our replay, and
``git fsck --full --strict`` must pass on it (``--no-fsck`` to skip).

Part 2, mirror cost. Generates sessions with gen_sessions.py and captures
each into two buckets, ``Bucket(mirror=True)`` and ``Bucket(mirror=False)``,
alternating which goes first, in one process; reports the median and total
capture time of each and the mirror's added cost.

    python scripts/bench_replay.py [--events 100000 ...] [--repeat 3] [--sessions 60] [--steps 30]
                                   [--tmp DIR] [--keep] [--no-fsck] [--skip-capture] [--skip-replay]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pygit2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import gitref  # noqa: E402
from gen_sessions import generate, python_module  # noqa: E402
from gitref import ObjectWriter  # noqa: E402
from opentraces.blobs import PendingBlobs  # noqa: E402
from opentraces.bucket import Bucket  # noqa: E402
from opentraces.capture import agent_module, capture_paths  # noqa: E402
from opentraces.encoding import address, canonical_json  # noqa: E402
from opentraces.events import make_event  # noqa: E402
from opentraces.fsio import write_many_new  # noqa: E402
from opentraces.gitmirror.mirror import _raw_reader  # noqa: E402
from opentraces.gitmirror.trail import build_project_trail, trail_events  # noqa: E402
from opentraces.ids import trace_id_for  # noqa: E402

PROJECT = "bench-replay-0badcafe"
FILES = 200
PATCHES_PER_TRACE = 50
BASE = dt.datetime(2026, 6, 1, 8, 0, 0, tzinfo=dt.timezone.utc)
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.devnull}


# ------------------------------------------------------------------ events
def _edit(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    i = rng.randrange(1, max(2, len(lines) - 1))
    k = rng.randint(1, 3)
    new = [f"    {rng.choice(['value', 'result', 'total', 'item'])} = {rng.randint(0, 9999)}  # tuned"
           for _ in range(rng.randint(0, 3))]
    if not new and k >= len(lines) - 2:
        new = ["# edited"]
    lines[i:i + k] = new
    return "\n".join(lines)


def generate_events(n: int, bucket: Path, seed: int = 0) -> list[dict]:
    """N trail.patch events in one project; their raw blobs written into ``bucket``."""
    rng = random.Random(f"bench-replay:{seed}")
    files = {f"src/pkg{i % 10}/mod_{i:03d}.py": python_module(rng, rng.randint(30, 160)) for i in range(FILES)}
    paths = sorted(files)
    events = []
    pending = PendingBlobs()
    for i in range(n):
        path = rng.choice(paths)
        before = files[path]
        after = _edit(rng, before)
        files[path] = after
        b_raw, a_raw = before.encode(), after.encode()
        diff = pygit2.Patch.create_from(b_raw, a_raw, path, path).text or ""
        trace_id = trace_id_for("claude-code", f"bench-replay-{seed}-{i // PATCHES_PER_TRACE}")
        seq = i % PATCHES_PER_TRACE
        when = (BASE + dt.timedelta(seconds=7 * i)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        patch_id = address(canonical_json({"trace_id": trace_id, "seq": seq, "path": path, "diff": diff}))
        events.append(make_event("trail.patch", PROJECT, trace_id, seq + 1, when, {
            "patch_id": patch_id, "seq": seq, "path": path, "tool": "Edit",
            "tool_call_id": f"toolu_bench{i:09d}", "operation": "modify",
            "before": pending.add_raw(PROJECT, b_raw), "after": pending.add_raw(PROJECT, a_raw),
            "before_known": True, "after_known": True, "diff": diff,
        }))
        if len(pending.items) >= 4000:
            write_many_new([(bucket / rel, data) for rel, data in pending.items.items()])
            pending = PendingBlobs()
    write_many_new([(bucket / rel, data) for rel, data in pending.items.items()])
    return events


# ------------------------------------------------------------------ git helpers
def git(git_dir: Path, *args: str, env: dict | None = None, stdin=None) -> subprocess.CompletedProcess:
    done = subprocess.run(["git", f"--git-dir={git_dir}", *args], env=env or GIT_ENV, stdin=stdin,
                          capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace')}")
    return done


def count_objects(git_dir: Path) -> dict[str, int]:
    out = git(git_dir, "count-objects", "-v").stdout.decode()
    return {k: int(v) for k, v in (ln.split(": ", 1) for ln in out.splitlines())}


def fast_import_stream(repo: pygit2.Repository, tip: pygit2.Oid, out: Path) -> int:
    """Write the chain ending at ``tip`` as a fast-import stream; returns its size."""
    marks: dict[pygit2.Oid, int] = {}
    walker = repo.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)
    with open(out, "wb") as f:
        for c in walker:
            rows = []
            for path, oid, mode in gitref.iter_tree(repo, c.tree_id):
                if oid not in marks:
                    marks[oid] = len(marks) + 1
                    data = repo[oid].data
                    f.write(b"blob\nmark :%d\ndata %d\n" % (marks[oid], len(data)))
                    f.write(data)
                    f.write(b"\n")
                rows.append(b"M %o :%d %s\n" % (mode, marks[oid], path.encode()))
            who = b"opentraces <opentraces@localhost> %d +0000" % c.commit_time
            msg = c.raw_message
            marks[c.id] = len(marks) + 1  # commits and blobs share one mark space
            if not c.parent_ids:  # a parentless commit (the first of a trace chain): start afresh
                f.write(b"reset refs/heads/trail\n")
            f.write(b"commit refs/heads/trail\nmark :%d\nauthor %s\ncommitter %s\ndata %d\n"
                    % (marks[c.id], who, who, len(msg)))
            f.write(msg)
            for i, parent in enumerate(c.parent_ids):  # the project commits are merges
                f.write(b"%s :%d\n" % (b"from" if i == 0 else b"merge", marks[parent]))
            f.write(b"deleteall\n")
            f.writelines(rows)
            f.write(b"\n")
        f.write(b"done\n")
    return out.stat().st_size


def run_fast_import(work: Path, stream: Path, name: str, extra_env: dict | None = None) -> tuple[float, str, dict]:
    git_dir = work / name
    gitref.open_or_init_bare(git_dir)
    env = dict(GIT_ENV, **(extra_env or {}))
    with open(stream, "rb") as f:
        t0 = time.perf_counter()
        git(git_dir, "fast-import", "--quiet", "--done", env=env, stdin=f)
        elapsed = time.perf_counter() - t0
    tip = git(git_dir, "rev-parse", "refs/heads/trail").stdout.decode().strip()
    return elapsed, tip, count_objects(git_dir)


# ------------------------------------------------------------------ part 1
def replay_ours(bucket: Path, events: list[dict], git_dir: Path) -> tuple[float, float, pygit2.Oid, int, Path]:
    """What ``bucket replay`` does once it has the events: order, build, one pack, set the ref."""
    repo = gitref.open_or_init_bare(git_dir)
    b = Bucket(bucket, mirror=False)
    t0 = time.perf_counter()
    w = ObjectWriter(repo)
    tip = build_project_trail(w, PROJECT, trail_events(events), _raw_reader(b, PROJECT))
    staged = len(w)
    t1 = time.perf_counter()
    pack = w.flush()
    gitref.update_ref(repo, "refs/opentraces/local/events/v1", tip, None, force=False)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, tip, staged, pack


def bench_replay(n: int, work: Path, fsck: bool, repeat: int) -> dict:
    bucket = work / f"bucket-{n}"
    t0 = time.perf_counter()
    events = generate_events(n, bucket)
    print(f"[{n}] generated {n} events + blobs in {time.perf_counter() - t0:.1f}s", flush=True)
    stream = work / f"stream-{n}.fi"
    ours_runs, fi_runs, tuned_runs = [], [], []
    tip = ours = fi_counts = size = fsck_s = None
    for r in range(repeat):  # alternate, so drift on a shared machine hits both
        git_dir = work / f"ours-{n}-{r}.git"
        build_s, flush_s, tip_r, staged, pack = replay_ours(bucket, events, git_dir)
        counts = count_objects(git_dir)
        print(f"[{n}] run {r + 1}: ours build {build_s:.2f}s + flush {flush_s:.2f}s, {staged} objects, "
              f"pack {pack.stat().st_size / 1e6:.1f} MB, loose {counts['count']}", flush=True)
        if counts["count"] != 0 or counts["packs"] != 1:
            raise SystemExit(f"expected one pack and no loose objects, got {counts}")
        if tip is not None and tip_r != tip:
            raise SystemExit("replay is not deterministic")
        tip, ours = tip_r, counts
        ours_runs.append((build_s, flush_s))
        if r == 0:
            if fsck:
                t0 = time.perf_counter()
                git(git_dir, "fsck", "--full", "--strict")
                fsck_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            size = fast_import_stream(gitref.open_repo(git_dir), tip, stream)
            print(f"[{n}] fast-import stream {size / 1e6:.0f} MB written in {time.perf_counter() - t0:.1f}s", flush=True)
        fi_s, fi_tip, fi_counts = run_fast_import(work, stream, f"fi-{n}-{r}.git")
        tuned_s, tuned_tip, _ = run_fast_import(work, stream, f"fi-tuned-{n}-{r}.git", {"MALLOC_TOP_PAD_": str(64 << 20)})
        if fi_tip != str(tip) or tuned_tip != str(tip):
            raise SystemExit(f"fast-import tip {fi_tip} differs from ours {tip}: not the same objects")
        if fi_counts["in-pack"] != ours["in-pack"]:
            raise SystemExit(f"object counts differ: fast-import {fi_counts['in-pack']}, ours {ours['in-pack']}")
        fi_runs.append(fi_s)
        tuned_runs.append(tuned_s)
        print(f"[{n}] run {r + 1}: fast-import {fi_s:.2f}s (MALLOC_TOP_PAD_ {tuned_s:.2f}s), same tip {fi_tip[:12]}",
              flush=True)
        for d in (git_dir, work / f"fi-{n}-{r}.git", work / f"fi-tuned-{n}-{r}.git"):
            if r < repeat - 1:
                shutil.rmtree(d)
    stream.unlink()
    totals = [b + f for b, f in ours_runs]
    best = min(range(repeat), key=lambda i: totals[i])
    return {
        "events": n, "objects": ours["in-pack"], "runs": repeat,
        "ours": totals[best], "ours_build": ours_runs[best][0], "ours_flush": ours_runs[best][1],
        "ours_median": statistics.median(totals), "fi": min(fi_runs), "fi_median": statistics.median(fi_runs),
        "fi_tuned": min(tuned_runs), "ours_pack_mb": ours["size-pack"] / 1024,
        "fi_pack_mb": fi_counts["size-pack"] / 1024, "loose": ours["count"], "fsck": fsck_s, "tip": str(tip),
    }


# ------------------------------------------------------------------ part 2
def bench_capture(work: Path, sessions: int, steps: int) -> dict:
    src = work / "sessions"
    # in the order the sessions started, as the Stop hook captures them
    paths = sorted(generate(src, sessions, steps, seed=7),
                   key=lambda p: orjson.loads(p.read_bytes().split(b"\n", 1)[0])["timestamp"])
    claude = agent_module("claude-code")
    roots = {True: work / "bucket-mirror", False: work / "bucket-plain"}
    times: dict[bool, list[float]] = {True: [], False: []}
    for i, path in enumerate(paths):
        order = (True, False) if i % 2 == 0 else (False, True)
        for mirror in order:
            bucket = Bucket(roots[mirror], mirror=mirror)
            t0 = time.perf_counter()
            rep = capture_paths(bucket, claude, [path])
            times[mirror].append(time.perf_counter() - t0)
            if len(rep.captured) != 1:
                raise SystemExit(f"capture of {path} captured {rep.captured}")
    m = count_objects(roots[True] / ".git")
    if m["count"] > 50:
        raise SystemExit(f"mirror left {m['count']} loose objects")
    on, off = times[True], times[False]
    return {
        "sessions": sessions, "steps": steps, "median_on": statistics.median(on), "median_off": statistics.median(off),
        "total_on": sum(on), "total_off": sum(off), "packs": m["packs"], "loose": m["count"],
        "refs": len(gitref.list_refs(gitref.open_repo(roots[True] / ".git"), "refs/opentraces/")),
    }


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, nargs="+", default=[100_000], help="trail events (several: a scaling table)")
    ap.add_argument("--sessions", type=int, default=60, help="sessions for the mirror-cost part")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--tmp", type=Path, default=None, help="work folder parent (default: the system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--no-fsck", dest="fsck", action="store_false")
    ap.add_argument("--skip-capture", action="store_true")
    ap.add_argument("--skip-replay", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="runs per size (best and median reported)")
    a = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-replay-", dir=a.tmp))
    print(f"work folder {work}; git {subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.strip()}, "
          f"pygit2 {pygit2.__version__}, libgit2 {pygit2.LIBGIT2_VERSION}, {os.cpu_count()} CPUs", flush=True)
    try:
        rows = [] if a.skip_replay else [bench_replay(n, work, a.fsck, a.repeat) for n in a.events]
        cap = None if a.skip_capture else bench_capture(work, a.sessions, a.steps)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    if rows:
        print("\nreplay vs git fast-import, same objects (identical tip ids); best of N runs, median in ()")
        print(f"{'events':>8} {'objects':>9} {'ours s':>15} {'build+flush':>13} {'fast-import s':>15} "
              f"{'+TOP_PAD s':>10} {'ratio':>6} {'vs TOP_PAD':>10} {'pack MB':>13} {'loose':>5} {'fsck s':>6}")
        for r in rows:
            fsck_s = f"{r['fsck']:.1f}" if r["fsck"] is not None else "-"
            print(f"{r['events']:>8} {r['objects']:>9} {r['ours']:>6.2f} ({r['ours_median']:>6.2f}) "
                  f"{r['ours_build']:>6.2f}+{r['ours_flush']:<6.2f} {r['fi']:>6.2f} ({r['fi_median']:>6.2f}) "
                  f"{r['fi_tuned']:>10.2f} {r['ours'] / r['fi']:>6.2f} {r['ours'] / r['fi_tuned']:>10.2f} "
                  f"{r['ours_pack_mb']:>6.1f}/{r['fi_pack_mb']:<6.1f} {r['loose']:>5} {fsck_s:>6}")
        print("pack MB: ours/fast-import; ratio: ours best / fast-import best")
    if cap:
        add = cap["total_on"] / cap["total_off"] - 1
        print(f"\nmirror cost per capture ({cap['sessions']} sessions x {cap['steps']} steps, alternating)")
        print(f"{'':>14} {'median s':>9} {'total s':>8}")
        print(f"{'mirror=True':>14} {cap['median_on']:>9.3f} {cap['total_on']:>8.2f}")
        print(f"{'mirror=False':>14} {cap['median_off']:>9.3f} {cap['total_off']:>8.2f}")
        print(f"added cost: {add * 100:+.1f}% total, {(cap['median_on'] / cap['median_off'] - 1) * 100:+.1f}% median; "
              f"mirror has {cap['refs']} refs in {cap['packs']} pack(s), {cap['loose']} loose objects")
    return 0


if __name__ == "__main__":
    sys.exit(main())
