"""Crashes and concurrent writers never leave a visible partial batch or lose data.

* SIGKILL of a real capture process at many points: every committed batch
  decodes; repair + verify --full are clean; a last run captures everything.
* SIGKILL at each commit phase (blobs, batch, projections, manifest): a plain
  capture afterwards catches up the projections by itself.
* Exact crash states (built from the files of two captures): catch_up completes them.
* Two capture processes at once: both succeed, nothing lost, one hash chain.
* The writer lock held: capture_paths gives up with LockedError (exit 7).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import orjson
import pytest

from opentraces import Bucket, LockedError
from opentraces.batches import NAME_RE, read_batch
from opentraces.capture import agent_module, capture_paths
from opentraces.errors import ExitStatus
from opentraces.fsio import is_tmp_name

from bucketrig import (
    BATCHES,
    INDEX,
    REAL_CLAUDE,
    bucket_cmd,
    capture,
    claude_sessions,
    rewrite_session,
    run_cli_process,
    tree_digest,
    verify_full,
)


def make_sessions(folder, n, tag=0):
    return [rewrite_session(REAL_CLAUDE, folder / f"s{tag}-{i:03d}.jsonl", f"{tag:08d}-2222-4333-8444-{i:012d}")
            for i in range(n)]


def start_capture(bucket, *paths):
    return subprocess.Popen([sys.executable, "-m", "opentraces.cli", "--bucket", str(bucket), "capture",
                             "claude-code", *map(str, paths), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())


def kill(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return proc.returncode


def assert_batches_whole(bucket):
    """Every file in the batch folder is a complete batch, or a dot-named temp file."""
    folder = bucket / BATCHES
    if not folder.is_dir():
        return []
    names = sorted(os.listdir(folder))
    for name in names:
        if NAME_RE.match(name):
            read_batch(folder / name)  # raises on any partial/corrupt batch
        else:
            assert is_tmp_name(name), f"unexpected file in the batch folder: {name}"
    return [n for n in names if NAME_RE.match(n)]


def manifest_ids(bucket):
    return {r["trace_id"] for r in Bucket(bucket).manifest()["traces"]}


def test_sigkill_at_many_points_then_repair(tmp_path, cli):
    sessions = make_sessions(tmp_path / "sessions", 150)
    bucket = tmp_path / "bucket"
    delays = [0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.2, 1.4, 1.7, 2.0]
    for delay in delays:
        proc = start_capture(bucket, tmp_path / "sessions")
        time.sleep(delay)
        kill(proc)
        assert_batches_whole(bucket)
        if not bucket.exists():
            continue
        res = bucket_cmd(cli, bucket, "repair", expect=None)
        assert res.exit_code == 0, (delay, res.stderr)
        v = verify_full(cli, bucket)
        assert v["exit"] == 0 and v["problems"] == [], (delay, v["problems"])

    res = run_cli_process("--bucket", bucket, "capture", "claude-code", tmp_path / "sessions", "--json")
    assert res.returncode == 0, res.stderr
    assert_batches_whole(bucket)
    v = verify_full(cli, bucket)
    assert v["exit"] == 0 and v["problems"] == []
    from opentraces.ids import trace_id_for

    want = {trace_id_for("claude-code", f"00000000-2222-4333-8444-{i:012d}") for i in range(150)}
    assert manifest_ids(bucket) == want
    assert {p.name for p in (bucket / "traces").glob("v1/*/*")} == want
    # and nothing is left to do
    again = capture(cli, bucket, tmp_path / "sessions")["capture"]
    assert again["batches"] == [] and again["events"] == 0
    assert bucket_cmd(cli, bucket, "repair").json["repair"]["files_written"] == 0


def _wait_for(pred, proc, limit=60.0):
    """Poll (1 ms) until ``pred()`` or the process exits; True if pred held."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if pred():
            return True
        if proc.poll() is not None:
            return pred()
        time.sleep(0.001)
    return False


def _has_batch(bucket):
    folder = bucket / BATCHES
    return folder.is_dir() and any(NAME_RE.match(n) for n in os.listdir(folder))


