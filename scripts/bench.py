#!/usr/bin/env python3
"""opentraces benchmarks (DESIGN.md §9): ratios measured in one run.

    python scripts/bench.py [--quick] [SECTION FLAGS] [--json FILE]

Sections (all of them when none is named):
  --capture   capture throughput (library ``capture_paths`` and the CLI
              process) next to one SHA-256 + deterministic gzip pass over
              the same bytes
  --status    ``bucket status`` at 100 and at 10,000 traces (CLI process
              and in-process library call)
  --verify    ``bucket verify --full`` in MB/s of blob bytes next to
              SHA-256 + gunzip over the same blob files
  --ref       the reference implementation (PyPI opentraces 0.4.13, in
              scripts/.bench-ref-venv) on the same sessions
  --hook      Claude Code hook-like capture of one 500-step session
  --profile   cProfile of capture, status and verify (top functions)
  --scale     one 50-step session captured into 100 and 10,000 traces; what a push sends
  --mirror    the mirror's packs after 1,000 one-session captures vs git gc --aggressive
  --security  redaction MB/s per tool and policy; capture under recommended vs off

The machine is shared and noisy: measurements of a comparison are
interleaved (A, B, A, B ...), repeated, and reported as medians. Generated
sessions and the big status buckets are cached under scripts/.bench-cache/
(keyed by their parameters; git-ignored); each run's scratch buckets live
in a run folder there and are deleted at exit unless --keep.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
import zlib
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / ".bench-cache"
REF_VENV = HERE / ".bench-ref-venv"
REF_VERSION = "0.4.13"
sys.path.insert(0, str(HERE))

import bench_scale  # noqa: E402
import bench_security  # noqa: E402
import bench_sync  # noqa: E402
import gen_sessions  # noqa: E402

from opentraces.bucket import Bucket  # noqa: E402
from opentraces.capture import capture_paths  # noqa: E402
from opentraces.capture import claude_code  # noqa: E402
from opentraces.encoding import gunzip_bytes, gzip_bytes  # noqa: E402
from opentraces.maintenance.status import status as ot_status  # noqa: E402
from opentraces.maintenance.verify import verify as ot_verify  # noqa: E402

BUILD_VERSION = 2  # bump when cached buckets must be rebuilt (2: sharded manifest, trail v2)


# --------------------------------------------------------------------------
# small helpers


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def mb(n: int) -> float:
    return n / 1e6


def ot_exe() -> str:
    """The console script next to this interpreter (no pyenv shim in the timing); ``BENCH_OPENTRACES``
    names another one (an older checkout, for before/after numbers)."""
    if os.environ.get("BENCH_OPENTRACES"):
        return os.environ["BENCH_OPENTRACES"]
    cand = Path(sysconfig.get_path("scripts")) / "opentraces"
    if cand.exists():
        return str(cand)
    found = shutil.which("opentraces")
    if not found:
        sys.exit("bench: the 'opentraces' command is not installed (pip install -e .)")
    return found


def run_timed(argv: list[str], *, env: dict | None = None, cwd: str | os.PathLike | None = None,
              stdin: bytes | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, cwd=cwd, input=stdin, capture_output=True)
    return time.perf_counter() - t0, p


def first_err(p: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in p.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    out = [ln for ln in p.stdout.decode("utf-8", "replace").splitlines() if ln.strip()]
    return (lines or out or [f"exit {p.returncode}, no output"])[-1][:300]


def tree_bytes(root: Path) -> tuple[int, int]:
    n = size = 0
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            n += 1
            size += os.path.getsize(os.path.join(dirpath, f))
    return n, size


@contextlib.contextmanager
def no_fsync():
    """For building cached fixtures only: durability is irrelevant there."""
    real = os.fsync
    os.fsync = lambda fd: None
    try:
        yield
    finally:
        os.fsync = real


def rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)


class Run:
    """Per-run state: scratch folder, CLI environment, results."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.work = CACHE / f"run-{os.getpid()}"
        rmtree(self.work)
        self.work.mkdir(parents=True)
        self.ot = ot_exe()
        self.env = dict(os.environ)
        self.env["OPENTRACES_HOME"] = str(self.work / "ot-home")
        self.env.pop("CLAUDE_CONFIG_DIR", None)
        self.results: dict[str, Any] = {}
        self.table: list[tuple[str, str, str, str, str]] = []  # section, metric, value, target, verdict
        self.capture_bucket: Path | None = None

    def fresh(self, name: str) -> Path:
        p = self.work / name
        rmtree(p)
        return p

    def row(self, section: str, metric: str, value: str, target: str = "", verdict: str = "") -> None:
        self.table.append((section, metric, value, target, verdict))

    def cli(self, *args: str, cwd=None) -> tuple[float, subprocess.CompletedProcess]:
        return run_timed([self.ot, *args], env=self.env, cwd=cwd)


# --------------------------------------------------------------------------
# fixtures (cached)


def sessions(n: int, steps: int, seed: int, jitter: int = 0, projects: int | None = None) -> tuple[Path, list[Path], int]:
    key = f"sessions-g{gen_sessions.GENERATOR_VERSION}-n{n}-s{steps}-j{jitter}-p{projects or 'd'}-seed{seed}"
    d = CACHE / key
    if not (d / ".done").exists():
        log(f"generating {n} sessions x {steps} steps -> {d.name}")
        tmp = CACHE / (key + ".tmp")
        rmtree(tmp)
        gen_sessions.generate(tmp, n, steps, seed, projects, jitter)
        (tmp / ".done").write_text("ok\n")
        rmtree(d)
        os.replace(tmp, d)
    paths = sorted(d.rglob("*.jsonl"))
    return d, paths, sum(p.stat().st_size for p in paths)


def build_bucket(dest: Path, paths: list[Path], chunk: int = 2500) -> None:
    """Capture ``paths`` with the library in big batches, fsync disabled (a fixture)."""
    tmp = dest.with_name(dest.name + ".tmp")
    rmtree(tmp)
    t0 = time.perf_counter()
    with no_fsync():
        for i in range(0, len(paths), chunk):
            rep = capture_paths(Bucket(tmp), claude_code, paths[i : i + chunk])
            if rep.skipped:
                raise SystemExit(f"bench: capture skipped {rep.skipped[:3]}")
            log(f"  built {min(i + chunk, len(paths))}/{len(paths)} traces ({time.perf_counter() - t0:.0f}s)")
    rmtree(dest)
    os.replace(tmp, dest)


