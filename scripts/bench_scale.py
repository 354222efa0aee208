"""bench.py sections for the shared Git layer (issue #7): cost that follows the change.

* ``scale``: capture of one 50-step session, as a process, into a bucket of
  100 traces and one of 10,000 (copies of the status buckets), interleaved;
  per capture, the objects and bytes a push of every opentraces ref would
  send (``git rev-list --objects NEW --not OLD``, ``git pack-objects --thin``
  over the same set) next to the session's own objects (its blob ref and
  batch).
* ``mirror``: the mirror's packs after N one-session captures (library calls,
  fsync off) next to ``git gc --aggressive --prune=now`` of a copy.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import gen_sessions


def _refs(gitdir: Path) -> dict[str, str]:
    out = subprocess.run(["git", f"--git-dir={gitdir}", "for-each-ref", "--format=%(refname) %(objectname)"],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def _git(gitdir: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(["git", f"--git-dir={gitdir}", *args], input=input, capture_output=True, text=True,
                          check=True).stdout


def _pack_bytes(gitdir: Path, oids: list[str]) -> int:
    data = subprocess.run(["git", f"--git-dir={gitdir}", "pack-objects", "--stdout", "-q"],
                          input=("\n".join(oids) + "\n").encode(), capture_output=True, check=True).stdout
    return len(data)


def _split_push(gitdir: Path, before: dict[str, str], after: dict[str, str]) -> dict[str, int]:
    """What a push of every changed ref sends, split into the session's own objects (its blobs,
    batch, trail event commits, trace folder) and the shared bookkeeping that points at them
    (bucket commit and the trees on its changed paths, manifest and index, project commits)."""
    changed = sorted({v for r, v in after.items() if before.get(r) != v})
    spec = "\n".join(changed + [f"^{h}" for h in sorted(set(before.values()))]) + "\n"
    pushed = [line.split(" ", 1)[0] for line in _git(gitdir, "rev-list", "--objects", "--stdin", input=spec).splitlines()]
    infra: set[str] = set()
    old_b, new_b = before.get("refs/opentraces/v1/bucket"), after["refs/opentraces/v1/bucket"]
    if old_b and old_b != new_b:
        infra.add(new_b)
        infra.add(_git(gitdir, "rev-parse", f"{new_b}^{{tree}}").strip())
        own_prefixes = ("traces/v1/", "events/v1/batches/")
        for line in _git(gitdir, "diff-tree", "-r", "-t", "--no-renames", old_b, new_b).splitlines():
            meta, path = line.split("\t", 1)
            oid = meta.split()[3]
            depth = path.count("/")
            is_trace_folder = path.startswith("traces/v1/") and depth >= 3  # traces/v1/<p>/<t>[/...]
            is_batch = path.startswith("events/v1/batches/") and depth == 3
            if not (is_trace_folder or is_batch) or not path.startswith(own_prefixes):
                infra.add(oid)
    for r, v in after.items():
        if r.startswith("refs/opentraces/v1/trails/") and before.get(r) != v:
            for c in _git(gitdir, "rev-list", "--grep=^First: ", v, *( [f"^{before[r]}"] if r in before else [])).split():
                infra.add(c)
    own = [o for o in pushed if o not in infra]
    return {"pushed_objects": len(pushed), "own_objects": len(own), "pushed_bytes": _pack_bytes(gitdir, pushed),
            "own_bytes": _pack_bytes(gitdir, own)}


def _objects_and_bytes(gitdir: Path, tips: list[str], hide: list[str]) -> tuple[int, int]:
    """Objects reachable from ``tips`` but not ``hide``, and the thin pack git would send for them."""
    if not tips:
        return 0, 0
    spec = "\n".join(tips + [f"^{h}" for h in hide]) + "\n"
    listed = subprocess.run(["git", f"--git-dir={gitdir}", "rev-list", "--objects", "--stdin"], input=spec,
                            capture_output=True, text=True, check=True).stdout
    pack = subprocess.run(["git", f"--git-dir={gitdir}", "pack-objects", "--stdout", "--revs", "--thin", "-q"],
                          input=spec.encode(), capture_output=True, check=True).stdout
    return len(listed.splitlines()), len(pack)


def bench_scale(run, bench) -> None:
    a = run.args
    small, _ = bench.status_bucket(100, a.seed, a.rebuild_cache)
    large, _ = bench.status_bucket(a.status_large, a.seed, a.rebuild_cache)
    k = a.scale_repeats
    newdir = bench.CACHE / f"scale-new-g{gen_sessions.GENERATOR_VERSION}-k{k}-s50"
    if not (newdir / ".done").exists():
        shutil.rmtree(newdir, ignore_errors=True)
        gen_sessions.generate(newdir, k, 50, seed=a.seed, projects=4,
                              base=dt.datetime(2027, 6, 1, 8, 0, 0, tzinfo=dt.timezone.utc))
        (newdir / ".done").write_text("ok\n")
    new = sorted(newdir.rglob("*.jsonl"))
    sizes = {100: run.fresh("scale-100"), a.status_large: run.fresh(f"scale-{a.status_large}")}
    t0 = time.perf_counter()
    shutil.copytree(small, sizes[100], symlinks=True)
    shutil.copytree(large, sizes[a.status_large], symlinks=True)
    bench.log(f"scale: copied the 100 and {a.status_large:,}-trace buckets ({time.perf_counter() - t0:.0f}s)")
    times: dict[int, list[float]] = {n: [] for n in sizes}
    pushes: dict[int, list[dict[str, int]]] = {n: [] for n in sizes}
    for i, path in enumerate(new):
        order = list(sizes.items()) if i % 2 == 0 else list(reversed(sizes.items()))
        for n, bucket in order:
            gitdir = bucket / ".git"
            before = _refs(gitdir)
            secs, proc = run.cli("--bucket", str(bucket), "capture", "claude-code", str(path), "--json")
            if proc.returncode != 0:
                raise SystemExit(f"bench: capture failed: {bench.first_err(proc)}")
            times[n].append(secs)
            pushes[n].append(_split_push(gitdir, before, _refs(gitdir)))
    med = bench.med
    small_n, large_n = 100, a.status_large
    ratio = med(times[large_n]) / med(times[small_n])
    res: dict[str, Any] = {
        "sessions": len(new), "steps": 50, "capture_s": {str(n): v for n, v in times.items()},
        "capture_median_s": {str(n): med(v) for n, v in times.items()}, "ratio_large_vs_small": ratio,
        "push": {str(n): v for n, v in pushes.items()},
    }
    run.results["scale"] = res
    sec = "scale"
    for n in (small_n, large_n):
        run.row(sec, f"capture one 50-step session (process), {n:,} traces", f"{med(times[n]) * 1000:.0f} ms")
    run.row(sec, f"ratio {large_n:,} / {small_n} traces", f"{ratio:.2f}x", "<= 1.2x", "ok" if ratio <= 1.2 else "MISS")
    for n in (small_n, large_n):
        get = lambda k: med([p[k] for p in pushes[n]])  # noqa: E731
        ro, rb = get("pushed_objects") / get("own_objects"), get("pushed_bytes") / get("own_bytes")
        run.row(sec, f"push after one session, {n:,} traces",
                f"{get('pushed_objects'):.0f} obj / {get('pushed_bytes') / 1e3:.0f} kB; the session's own "
                f"{get('own_objects'):.0f} obj / {get('own_bytes') / 1e3:.0f} kB",
                "within 2x", f"{ro:.2f}x obj, {rb:.2f}x bytes " + ("ok" if max(ro, rb) <= 2 else "MISS"))


def bench_mirror(run, bench) -> None:
    from opentraces.bucket import Bucket
    from opentraces.capture import capture_paths, claude_code

    a = run.args
    n = a.mirror_captures
    _src, paths, _ = bench.sessions(n, 4, a.seed + 3, jitter=1)
    bucket = run.fresh("mirror-size")
    t0 = time.perf_counter()
    with bench.no_fsync():
        for i, p in enumerate(paths):
            capture_paths(Bucket(bucket), claude_code, [p])
            if (i + 1) % 250 == 0:
                bench.log(f"mirror: {i + 1}/{n} captures ({time.perf_counter() - t0:.0f}s)")
    took = time.perf_counter() - t0
    gitdir = bucket / ".git"

    def packs(d: Path) -> int:
        return sum(f.stat().st_size for f in (d / "objects" / "pack").glob("pack-*") if f.suffix in (".pack", ".idx"))

    ours = packs(gitdir)
    refs = len(_refs(gitdir))
    copy = run.fresh("mirror-size-gc")
    shutil.copytree(gitdir, copy)
    t1 = time.perf_counter()
    subprocess.run(["git", f"--git-dir={copy}", "-c", "gc.auto=0", "gc", "--aggressive", "--prune=now", "-q"],
                   check=True, capture_output=True)
    gc_s = time.perf_counter() - t1
    theirs = packs(copy)
    ratio = ours / theirs
    run.results["mirror"] = {"captures": n, "capture_total_s": took, "pack_bytes": ours, "gc_aggressive_bytes": theirs,
                             "gc_aggressive_s": gc_s, "ratio": ratio, "refs": refs}
    sec = "mirror"
    run.row(sec, f"packs after {n:,} one-session captures", f"{ours / 1e6:.2f} MB ({refs} refs, {took:.0f} s)")
    run.row(sec, "git gc --aggressive --prune=now of the same", f"{theirs / 1e6:.2f} MB ({gc_s:.0f} s)")
    run.row(sec, "ratio", f"{ratio:.2f}x", "<= 1.5x", "ok" if ratio <= 1.5 else "MISS")