PHASES = {
    "blobs": lambda b: (b / "blobs").is_dir(),
    "batch": _has_batch,
    "index": lambda b: (b / INDEX).is_file(),
    "manifest": lambda b: (b / "manifest.json").is_file(),
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_sigkill_in_each_commit_phase_then_plain_capture_catches_up(tmp_path, cli, phase):
    sessions = make_sessions(tmp_path / "sessions", 20, tag=1)
    bucket = tmp_path / "bucket"
    proc = start_capture(bucket, *sessions)
    _wait_for(lambda: PHASES[phase](bucket), proc)
    kill(proc)
    committed = assert_batches_whole(bucket)
    # no repair: the next capture completes whatever the killed one left
    doc = capture(cli, bucket, *sessions)["capture"]
    assert len(committed) + len(doc["batches"]) == 1  # the events are committed exactly once
    v = verify_full(cli, bucket)
    assert v["exit"] == 0 and v["problems"] == [], v["problems"]
    assert len(manifest_ids(bucket)) == 20
    assert bucket_cmd(cli, bucket, "repair").json["repair"]["files_written"] == 0
    status = bucket_cmd(cli, bucket, "status").json["bucket"]
    assert status["state"] == "ok" and status["traces"] == 20


# ---------------------------------------------------------------- exact crash states


def _restore(dst, src, rel):
    """Make ``dst/rel`` what it is in ``src`` (deleting it if absent there)."""
    a, b = dst / rel, src / rel
    if a.is_dir():
        shutil.rmtree(a)
    elif a.exists():
        a.unlink()
    if b.is_dir():
        shutil.copytree(b, a)
    elif b.exists():
        shutil.copy2(b, a)


CRASH_STATES = {
    # what is already "after" when the process dies; the rest is still "before"
    "blobs-only": ["blobs"],
    "batch": ["blobs", BATCHES, ".state"],
    "batch+traces": ["blobs", BATCHES, ".state", "traces"],
    "batch+traces+index": ["blobs", BATCHES, ".state", "traces", INDEX],
}


@pytest.mark.parametrize("state", list(CRASH_STATES))
def test_exact_crash_states_are_completed_by_the_next_capture(tmp_path, cli, state):
    a, b_, c = sorted(claude_sessions())[:3]
    before = tmp_path / "before"
    capture(cli, before, a)
    after = tmp_path / "after"
    shutil.copytree(before, after)
    capture(cli, after, b_)
    want_derived = {k: v for k, v in tree_digest(after).items() if not k.startswith((".state", ".git"))}

    crashed = tmp_path / "crashed"
    shutil.copytree(before, crashed)
    for rel in CRASH_STATES[state]:
        _restore(crashed, after, rel)
    if state != "blobs-only":
        st = bucket_cmd(cli, crashed, "status").json["bucket"]
        assert st["state"] == "stale", st

    # the next capture (of b again and of c) completes the projections
    capture(cli, crashed, b_, c)
    v = verify_full(cli, crashed)
    assert v["exit"] == 0 and v["problems"] == [], v["problems"]
    assert bucket_cmd(cli, crashed, "status").json["bucket"]["state"] == "ok"
    assert bucket_cmd(cli, crashed, "repair").json["repair"]["files_written"] == 0
    # a/b's trace folders are exactly those of the uncrashed bucket
    got = tree_digest(crashed / "traces")
    for k, v in want_derived.items():
        if k.startswith("traces/"):
            assert got[k[len("traces/"):]] == v, k


def test_lost_trace_folder_is_restored_by_capture_not_duplicated(tmp_path, cli):
    """Deleting derived files must not make capture re-commit old events or
    project a trace from part of its events."""
    lines = REAL_CLAUDE.read_bytes().splitlines(keepends=True)
    live = tmp_path / "s" / REAL_CLAUDE.name
    live.parent.mkdir()
    live.write_bytes(b"".join(lines[:10]))
    bucket = tmp_path / "bucket"
    capture(cli, bucket, live)
    live.write_bytes(b"".join(lines))
    capture(cli, bucket, live)
    want = tree_digest(bucket / "traces")
    batches = sorted(os.listdir(bucket / BATCHES))

    shutil.rmtree(bucket / "traces")
    doc = capture(cli, bucket, live)["capture"]
    assert doc["batches"] == [] and doc["events"] == 0
    assert sorted(os.listdir(bucket / BATCHES)) == batches
    assert tree_digest(bucket / "traces") == want
    assert verify_full(cli, bucket)["exit"] == 0

    (bucket / "manifest.json").unlink()
    other = sorted(p for p in claude_sessions() if p != REAL_CLAUDE)[0]
    capture(cli, bucket, other)
    v = verify_full(cli, bucket)
    assert v["exit"] == 0 and v["problems"] == [], v["problems"]
    assert len(manifest_ids(bucket)) == 2


# ------------------------------------------------------------------ concurrency


def test_two_capture_processes_at_once(tmp_path, cli):
    sessions = make_sessions(tmp_path / "sessions", 30, tag=2)
    bucket = tmp_path / "bucket"
    p1 = start_capture(bucket, *sessions[::2])
    p2 = start_capture(bucket, *sessions[1::2])
    # readers never lock and never fail while the writers run
    reads = 0
    while p1.poll() is None or p2.poll() is None:
        r = cli("--bucket", bucket, "bucket", "status", "--json")
        assert r.exit_code == 0, r.stderr
        r = cli("--bucket", bucket, "trace", "list", "--json")
        assert r.exit_code == 0, r.stderr
        reads += 1
    out1, err1 = p1.communicate()
    out2, err2 = p2.communicate()
    assert p1.returncode == 0, err1
    assert p2.returncode == 0, err2
    d1, d2 = orjson.loads(out1)["capture"], orjson.loads(out2)["capture"]
    assert len(d1["captured"]) == len(d2["captured"]) == 15
    names = assert_batches_whole(bucket)
    assert sorted(d1["batches"] + d2["batches"]) == names
    heads = [read_batch(bucket / BATCHES / n).header for n in names]
    assert sorted(h.seq for h in heads) == [1, 2] and len({h.writer for h in heads}) == 1
    assert len(manifest_ids(bucket)) == 30
    v = verify_full(cli, bucket)
    assert v["exit"] == 0 and v["problems"] == []


def test_lock_held_by_another_writer_times_out_with_exit_7(tmp_path, cli):
    bucket_dir = tmp_path / "bucket"
    capture(cli, bucket_dir, REAL_CLAUDE)
    before = tree_digest(bucket_dir)
    holder = Bucket(bucket_dir)
    other = sorted(p for p in claude_sessions() if p != REAL_CLAUDE)[0]
    with holder.lock():
        with pytest.raises(LockedError) as info:
            capture_paths(Bucket(bucket_dir), agent_module("claude-code"), [other], lock_timeout=0.2)
        assert info.value.exit_status == ExitStatus.LOCKED == 7
        assert "locked" in str(info.value)
        # readers are not blocked by the writer lock
        assert cli("--bucket", bucket_dir, "bucket", "status", "--json").exit_code == 0
    assert tree_digest(bucket_dir) == before
    # released: the same capture now succeeds
    rep = capture_paths(Bucket(bucket_dir), agent_module("claude-code"), [other], lock_timeout=0.2)
    assert len(rep.captured) == 1 and len(rep.batches) == 1


def test_lock_dies_with_its_process(tmp_path, cli):
    """A writer killed while holding the lock does not leave the bucket locked."""
    bucket_dir = tmp_path / "bucket"
    code = ("import sys, time; from opentraces import Bucket; l = Bucket(sys.argv[1]).lock(); l.acquire(); "
            "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(bucket_dir)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"held"
    with pytest.raises(LockedError):
        capture_paths(Bucket(bucket_dir), agent_module("claude-code"), [REAL_CLAUDE], lock_timeout=0.1)
    proc.kill()
    proc.wait()
    proc.stdout.close()
    rep = capture_paths(Bucket(bucket_dir), agent_module("claude-code"), [REAL_CLAUDE], lock_timeout=5)
    assert len(rep.captured) == 1


@pytest.mark.parametrize("phase", ["traces", "index"])
def test_sigkill_during_repair_then_repair_again(tmp_path, cli, phase):
    sessions = make_sessions(tmp_path / "sessions", 20, tag=3)
    bucket = tmp_path / "bucket"
    capture(cli, bucket, *sessions)
    want = {k: v for k, v in tree_digest(bucket).items() if not k.startswith((".state", ".git"))}
    shutil.rmtree(bucket / "traces")
    (bucket / "manifest.json").unlink()
    (bucket / INDEX).unlink()
    proc = subprocess.Popen([sys.executable, "-m", "opentraces.cli", "--bucket", str(bucket), "bucket", "repair"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pred = {"traces": lambda: (bucket / "traces").is_dir(), "index": lambda: (bucket / INDEX).is_file()}[phase]
    _wait_for(pred, proc)
    kill(proc)
    assert_batches_whole(bucket)
    # a capture (not only repair) completes the interrupted repair
    doc = capture(cli, bucket, *sessions)["capture"]
    assert doc["batches"] == []
    got = {k: v for k, v in tree_digest(bucket).items() if not k.startswith((".state", ".git"))}
    assert {k: v for k, v in got.items() if not is_tmp_name(k.rsplit("/", 1)[-1])} == want
    v = verify_full(cli, bucket)
    assert v["exit"] == 0 and v["problems"] == [], v["problems"]