def status_bucket(n: int, seed: int, rebuild: bool) -> tuple[Path, float | None]:
    """A cached bucket of ``n`` small (3-5 step) sessions; returns (path, build seconds or None)."""
    d = CACHE / f"status-bucket-b{BUILD_VERSION}-g{gen_sessions.GENERATOR_VERSION}-n{n}-s4-j1-seed{seed}"
    if not rebuild and (d / ".done").exists():
        try:
            st = ot_status(Bucket(d))
            if st.get("state") == "ok" and st.get("traces") == n:
                return d, None
            log(f"cached {d.name} is {st.get('state')} with {st.get('traces')} traces: rebuilding")
        except Exception as exc:  # a bucket written by an older format
            log(f"cached {d.name} unreadable ({exc}): rebuilding")
    src, paths, _ = sessions(n, 4, seed, jitter=1)
    log(f"building a {n}-trace bucket (one time; cached in {d.name})")
    t0 = time.perf_counter()
    build_bucket(d, paths)
    (d / ".done").write_text("ok\n")
    if n > 1000:
        rmtree(src)  # the sessions are not needed again (the key regenerates them)
    return d, time.perf_counter() - t0


def machine() -> dict[str, Any]:
    import orjson
    import pygit2

    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "pygit2": pygit2.__version__,
        "libgit2": getattr(pygit2, "LIBGIT2_VERSION", None),
        "orjson": orjson.__version__,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "loadavg_start": os.getloadavg(),
    }
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                info["mem_gb"] = round(int(line.split()[1]) / 1e6, 1)
                break
    except OSError:
        pass
    try:
        info["git"] = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "opentraces", "gitref"],
                               capture_output=True, text=True).stdout.splitlines()
        info["commit"] = head
        info["library_files_uncommitted"] = len(dirty)
    except OSError:
        pass
    return info


# --------------------------------------------------------------------------
# a. capture throughput


def sha_gzip_pass(paths: list[Path]) -> float:
    """Read each file, SHA-256 it, deterministic-gzip it: the floor capture is measured against."""
    t0 = time.perf_counter()
    for p in paths:
        data = p.read_bytes()
        hashlib.sha256(data).digest()
        gzip_bytes(data)
    return time.perf_counter() - t0


def bench_capture(run: Run) -> None:
    a = run.args
    src, paths, nbytes = sessions(a.cap_sessions, a.cap_steps, a.seed)
    log(f"capture: {len(paths)} sessions x {a.cap_steps} steps, {mb(nbytes):.1f} MB, {a.repeats} repeats")
    sha_gzip_pass(paths)  # warm the page cache
    lib, cli, base = [], [], []
    files = size = 0
    for r in range(a.repeats):
        order = ["base", "lib", "cli"] if r % 2 == 0 else ["cli", "lib", "base"]
        for what in order:
            if what == "base":
                base.append(sha_gzip_pass(paths))
            elif what == "lib":
                dest = run.fresh(f"cap-lib-{r}")
                t0 = time.perf_counter()
                rep = capture_paths(Bucket(dest), claude_code, paths)
                lib.append(time.perf_counter() - t0)
                if len(rep.captured) != len(paths):
                    raise SystemExit(f"bench: library capture took {len(rep.captured)} of {len(paths)} sessions: {rep.skipped[:2]}")
                files, size = tree_bytes(dest)
                if run.capture_bucket is not None:
                    rmtree(run.capture_bucket)
                run.capture_bucket = dest  # the last one is kept for --verify
            else:
                dest = run.fresh(f"cap-cli-{r}")
                dt, p = run.cli("--bucket", str(dest), "capture", "claude-code", str(src), "--json")
                if p.returncode != 0:
                    raise SystemExit(f"bench: CLI capture failed: {first_err(p)}")
                cli.append(dt)
                rmtree(dest)
        log(f"  repeat {r + 1}: lib {lib[-1]:.2f}s  cli {cli[-1]:.2f}s  sha+gzip {base[-1]:.2f}s")
    res = {
        "sessions": len(paths), "steps": a.cap_steps, "input_bytes": nbytes,
        "library_s": lib, "cli_s": cli, "sha256_gzip_s": base,
        "library_MBps": mb(nbytes) / med(lib), "cli_MBps": mb(nbytes) / med(cli),
        "sha256_gzip_MBps": mb(nbytes) / med(base),
        "ratio_library_vs_sha_gzip": med(lib) / med(base), "ratio_cli_vs_sha_gzip": med(cli) / med(base),
        "bucket_files": files, "bucket_bytes": size, "bucket_bytes_per_input_byte": size / nbytes,
    }
    run.results["capture"] = res
    sec = "capture"
    run.row(sec, f"input: {len(paths)} sessions x {a.cap_steps} steps", f"{mb(nbytes):.1f} MB")
    run.row(sec, "sha256 + det. gzip (floor)", f"{res['sha256_gzip_MBps']:.1f} MB/s ({med(base):.2f} s)")
    run.row(sec, "capture, library call", f"{res['library_MBps']:.2f} MB/s ({med(lib):.2f} s)")
    run.row(sec, "capture, CLI process", f"{res['cli_MBps']:.2f} MB/s ({med(cli):.2f} s)")
    target = 3.0
    run.row(sec, "ratio library / (sha+gzip)", f"{res['ratio_library_vs_sha_gzip']:.1f}x",
            f"close to 1x (<= {target:.0f}x)", "ok" if res["ratio_library_vs_sha_gzip"] <= target else "MISS")
    run.row(sec, "ratio CLI / (sha+gzip)", f"{res['ratio_cli_vs_sha_gzip']:.1f}x",
            f"close to 1x (<= {target:.0f}x)", "ok" if res["ratio_cli_vs_sha_gzip"] <= target else "MISS")
    run.row(sec, "bucket on disk / input", f"{res['bucket_bytes_per_input_byte']:.2f}x ({files} files, {mb(size):.0f} MB)")


# --------------------------------------------------------------------------
# b. status


