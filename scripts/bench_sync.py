"""bench.py section ``--sync`` (issue #8): sync over HTTP on loopback, next to the ``git`` CLI.

A real server: ``git http-backend`` behind nginx + fcgiwrap with Basic auth
(``tests/serverrig.start_http``, the same one the tests use). Measured, each
side by side with plain ``git`` moving the same refs over the same server:

* push of a bucket of N sessions (default 1,000) into an empty remote;
* pull of it into an empty bucket (lazy: events, trails, bucket ref) and
  ``git fetch`` of the same refs into an empty repository;
* a no-op push (ratio and absolute);
* ``prefetch`` of one trace from a remote holding the 10,000-trace bucket
  next to ``git fetch`` of that trace's blob ref.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _serverrig():
    """tests/serverrig.py, loaded by path (putting tests/ on sys.path would shadow the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("serverrig", HERE.parent / "tests" / "serverrig.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["serverrig"] = mod
    spec.loader.exec_module(mod)
    return mod


def _git_env(remote) -> dict[str, str]:
    env = remote.git_env()
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    return env


def _timed(argv, env, cwd=None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - t0, p


def _ok(p: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if p.returncode != 0:
        raise SystemExit(f"bench: {what} failed: {(p.stderr or p.stdout)[-800:]}")
    return p


def _fresh_bare(root: Path, name: str) -> Path:
    path = root / "repos" / name
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(path)], check=True)
    return path


def _machine_env(run, name: str, remote) -> dict[str, str]:
    home = run.work / f"sync-{name}"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(run.env, HOME=str(home), OPENTRACES_HOME=str(home / ".ot"),
               OPENTRACES_TOKEN=remote.token, OPENTRACES_USERNAME=remote.username)
    return env


def _ot(run, env, *args) -> tuple[float, dict]:
    secs, p = _timed([run.ot, *args, "--json"], env)
    _ok(p, " ".join(args))
    return secs, json.loads(p.stdout)


def bench_sync(run, bench) -> None:
    start_http = _serverrig().start_http

    a = run.args
    n = a.sync_sessions
    _src, paths, _ = bench.sessions(n, 4, a.seed + 5, jitter=1)
    source = bench.CACHE / f"sync-bucket-b{bench.BUILD_VERSION}-n{n}-seed{a.seed + 5}"
    if not (source / ".done").exists():
        bench.log(f"sync: building a {n}-session bucket")
        bench.build_bucket(source, paths)
        (source / ".done").write_text("ok\n")
    d = Path(tempfile.mkdtemp(prefix="ot-bench-http-"))
    remote, stopper = start_http(d)
    res: dict = {"sessions": n}
    try:
        base_url = remote.url.rsplit("/", 1)[0]
        genv = _git_env(remote)
        push_ot, push_git, pull_ot, fetch_git = [], [], [], []
        for rep in range(a.sync_repeats):
            bucket = run.fresh(f"sync-src-{rep}")
            shutil.copytree(source, bucket, symlinks=True)
            # ours: setup (config only), then push
            _fresh_bare(d, "ours.git")
            env = _machine_env(run, f"a{rep}", remote)
            _ot(run, env, "--bucket", str(bucket), "setup", "bucket", "--remote", f"{base_url}/ours.git")
            secs, doc = _ot(run, env, "--bucket", str(bucket), "bucket", "remote", "push")
            push_ot.append(secs)
            res.setdefault("push_sent", doc["push"]["sent"])
            # git: the same refs, same server, empty repository
            _fresh_bare(d, "git.git")
            secs, p = _timed(["git", f"--git-dir={bucket / '.git'}", "push", "-q", f"{base_url}/git.git",
                              "refs/opentraces/*:refs/opentraces/*", "refs/heads/main:refs/heads/main"], genv)
            _ok(p, "git push")
            push_git.append(secs)
            # pull into an empty bucket, next to git fetch of the same refs into an empty repository
            envb = _machine_env(run, f"b{rep}", remote)
            b = run.fresh(f"sync-dst-{rep}")
            _ot(run, envb, "--bucket", str(b), "setup", "bucket", "--remote", f"{base_url}/ours.git")
            secs, doc = _ot(run, envb, "--bucket", str(b), "bucket", "remote", "pull")
            pull_ot.append(secs)
            empty = run.fresh(f"sync-fetch-{rep}")
            subprocess.run(["git", "init", "-q", "--bare", str(empty)], check=True)
            secs, p = _timed(["git", f"--git-dir={empty}", "fetch", "-q", f"{base_url}/ours.git",
                              "refs/opentraces/v1/events/*:refs/opentraces/v1/events/*",
                              "refs/opentraces/v1/trails/*:refs/opentraces/v1/trails/*",
                              "refs/opentraces/v1/bucket:refs/opentraces/v1/bucket", "refs/heads/main:refs/heads/main"], genv)
            _ok(p, "git fetch")
            fetch_git.append(secs)
        # no-op push
        noop_ot, noop_git = [], []
        for _ in range(a.sync_repeats * 3):
            secs, doc = _ot(run, env, "--bucket", str(bucket), "bucket", "remote", "push")
            if doc["push"]["sent"]["objects"]:
                raise SystemExit("bench: a no-op push sent objects")
            noop_ot.append(secs)
            secs, p = _timed(["git", f"--git-dir={bucket / '.git'}", "push", "-q", f"{base_url}/ours.git",
                              "refs/opentraces/*:refs/opentraces/*", "refs/heads/main:refs/heads/main"], genv)
            _ok(p, "git push (no-op)")
            noop_git.append(secs)
        med = bench.med
        res.update({"push_s": {"opentraces": push_ot, "git": push_git}, "pull_s": {"opentraces": pull_ot, "git": fetch_git},
                    "noop_push_s": {"opentraces": noop_ot, "git": noop_git}})
        res["ratio_push"] = med(push_ot) / med(push_git)
        res["ratio_pull"] = med(pull_ot) / med(fetch_git)
        res["ratio_noop"] = med(noop_ot) / med(noop_git)
        _prefetch(run, bench, d, remote, base_url, genv, res)
    finally:
        stopper()
        shutil.rmtree(d, ignore_errors=True)
    run.results["sync"] = res
    sec, med = "sync", bench.med
    run.row(sec, f"push {n:,} sessions (HTTP): opentraces / git push",
            f"{med(res['push_s']['opentraces']):.2f} s / {med(res['push_s']['git']):.2f} s", "", f"{res['ratio_push']:.2f}x")
    run.row(sec, f"pull {n:,} sessions, lazy: opentraces / git fetch of the same refs",
            f"{med(res['pull_s']['opentraces']):.2f} s / {med(res['pull_s']['git']):.2f} s", "", f"{res['ratio_pull']:.2f}x")
    run.row(sec, "no-op push: opentraces / git push", f"{med(noop_ot) * 1000:.0f} ms / {med(noop_git) * 1000:.0f} ms",
            "< 300 ms", f"{res['ratio_noop']:.2f}x " + ("ok" if med(noop_ot) < 0.3 else "MISS"))
    if "prefetch_s" in res:
        run.row(sec, f"prefetch one trace of {res['prefetch_traces']:,}: opentraces / git fetch of its ref",
                f"{med(res['prefetch_s']['opentraces']) * 1000:.0f} ms / {med(res['prefetch_s']['git']) * 1000:.0f} ms",
                "", f"{res['ratio_prefetch']:.2f}x")


def _prefetch(run, bench, d, remote, base_url, genv, res) -> None:
    a = run.args
    large, _ = bench.status_bucket(a.status_large, a.seed, a.rebuild_cache)
    _fresh_bare(d, "large.git")
    t0 = time.perf_counter()
    p = subprocess.run(["git", f"--git-dir={large / '.git'}", "push", "-q", f"{base_url}/large.git",
                        "refs/opentraces/*:refs/opentraces/*", "refs/heads/main:refs/heads/main"],
                       env=genv, capture_output=True, text=True)
    _ok(p, "git push of the large bucket")
    bench.log(f"sync: {a.status_large:,}-trace bucket on the server ({time.perf_counter() - t0:.0f}s)")
    env = _machine_env(run, "large", remote)
    b = run.fresh("sync-large-dst")
    _ot(run, env, "--bucket", str(b), "setup", "bucket", "--remote", f"{base_url}/large.git")
    secs, _doc = _ot(run, env, "--bucket", str(b), "bucket", "remote", "pull")
    bench.log(f"sync: pulled {a.status_large:,} traces lazily ({secs:.0f}s)")
    res["pull_large_s"] = secs
    rows = json.loads(_ok(subprocess.run([run.ot, "--bucket", str(b), "trace", "list", "--limit", "20", "--json"],
                                         env=env, capture_output=True, text=True), "trace list").stdout)["traces"]
    ot_s, git_s = [], []
    for row in rows[: a.sync_repeats * 2]:
        secs, doc = _ot(run, env, "--bucket", str(b), "bucket", "prefetch", row["trace_id"])
        ot_s.append(secs)
        empty = run.fresh("sync-prefetch-git")
        subprocess.run(["git", "init", "-q", "--bare", str(empty)], check=True)
        ref = f"refs/opentraces/v1/blobs/{row['project']}/{row['trace_id']}"
        secs, p = _timed(["git", f"--git-dir={empty}", "fetch", "-q", f"{base_url}/large.git", f"{ref}:{ref}"], genv)
        _ok(p, "git fetch of one blob ref")
        git_s.append(secs)
    res["prefetch_traces"] = a.status_large
    res["prefetch_s"] = {"opentraces": ot_s, "git": git_s}
    res["ratio_prefetch"] = bench.med(ot_s) / bench.med(git_s)


def bench_encrypted(run, bench) -> None:
    """bench.py section ``--encrypted`` (issue #12): an end-to-end encrypted remote next to a plain one.

    The same N-session bucket pushed into an empty remote and pulled into an
    empty bucket, plain and encrypted, interleaved, over the HTTP server."""
    start_http = _serverrig().start_http
    a = run.args
    n = a.sync_sessions
    _src, paths, _ = bench.sessions(n, 4, a.seed + 5, jitter=1)
    source = bench.CACHE / f"sync-bucket-b{bench.BUILD_VERSION}-n{n}-seed{a.seed + 5}"
    if not (source / ".done").exists():
        bench.log(f"encrypted: building a {n}-session bucket")
        bench.build_bucket(source, paths)
        (source / ".done").write_text("ok\n")
    d = Path(tempfile.mkdtemp(prefix="ot-bench-enc-"))
    remote, stopper = start_http(d)
    times: dict[str, list[float]] = {"push_plain": [], "push_enc": [], "pull_plain": [], "pull_enc": []}
    sent: dict[str, int] = {}
    try:
        base_url = remote.url.rsplit("/", 1)[0]
        for rep in range(a.sync_repeats):
            for mode in (("plain", "enc") if rep % 2 == 0 else ("enc", "plain")):
                bucket = run.fresh(f"enc-src-{mode}-{rep}")
                shutil.copytree(source, bucket, symlinks=True)
                _fresh_bare(d, f"{mode}.git")
                env = _machine_env(run, f"enc-a-{mode}-{rep}", remote)
                extra = ["--encrypt"] if mode == "enc" else []
                _ot(run, env, "--bucket", str(bucket), "setup", "bucket", "--remote", f"{base_url}/{mode}.git",
                    "--policy", "off", *extra)
                secs, doc = _ot(run, env, "--bucket", str(bucket), "bucket", "remote", "push")
                times[f"push_{mode}"].append(secs)
                sent[mode] = doc["push"]["sent"]["bytes"]
                envb = _machine_env(run, f"enc-b-{mode}-{rep}", remote)
                if mode == "enc":
                    key = run.work / f"key-{rep}"
                    _ot(run, dict(env, OPENTRACES_KEY_PASSPHRASE="bench passphrase"), "key", "export", "--out", str(key))
                    _ot(run, dict(envb, OPENTRACES_KEY_PASSPHRASE="bench passphrase"), "key", "import", str(key))
                b = run.fresh(f"enc-dst-{mode}-{rep}")
                _ot(run, envb, "--bucket", str(b), "setup", "bucket", "--remote", f"{base_url}/{mode}.git", "--policy", "off")
                secs, doc = _ot(run, envb, "--bucket", str(b), "bucket", "remote", "pull")
                if doc["pull"]["batches"] == 0:
                    raise SystemExit(f"bench: the {mode} pull brought nothing")
                times[f"pull_{mode}"].append(secs)
    finally:
        stopper()
        shutil.rmtree(d, ignore_errors=True)
    med = bench.med
    res = {"sessions": n, "times_s": times, "sent_bytes": sent,
           "ratio_push": med(times["push_enc"]) / med(times["push_plain"]),
           "ratio_pull": med(times["pull_enc"]) / med(times["pull_plain"])}
    run.results["encrypted"] = res
    sec = "encrypted"
    run.row(sec, f"push {n:,} sessions (HTTP): encrypted / plain",
            f"{med(times['push_enc']):.2f} s / {med(times['push_plain']):.2f} s", "<= 1.3x",
            f"{res['ratio_push']:.2f}x " + ("ok" if res["ratio_push"] <= 1.3 else "MISS"))
    run.row(sec, f"pull {n:,} sessions, lazy: encrypted / plain",
            f"{med(times['pull_enc']):.2f} s / {med(times['pull_plain']):.2f} s", "<= 1.3x",
            f"{res['ratio_pull']:.2f}x " + ("ok" if res["ratio_pull"] <= 1.3 else "MISS"))
    run.row(sec, "bytes sent by the push: encrypted / plain", f"{sent.get('enc', 0):,} / {sent.get('plain', 0):,}", "",
            f"{sent.get('enc', 0) / max(sent.get('plain', 1), 1):.2f}x")