def bench_status(run: Run) -> None:
    a = run.args
    small_n = 100
    large_n = a.status_large
    note = ""
    if a.quick and not a.status_large_explicit:
        d = CACHE / f"status-bucket-b{BUILD_VERSION}-g{gen_sessions.GENERATOR_VERSION}-n{large_n}-s4-j1-seed{a.seed}"
        if not (d / ".done").exists():
            large_n = 1000
            note = " (10,000-trace bucket not cached yet: --quick uses 1,000; run once without --quick to build it)"
            log("status:" + note)
    small, b1 = status_bucket(small_n, a.seed, a.rebuild_cache)
    large, b2 = status_bucket(large_n, a.seed, a.rebuild_cache)
    builds = {k: v for k, v in (("small", b1), ("large", b2)) if v is not None}
    # warm both (page cache), then alternate
    for p in (small, large):
        run.cli("--bucket", str(p), "bucket", "status", "--json")
        ot_status(Bucket(p))
    cli = {small_n: [], large_n: []}
    lib = {small_n: [], large_n: []}
    reps = a.status_cli_repeats
    for r in range(reps):
        for n, p in ((small_n, small), (large_n, large)) if r % 2 == 0 else ((large_n, large), (small_n, small)):
            dt, proc = run.cli("--bucket", str(p), "bucket", "status", "--json")
            if proc.returncode != 0:
                raise SystemExit(f"bench: status failed: {first_err(proc)}")
            doc = json.loads(proc.stdout)
            if doc["bucket"]["traces"] != n:
                raise SystemExit(f"bench: status says {doc['bucket']['traces']} traces, expected {n}")
            cli[n].append(dt)
    for r in range(a.status_lib_repeats):
        for n, p in ((small_n, small), (large_n, large)) if r % 2 == 0 else ((large_n, large), (small_n, small)):
            b = Bucket(p)
            t0 = time.perf_counter()
            ot_status(b)
            lib[n].append(time.perf_counter() - t0)
    floor_py, floor_imp = [], []
    for _ in range(reps):
        floor_py.append(run_timed([sys.executable, "-c", "pass"])[0])
        floor_imp.append(run_timed([sys.executable, "-c", "import opentraces.cli.main"])[0])
    res = {
        "traces_small": small_n, "traces_large": large_n, "note": note.strip(), "build_s": builds,
        "cli_s": {str(k): v for k, v in cli.items()}, "library_s": {str(k): v for k, v in lib.items()},
        "cli_median_s": {str(k): med(v) for k, v in cli.items()},
        "library_median_s": {str(k): med(v) for k, v in lib.items()},
        "ratio_cli_large_vs_small": med(cli[large_n]) / med(cli[small_n]),
        "ratio_library_large_vs_small": med(lib[large_n]) / med(lib[small_n]),
        "python_startup_s": med(floor_py), "cli_import_s": med(floor_imp),
        "manifest_bytes_large": (large / "manifest.json").stat().st_size,
    }
    run.results["status"] = res
    sec = "status"
    for n in (small_n, large_n):
        ok = med(cli[n]) < 0.1
        run.row(sec, f"CLI process, {n:,} traces", f"{med(cli[n]) * 1000:.0f} ms", "well under 100 ms", "ok" if ok else "MISS")
    for n in (small_n, large_n):
        run.row(sec, f"library call, {n:,} traces", f"{med(lib[n]) * 1000:.2f} ms", "well under 100 ms",
                "ok" if med(lib[n]) < 0.1 else "MISS")
    for what, ratio in (("CLI", res["ratio_cli_large_vs_small"]), ("library", res["ratio_library_large_vs_small"])):
        run.row(sec, f"ratio {large_n:,} / {small_n} traces ({what})", f"{ratio:.2f}x", "<= 1.5x", "ok" if ratio <= 1.5 else "MISS")
    run.row(sec, "  floor: python -c pass", f"{res['python_startup_s'] * 1000:.0f} ms")
    run.row(sec, "  floor: import opentraces.cli.main", f"{res['cli_import_s'] * 1000:.0f} ms")
    if note:
        run.row(sec, "note", note.strip())


# --------------------------------------------------------------------------
# c. verify --full


def blob_files(root: Path) -> list[Path]:
    out = []
    for dirpath, _dirs, files in os.walk(root / "blobs" / "v1"):
        for f in files:
            if f.endswith((".json.gz", ".blob")) and not f.startswith("."):
                out.append(Path(dirpath) / f)
    return sorted(out)


def sha_gunzip_pass(files: list[Path]) -> float:
    t0 = time.perf_counter()
    for f in files:
        data = f.read_bytes()
        if f.name.endswith(".gz"):
            data = gunzip_bytes(data)
        hashlib.sha256(data).digest()
    return time.perf_counter() - t0


def bench_verify(run: Run) -> None:
    a = run.args
    bucket = run.capture_bucket
    if bucket is None:
        src, paths, _ = sessions(a.cap_sessions, a.cap_steps, a.seed)
        bucket = CACHE / f"verify-bucket-b{BUILD_VERSION}-g{gen_sessions.GENERATOR_VERSION}-n{a.cap_sessions}-s{a.cap_steps}-seed{a.seed}"
        if a.rebuild_cache or not (bucket / ".done").exists():
            log(f"verify: building a {len(paths)}-trace bucket (cached in {bucket.name})")
            build_bucket(bucket, paths)
            (bucket / ".done").write_text("ok\n")
    files = blob_files(bucket)
    blob_bytes = sum(f.stat().st_size for f in files)
    _, total = tree_bytes(bucket)
    log(f"verify: {len(files)} blobs, {mb(blob_bytes):.1f} MB of blob files, {a.repeats} repeats")
    sha_gunzip_pass(files)  # warm
    lib, cli, base = [], [], []
    checked = None
    for r in range(a.repeats):
        order = ["base", "lib", "cli"] if r % 2 == 0 else ["cli", "lib", "base"]
        for what in order:
            if what == "base":
                base.append(sha_gunzip_pass(files))
            elif what == "lib":
                t0 = time.perf_counter()
                res = ot_verify(Bucket(bucket), sample=None)
                lib.append(time.perf_counter() - t0)
                checked = res
                if not res["ok"]:
                    log(f"  verify found problems (cached bucket from older code? --rebuild-cache): {res['problems'][:2]}")
            else:
                dt, p = run.cli("--bucket", str(bucket), "bucket", "verify", "--full", "--json")
                if p.returncode not in (0, 1):
                    raise SystemExit(f"bench: verify failed: {first_err(p)}")
                cli.append(dt)
        log(f"  repeat {r + 1}: lib {lib[-1]:.2f}s  cli {cli[-1]:.2f}s  sha+gunzip {base[-1]:.2f}s")
    res = {
        "blobs": len(files), "blob_bytes": blob_bytes, "bucket_bytes": total,
        "blob_bytes_checked_by_verify": checked.get("blob_bytes_checked") if checked else None,
        "verify_ok": checked.get("ok") if checked else None,
        "library_s": lib, "cli_s": cli, "sha256_gunzip_s": base,
        "library_MBps": mb(blob_bytes) / med(lib), "cli_MBps": mb(blob_bytes) / med(cli),
        "sha256_gunzip_MBps": mb(blob_bytes) / med(base),
        "ratio_library_vs_sha_gunzip": med(lib) / med(base), "ratio_cli_vs_sha_gunzip": med(cli) / med(base),
    }
    run.results["verify"] = res
    sec = "verify"
    run.row(sec, f"blob files: {len(files)}", f"{mb(blob_bytes):.1f} MB (bucket {mb(total):.0f} MB)")
    run.row(sec, "sha256 + gunzip (floor)", f"{res['sha256_gunzip_MBps']:.1f} MB/s ({med(base):.2f} s)")
    run.row(sec, "verify --full, library call", f"{res['library_MBps']:.1f} MB/s ({med(lib):.2f} s)")
    run.row(sec, "verify --full, CLI process", f"{res['cli_MBps']:.1f} MB/s ({med(cli):.2f} s)")
    for what in ("library", "cli"):
        ratio = res[f"ratio_{what}_vs_sha_gunzip"]
        run.row(sec, f"ratio {what} / (sha+gunzip)", f"{ratio:.1f}x", "bounded by it (<= 2x)", "ok" if ratio <= 2 else "MISS")
    if checked is not None and not checked["ok"]:
        run.row(sec, "note", f"verify reported {len(checked['problems'])} problem(s); first: {checked['problems'][0]['kind']}")


# --------------------------------------------------------------------------
# d. the reference implementation (PyPI opentraces 0.4.13)

_REF_INGEST = r"""
import json, sys, time
from pathlib import Path
from opentraces.core.ingest import ingest_one_session
proj = Path(sys.argv[1])
out = []
for p in sys.argv[2:]:
    t0 = time.perf_counter()
    r = ingest_one_session(Path(p), proj, wait_for_lock=False, parser_name="claude-code")
    out.append([time.perf_counter() - t0, str(getattr(r, "status", getattr(r, "action", r)))[:80]])
print(json.dumps(out))
"""


def ref_ready(run: Run) -> tuple[Path | None, str]:
    py = REF_VENV / "bin" / "python"
    exe = REF_VENV / "bin" / "opentraces"
    if exe.exists():
        p = subprocess.run([str(py), "-c", "import importlib.metadata as m; print(m.version('opentraces'))"],
                           capture_output=True, text=True)
        if p.stdout.strip() == REF_VERSION:
            return REF_VENV, ""
    log(f"reference: creating {REF_VENV.name} with opentraces=={REF_VERSION}")
    rmtree(REF_VENV)
    p = subprocess.run([sys.executable, "-m", "venv", str(REF_VENV)], capture_output=True, text=True)
    if p.returncode == 0:
        p = subprocess.run([str(py), "-m", "pip", "install", "-q", f"opentraces=={REF_VERSION}"], capture_output=True, text=True)
    if p.returncode != 0:
        return None, (p.stderr.strip().splitlines() or ["pip failed"])[-1]
    return REF_VENV, ""


class RefHome:
    """A throwaway HOME + opted-in Git project for the reference implementation.

    It resolves its home from ``OT_OPENTRACES_DIR`` (else ``~/.opentraces``) at
    import time and captures only into projects holding ``.opentraces.json``
    (written by ``opentraces init``); its canonical events go to a ref in the
    project repository, so each repeat restores a pristine copy of both.
    """

    def __init__(self, run: Run, venv: Path, name: str = "ref"):
        self.venv = venv
        self.exe = str(venv / "bin" / "opentraces")
        self.py = str(venv / "bin" / "python")
        self.base = run.work / name
        self.live = self.base / "live"
        self.tpl = self.base / "tpl"
        self.home = self.live / "home"
        self.proj = self.live / "proj"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENTRACES", "OT_", "CLAUDE"))}
        self.env.update({"HOME": str(self.home), "OT_OPENTRACES_DIR": str(self.home / ".opentraces"),
                         "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
                         "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
                         "NO_COLOR": "1"})
        rmtree(self.base)
        self.home.mkdir(parents=True)
        self.proj.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(self.proj)], check=True, env=self.env)
        (self.proj / "README.md").write_text("bench project\n")
        subprocess.run(["git", "-C", str(self.proj), "add", "README.md"], check=True, env=self.env)
        subprocess.run(["git", "-C", str(self.proj), "commit", "-q", "-m", "init"], check=True, env=self.env)
        dt, p = self.cli("init", "--agent", "claude-code", "--start-fresh")
        self.init_s = dt
        if p.returncode != 0 or not (self.proj / ".opentraces.json").exists():
            raise RuntimeError(f"reference 'init' failed: {first_err(p)}")
        shutil.copytree(self.live, self.tpl, symlinks=True)

    def reset(self) -> None:
        rmtree(self.live)
        shutil.copytree(self.tpl, self.live, symlinks=True)

    def cli(self, *args: str) -> tuple[float, subprocess.CompletedProcess]:
        return run_timed([self.exe, *args], env=self.env, cwd=self.proj, stdin=b"")

    def bucket(self) -> Path:
        return self.home / ".opentraces" / "bucket"

    def trace_count(self) -> int:
        return len(list((self.bucket() / "traces" / "v1").glob("*/*/trace.json")))

    def ingest_inprocess(self, paths: list[Path]) -> list[float]:
        p = subprocess.run([self.py, "-c", _REF_INGEST, str(self.proj), *map(str, paths)],
                           env=self.env, cwd=self.proj, capture_output=True)
        if p.returncode != 0:
            raise RuntimeError(first_err(p))
        return [t for t, _ in json.loads(p.stdout.decode().strip().splitlines()[-1])]


def bench_ref(run: Run) -> None:
    a = run.args
    sec = "reference"
    res: dict[str, Any] = {"version": REF_VERSION}
    run.results["reference"] = res
    venv, err = ref_ready(run)
    if venv is None:
        res["error"] = err
        run.row(sec, "reference venv", f"unavailable: {err}")
        return
    src, all_paths, _ = sessions(a.cap_sessions, a.cap_steps, a.seed)
    paths = all_paths[: a.ref_sessions]
    nbytes = sum(p.stat().st_size for p in paths)
    log(f"reference: {len(paths)} sessions x {a.cap_steps} steps ({mb(nbytes):.1f} MB), {a.ref_repeats} repeat(s)")
    try:
        ref = RefHome(run, venv)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        res["error"] = str(exc)
        run.row(sec, "reference setup", f"failed: {exc}")
        return
    res.update({"sessions": len(paths), "steps": a.cap_steps, "input_bytes": nbytes, "init_s": ref.init_s})

    # 1) hook-like: one process per session, theirs and ours interleaved
    theirs, ours = [], []
    errors: list[str] = []
    ours_bucket = None
    for r in range(a.ref_repeats):
        ref.reset()
        ours_bucket = run.fresh(f"ref-ours-{r}")
        t_sum = o_sum = 0.0
        for i, p in enumerate(paths):
            pair = [("t", p), ("o", p)] if (i + r) % 2 == 0 else [("o", p), ("t", p)]
            for who, path in pair:
                if who == "t":
                    dt, proc = ref.cli("_ingest-session", str(path), "--project", str(ref.proj))
                    t_sum += dt
                    if proc.returncode != 0 or proc.stderr.strip():
                        errors.append(first_err(proc))
                else:
                    dt, proc = run.cli("--bucket", str(ours_bucket), "capture", "claude-code", str(path))
                    o_sum += dt
                    if proc.returncode != 0:
                        raise SystemExit(f"bench: our capture failed: {first_err(proc)}")
        got = ref.trace_count()
        theirs.append(t_sum)
        ours.append(o_sum)
        log(f"  repeat {r + 1}: theirs {t_sum:.1f}s ({got}/{len(paths)} traces)  ours {o_sum:.1f}s")
        if got != len(paths):
            errors.append(f"reference captured {got} of {len(paths)} sessions (its _ingest-session exits 0 silently on failure)")
    res.update({"capture_process_theirs_s": theirs, "capture_process_ours_s": ours,
                "capture_errors": sorted(set(errors))[:5]})

    # 2) status and verify on the same traces (theirs: its bucket after the last repeat)
    cmds = {
        "bucket status": (["bucket", "status", "--json"], ["bucket", "status", "--json"]),
        "status": (["status", "--json"], None),
        "bucket verify --full": (["bucket", "verify", "--full", "--json"], ["bucket", "verify", "--full", "--json"]),
    }
    timings: dict[str, dict[str, Any]] = {}
    for label, (targs, oargs) in cmds.items():
        tt, oo, terr = [], [], None
        reps = a.ref_status_repeats if "verify" not in label else max(2, a.repeats)
        for r in range(reps):
            seq = [("t", targs), ("o", oargs)] if r % 2 == 0 else [("o", oargs), ("t", targs)]
            for who, cmd in seq:
                if cmd is None:
                    continue
                if who == "t":
                    dt, proc = ref.cli(*cmd)
                    if proc.returncode != 0:
                        terr = first_err(proc)
                    tt.append(dt)
                else:
                    dt, proc = run.cli("--bucket", str(ours_bucket), *cmd)
                    oo.append(dt)
        timings[label] = {"theirs_s": tt, "ours_s": oo, "theirs_error": terr}
        if label == "bucket verify --full":
            try:
                doc = json.loads(ref.cli(*targs)[1].stdout)
                timings[label]["theirs_checked"] = {k: (doc.get("verify") or {}).get(k) for k in ("blobs_checked", "sampled", "full")}
            except (ValueError, AttributeError):
                pass
    res["commands"] = timings
    import_t = [run_timed([ref.py, "-c", "import opentraces.cli"], env=ref.env)[0] for _ in range(3)]
    res["theirs_cli_import_s"] = med(import_t)

    # 3) in-process: their ingest_one_session vs our capture_paths (one call per session, and one for all)
    ref.reset()
    try:
        t_lib = ref.ingest_inprocess(paths)
        t_lib_sum = sum(t_lib)
    except RuntimeError as exc:
        t_lib_sum = None
        errors.append(f"in-process ingest: {exc}")
    dest = run.fresh("ref-ours-lib")
    o_lib = 0.0
    for p in paths:
        t0 = time.perf_counter()
        capture_paths(Bucket(dest), claude_code, [p])
        o_lib += time.perf_counter() - t0
    dest2 = run.fresh("ref-ours-lib-batch")
    t0 = time.perf_counter()
    capture_paths(Bucket(dest2), claude_code, paths)
    o_batch = time.perf_counter() - t0
    rmtree(dest)
    rmtree(dest2)
    res.update({"capture_library_theirs_s": t_lib_sum, "capture_library_ours_per_session_s": o_lib,
                "capture_library_ours_one_call_s": o_batch})

    # 4) optional: their status at 100 small traces
    if a.ref_status_traces:
        n = a.ref_status_traces
        _, spaths, _ = sessions(n, 4, a.seed, jitter=1)
        ref100 = RefHome(run, venv, "ref-status")
        log(f"reference: ingesting {n} small sessions for status at {n} traces")
        t0 = time.perf_counter()
        for p in spaths:
            ref100.cli("_ingest-session", str(p), "--project", str(ref100.proj))
        res["status_bucket_build_s"] = time.perf_counter() - t0
        got = ref100.trace_count()
        our_small, _ = status_bucket(100, a.seed, False) if n == 100 else (None, None)
        tt, oo = [], []
        for r in range(a.ref_status_repeats):
            tt.append(ref100.cli("bucket", "status", "--json")[0])
            if our_small is not None:
                oo.append(run.cli("--bucket", str(our_small), "bucket", "status", "--json")[0])
        res["status_at_n"] = {"traces": n, "theirs_traces": got, "theirs_s": tt, "ours_s": oo}
        rmtree(ref100.base)

    # table
    n = len(paths)
    th, ou = med(theirs), med(ours)
    run.row(sec, f"sessions: {n} x {a.cap_steps} steps", f"{mb(nbytes):.1f} MB; theirs {REF_VERSION}")
    run.row(sec, "capture, process per session: theirs", f"{th / n * 1000:.0f} ms/session ({mb(nbytes) / th:.2f} MB/s)")
    run.row(sec, "capture, process per session: ours", f"{ou / n * 1000:.0f} ms/session ({mb(nbytes) / ou:.2f} MB/s)")
    run.row(sec, "capture speedup (process per session)", f"{th / ou:.1f}x", ">= 10x", "ok" if th / ou >= 10 else "MISS")
    if t_lib_sum:
        run.row(sec, "capture, library: theirs ingest_one_session", f"{t_lib_sum / n * 1000:.0f} ms/session")
        run.row(sec, "capture, library: ours (one call per session)", f"{o_lib / n * 1000:.0f} ms/session")
        run.row(sec, "capture, library: ours (one call for all)", f"{o_batch / n * 1000:.0f} ms/session")
        run.row(sec, "capture speedup (library, per session)", f"{t_lib_sum / o_lib:.1f}x", ">= 10x",
                "ok" if t_lib_sum / o_lib >= 10 else "MISS")
    for label, t in timings.items():
        if not t["ours_s"]:
            run.row(sec, f"{label}: theirs", f"{med(t['theirs_s']) * 1000:.0f} ms" + (f"  (error: {t['theirs_error']})" if t["theirs_error"] else ""))
            continue
        tm, om = med(t["theirs_s"]), med(t["ours_s"])
        extra = f"  (theirs error: {t['theirs_error']})" if t["theirs_error"] else ""
        run.row(sec, f"{label}: theirs / ours", f"{tm * 1000:.0f} / {om * 1000:.0f} ms{extra}")
        run.row(sec, f"{label} speedup", f"{tm / om:.1f}x", ">= 10x", "ok" if tm / om >= 10 else "MISS")
    if "theirs_checked" in timings.get("bucket verify --full", {}):
        run.row(sec, "  their verify --full checked", json.dumps(timings["bucket verify --full"]["theirs_checked"]))
    run.row(sec, "  floor: their 'import opentraces.cli'", f"{res['theirs_cli_import_s'] * 1000:.0f} ms")
    if "status_at_n" in res:
        s = res["status_at_n"]
        if s["ours_s"]:
            tm, om = med(s["theirs_s"]), med(s["ours_s"])
            run.row(sec, f"bucket status at {s['traces']} traces: theirs / ours",
                    f"{tm * 1000:.0f} / {om * 1000:.0f} ms ({tm / om:.1f}x; theirs holds {s['theirs_traces']} traces)",
                    ">= 10x", "ok" if tm / om >= 10 else "MISS")
    for e in res["capture_errors"]:
        run.row(sec, "reference error", e)
    rmtree(ref.base)


# --------------------------------------------------------------------------
# e. hook-like latency: one 500-step session


def bench_hook(run: Run) -> None:
    a = run.args
    _, (path,), nbytes = sessions(1, a.hook_steps, a.seed + 1)
    _, (big,), big_bytes = sessions(1, a.hook_grow_steps, a.seed + 2)
    lines = big.read_bytes().splitlines(keepends=True)
    log(f"hook: first capture of one {a.hook_steps}-step session ({mb(nbytes):.1f} MB); one more turn of a "
        f"{a.hook_grow_steps}-step session ({mb(big_bytes):.1f} MB, {len(lines)} rows); {a.hook_repeats} repeats")
    cold, grow, same = [], [], []

    def as_hook(dest: Path, session: Path) -> tuple[float, subprocess.CompletedProcess]:
        """What Claude Code runs after a turn: ``capture claude-code --hook``, the payload on stdin."""
        payload = json.dumps({"session_id": session.stem, "transcript_path": str(session), "cwd": str(session.parent),
                              "hook_event_name": "Stop"}).encode()
        dt, p = run_timed([run.ot, "--bucket", str(dest), "capture", "claude-code", "--hook"], env=run.env, stdin=payload)
        log_file = Path(run.env["OPENTRACES_HOME"]) / "logs" / "hook-errors.log"
        if p.returncode != 0 or (log_file.exists() and log_file.read_text().strip()):
            raise SystemExit(f"bench: hook failed: {first_err(p)} {log_file.read_text() if log_file.exists() else ''}")
        return dt, p

    for r in range(a.hook_repeats):
        # cold: the first capture of the whole session
        dest = run.fresh(f"hook-cold-{r}")
        dt, p = as_hook(dest, path)
        if not (dest / "manifest.json").exists():
            raise SystemExit("bench: the hook captured nothing")
        cold.append(dt)
        rmtree(dest)
        # grown: the session was captured at its previous turn; one more turn arrived
        dest = run.fresh(f"hook-grow-{r}")
        live = run.work / "hook-live" / big.parent.name / big.name
        live.parent.mkdir(parents=True, exist_ok=True)
        turn = next(i for i in range(len(lines) - 2, 0, -1) if b'"type":"user"' in lines[i] and b'tool_result' not in lines[i])
        live.write_bytes(b"".join(lines[:turn]))
        capture_paths(Bucket(dest), claude_code, [live])
        live.write_bytes(b"".join(lines))
        dt, p = as_hook(dest, live)
        grow.append(dt)
        dt, p = as_hook(dest, live)
        same.append(dt)
        rmtree(dest)
    res = {"steps": a.hook_steps, "bytes": nbytes, "grow_steps": a.hook_grow_steps, "grow_bytes": big_bytes,
           "turn_rows": len(lines) - turn, "cold_s": cold, "grown_s": grow, "unchanged_s": same}
    if a.ref_hook and REF_VENV.exists() and not a.no_ref:
        venv, err = ref_ready(run)
        if venv is not None:
            ref = RefHome(run, venv, "ref-hook")
            tt = []
            for _ in range(a.ref_hook_repeats):
                ref.reset()
                dt, p = ref.cli("_ingest-session", str(path), "--project", str(ref.proj))
                tt.append(dt)
            res["theirs_cold_s"] = tt
            res["theirs_traces"] = ref.trace_count()
            rmtree(ref.base)
    run.results["hook"] = res
    sec = "hook"
    run.row(sec, f"sessions: {a.hook_steps} / {a.hook_grow_steps} steps",
            f"{mb(nbytes):.1f} MB / {mb(big_bytes):.1f} MB (last turn {len(lines) - turn} rows)")
    run.row(sec, f"first capture, {a.hook_steps} steps (CLI process)", f"{med(cold) * 1000:.0f} ms", "< 500 ms",
            "ok" if med(cold) < 0.5 else "MISS")
    run.row(sec, f"one more turn, {a.hook_grow_steps} steps (CLI process)", f"{med(grow) * 1000:.0f} ms", "< 300 ms",
            "ok" if med(grow) < 0.3 else "MISS")
    run.row(sec, "unchanged (CLI process)", f"{med(same) * 1000:.0f} ms", "< 150 ms", "ok" if med(same) < 0.15 else "MISS")
    if "theirs_cold_s" in res:
        run.row(sec, "theirs: _ingest-session, first capture", f"{med(res['theirs_cold_s']) * 1000:.0f} ms "
                f"({med(res['theirs_cold_s']) / med(cold):.1f}x ours)")


# --------------------------------------------------------------------------
# signing (issue #12): what a signature adds to writing and to reading one batch


def bench_signing(run: Run) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from opentraces.batches import decode_batch, encode_batch
    from opentraces.capture import claude_code
    from opentraces.capture.emit import session_events
    from opentraces.project import Project

    _, paths, _ = sessions(8, run.args.cap_steps, run.args.seed)
    key = Ed25519PrivateKey.generate()
    res: dict[str, Any] = {}
    sec = "signing"
    for label, n in (("one 50-step session", 1), ("8 sessions", 8)):
        events = []
        for p in paths[:n]:
            data = p.read_bytes()
            parsed = claude_code.parse(data, p.name)
            evs, _ = session_events(parsed, data, p.name, Project("bench-00000000", "/", None), f"{len(events):08x}-0000-5000-8000-000000000000", [])
            events += evs
        reps = 15
        enc_plain, enc_signed, dec_plain, dec_signed = [], [], [], []
        for _ in range(reps):
            t = time.perf_counter(); name0, _, d0 = encode_batch("wbench", 1, None, events); enc_plain.append(time.perf_counter() - t)
            t = time.perf_counter(); name1, _, d1 = encode_batch("wbench", 1, None, events, key); enc_signed.append(time.perf_counter() - t)
            t = time.perf_counter(); decode_batch(name0, d0); dec_plain.append(time.perf_counter() - t)
            t = time.perf_counter(); decode_batch(name1, d1); dec_signed.append(time.perf_counter() - t)
        size = len(d1)
        res[label] = {"events": len(events), "gzip_bytes": size, "encode_s": med(enc_plain), "encode_signed_s": med(enc_signed),
                      "decode_s": med(dec_plain), "decode_signed_s": med(dec_signed)}
        run.row(sec, f"{label}: {len(events)} events, {size / 1024:.0f} kB", "")
        run.row(sec, "  sign (added to writing the batch)",
                f"{(med(enc_signed) - med(enc_plain)) * 1000:.2f} ms ({med(enc_signed) / med(enc_plain):.3f}x of {med(enc_plain) * 1000:.1f} ms)")
        run.row(sec, "  verify (added to reading it)",
                f"{(med(dec_signed) - med(dec_plain)) * 1000:.2f} ms ({med(dec_signed) / med(dec_plain):.3f}x of {med(dec_plain) * 1000:.1f} ms)")
    run.results["signing"] = res


# --------------------------------------------------------------------------
# profile


def _top(prof: cProfile.Profile, n: int) -> tuple[float, list[dict[str, Any]]]:
    st = pstats.Stats(prof)
    total = st.total_tt
    rows = []
    for (fn, line, name), (cc, nc, tt, ct, _callers) in st.stats.items():
        rows.append({"function": f"{_short(fn)}:{line}({name})", "calls": nc, "tottime_s": tt, "cumtime_s": ct,
                     "self_pct": 100 * tt / total if total else 0, "cum_pct": 100 * ct / total if total else 0})
    rows.sort(key=lambda r: -r["tottime_s"])
    return total, rows[:n]


def _top_cum(prof: cProfile.Profile, n: int, prefix: tuple[str, ...] = ("opentraces", "gitref")) -> list[dict[str, Any]]:
    st = pstats.Stats(prof)
    total = st.total_tt
    rows = []
    for (fn, line, name), (cc, nc, tt, ct, _callers) in st.stats.items():
        short = _short(fn)
        if short.startswith(prefix):
            rows.append({"function": f"{short}:{line}({name})", "cumtime_s": ct, "cum_pct": 100 * ct / total if total else 0})
    rows.sort(key=lambda r: -r["cumtime_s"])
    return rows[:n]


def _short(fn: str) -> str:
    for base in (str(REPO) + "/", sysconfig.get_path("stdlib") + "/", sysconfig.get_path("purelib") + "/"):
        if fn.startswith(base):
            return fn[len(base):]
    return fn


def bench_profile(run: Run) -> None:
    a = run.args
    out: dict[str, Any] = {}
    src, paths, nbytes = sessions(a.cap_sessions, a.cap_steps, a.seed)
    paths = paths[: a.profile_sessions]
    warm = run.fresh("profile-warm")  # import every lazily imported module before profiling
    capture_paths(Bucket(warm), claude_code, paths[:1])
    ot_verify(Bucket(warm), sample=None)
    ot_status(Bucket(warm))
    rmtree(warm)
    dest = run.fresh("profile-capture")
    prof = cProfile.Profile()
    prof.enable()
    capture_paths(Bucket(dest), claude_code, paths)
    prof.disable()
    total, top = _top(prof, a.profile_top)
    out["capture"] = {"sessions": len(paths), "bytes": sum(p.stat().st_size for p in paths), "total_s": total,
                      "self": top, "cumulative": _top_cum(prof, a.profile_top)}
    prof = cProfile.Profile()
    prof.enable()
    ot_verify(Bucket(dest), sample=None)
    prof.disable()
    total, top = _top(prof, a.profile_top)
    out["verify"] = {"total_s": total, "self": top, "cumulative": _top_cum(prof, a.profile_top)}
    rmtree(dest)
    big = CACHE / f"status-bucket-b{BUILD_VERSION}-g{gen_sessions.GENERATOR_VERSION}-n{a.status_large}-s4-j1-seed{a.seed}"
    large, _ = status_bucket(a.status_large if (big / ".done").exists() or not a.quick else 100, a.seed, False)
    b = Bucket(large)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(200):
        ot_status(b)
    prof.disable()
    total, top = _top(prof, a.profile_top)
    out["status"] = {"calls": 200, "bucket": large.name, "total_s": total, "self": top}
    # where the status CLI process spends its time: imports
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", "import opentraces.cli.main"], capture_output=True, text=True)
    imports = []
    for line in p.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            imports.append((int(parts[1]), parts[2].rstrip()))
    imports.sort(reverse=True)
    out["cli_imports_us"] = [{"module": m.strip(), "cumulative_us": us, "depth": (len(m) - len(m.lstrip())) // 2}
                             for us, m in imports[:25]]
    run.results["profile"] = out
    for name in ("capture", "verify", "status"):
        run.row("profile", f"{name}: profiled total", f"{out[name]['total_s']:.2f} s")
        for r in out[name]["self"][:8]:
            run.row("profile", f"  {r['function'][:70]}", f"{r['self_pct']:.1f}% self ({r['tottime_s']:.2f} s)")
        for r in out[name].get("cumulative", [])[:8]:
            run.row("profile", f"  cum {r['function'][:66]}", f"{r['cum_pct']:.1f}% cumulative")
    for r in out["cli_imports_us"][:8]:
        run.row("profile", f"  import {r['module'][:60]}", f"{r['cumulative_us'] / 1000:.0f} ms cumulative")


# --------------------------------------------------------------------------
# output


def print_table(run: Run) -> None:
    m = run.results["machine"]
    print()
    print(f"machine: {m.get('cpu', '?')}, nproc {m['nproc']} (affinity {m.get('affinity')}), "
          f"{m.get('mem_gb', '?')} GB; Python {m['python']}; pygit2 {m['pygit2']} (libgit2 {m['libgit2']}); "
          f"orjson {m['orjson']}; zlib {m['zlib']}; {m.get('git', '')}")
    print(f"code: commit {m.get('commit', '?')} (+{m.get('library_files_uncommitted', 0)} uncommitted library files); "
          f"load average {m['loadavg_start'][0]:.2f} at start, {m.get('loadavg_end', [0])[0]:.2f} at end; "
          f"mode {'quick' if run.args.quick else 'full'}; medians of repeats")
    w1 = max(len(r[1]) for r in run.table) if run.table else 10
    w2 = max(len(r[2]) for r in run.table) if run.table else 10
    w2 = min(w2, 60)
    last = None
    for sec, metric, value, target, verdict in run.table:
        if sec != last:
            print(f"\n== {sec} " + "=" * max(0, w1 + w2 - len(sec)))
            last = sec
        line = f"  {metric:<{w1}}  {value:<{w2}}"
        if target:
            line += f"  target {target:<22} {verdict}"
        print(line.rstrip())
    print()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    for s in ("capture", "status", "verify", "ref", "hook", "profile", "scale", "mirror", "sync", "security", "signing", "encrypted"):
        ap.add_argument(f"--{s}", action="store_true", help=f"run the {s} section")
    ap.add_argument("--quick", action="store_true", help="small scales, finishes in < 2 minutes (warm cache)")
    ap.add_argument("--json", type=Path, help="write every number to this file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, help="repeats of capture and verify (default 3)")
    ap.add_argument("--cap-sessions", type=int, help="capture: sessions (default 100 full, 8 quick)")
    ap.add_argument("--cap-steps", type=int, default=50, help="capture: steps per session (default 50)")
    ap.add_argument("--status-large", type=int, help="status: traces of the large bucket (default 10000)")
    ap.add_argument("--status-cli-repeats", type=int, help="status: CLI runs per size (default 9 full, 5 quick)")
    ap.add_argument("--status-lib-repeats", type=int, default=200)
    ap.add_argument("--ref-sessions", type=int, help="reference: sessions captured (default 20 full, 3 quick)")
    ap.add_argument("--ref-repeats", type=int, help="reference: capture repeats (default 2 full, 1 quick)")
    ap.add_argument("--ref-status-repeats", type=int, help="reference: status runs (default 5 full, 3 quick)")
    ap.add_argument("--ref-status-traces", type=int, help="reference: also time status at N small traces (default 100 full, 0 quick)")
    ap.add_argument("--no-ref", action="store_true", help="skip everything that runs the reference")
    ap.add_argument("--hook-steps", type=int, default=500, help="hook: steps of the session captured first")
    ap.add_argument("--hook-grow-steps", type=int, default=2000, help="hook: steps of the session that grows by one turn")
    ap.add_argument("--hook-repeats", type=int, help="hook: repeats (default 3 full, 2 quick)")
    ap.add_argument("--ref-hook-repeats", type=int, default=2, help="hook: reference runs (full mode only)")
    ap.add_argument("--profile-sessions", type=int, help="profile: sessions captured under cProfile (default 20 full, 8 quick)")
    ap.add_argument("--profile-top", type=int, default=15)
    ap.add_argument("--rebuild-cache", action="store_true", help="rebuild cached buckets")
    ap.add_argument("--keep", action="store_true", help="keep this run's scratch folder")
    ap.add_argument("--scale-repeats", type=int, help="scale: new sessions captured per bucket (default 7 full, 3 quick)")
    ap.add_argument("--mirror-captures", type=int, help="mirror: one-session captures (default 1000 full, 150 quick)")
    ap.add_argument("--sync-sessions", type=int, help="sync: sessions pushed and pulled (default 1000 full, 100 quick)")
    ap.add_argument("--sync-repeats", type=int, help="sync: repeats (default 2 full, 1 quick)")
    a = ap.parse_args(argv)
    q = a.quick
    a.status_large_explicit = a.status_large is not None
    a.repeats = a.repeats or 3
    a.cap_sessions = a.cap_sessions or (8 if q else 100)
    a.status_large = a.status_large or 10_000
    a.status_cli_repeats = a.status_cli_repeats or (5 if q else 9)
    a.ref_sessions = a.ref_sessions or (3 if q else 20)
    a.ref_repeats = a.ref_repeats or (1 if q else 2)
    a.ref_status_traces = (0 if q else 100) if a.ref_status_traces is None else a.ref_status_traces
    a.hook_repeats = a.hook_repeats or (2 if q else 3)
    a.profile_sessions = a.profile_sessions or (8 if q else 20)
    a.ref_hook = not q
    a.ref_status_repeats = a.ref_status_repeats or (3 if q else 5)
    a.scale_repeats = a.scale_repeats or (3 if q else 7)
    a.mirror_captures = a.mirror_captures or (150 if q else 1000)
    a.sync_sessions = a.sync_sessions or (100 if q else 1000)
    a.sync_repeats = a.sync_repeats or (1 if q else 2)
    sections = [s for s in ("capture", "status", "verify", "ref", "hook", "profile", "scale", "mirror", "sync", "security",
                            "signing", "encrypted")
                if getattr(a, s)]
    if not sections:
        sections = ["capture", "status", "verify", "ref", "hook", "scale", "mirror", "sync", "security", "signing",
                    "encrypted"] + (
            [] if q else ["profile"])
    if a.no_ref and "ref" in sections:
        sections.remove("ref")
    a.sections = sections
    return a


def bench_mod():
    """This module, for the sections that live in bench_scale.py (run as a script it is __main__)."""
    return sys.modules[__name__]


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    CACHE.mkdir(parents=True, exist_ok=True)
    run = Run(a)
    t0 = time.perf_counter()
    run.results["machine"] = machine()
    run.results["params"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
    fns: dict[str, Callable[[Run], None]] = {"capture": bench_capture, "status": bench_status, "verify": bench_verify,
                                             "ref": bench_ref, "hook": bench_hook, "profile": bench_profile,
                                             "scale": lambda r: bench_scale.bench_scale(r, bench_mod()),
                                             "mirror": lambda r: bench_scale.bench_mirror(r, bench_mod()),
                                             "sync": lambda r: bench_sync.bench_sync(r, bench_mod()),
                                             "security": lambda r: bench_security.bench_security(r, bench_mod()),
                                             "signing": bench_signing,
                                             "encrypted": lambda r: bench_sync.bench_encrypted(r, bench_mod())}
    try:
        for s in a.sections:
            ts = time.perf_counter()
            fns[s](run)
            run.results.setdefault("section_wall_s", {})[s] = time.perf_counter() - ts
    finally:
        run.results["machine"]["loadavg_end"] = os.getloadavg()
        run.results["wall_s"] = time.perf_counter() - t0
        if not a.keep:
            rmtree(run.work)
    print_table(run)
    print(f"total wall time {run.results['wall_s']:.0f} s", file=sys.stderr)
    if a.json:
        a.json.write_text(json.dumps(run.results, indent=2, sort_keys=True, default=str) + "\n")
        print(f"wrote {a.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
