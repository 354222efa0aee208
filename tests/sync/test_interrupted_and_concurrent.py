"""Pushes killed mid-way and two machines at once (issue #8), against real servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from syncrig import Machine, fsck_ok, remote_refs, session

STAGE_REFS = {"blobs": "refs/opentraces/v1/blobs/*", "events": "refs/opentraces/v1/events/*",
              "trails": "refs/opentraces/v1/trails/*", "bucket": "refs/opentraces/v1/bucket"}


def _hold_hook(repo, pattern: str, marker) -> None:
    """A pre-receive hook that, when a ref of ``pattern`` arrives, says so and waits (to be killed)."""
    hook = repo / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\nwhile read old new ref; do\n  case \"$ref\" in {pattern})\n"
                    f"    echo $$ > {marker}; sleep 60; exit 1;;\n  esac\ndone\nexit 0\n")
    hook.chmod(0o755)


@pytest.mark.parametrize("stage", list(STAGE_REFS))
def test_push_killed_at_each_stage(daemon_remote, tmp_path, stage):
    r = daemon_remote
    a, b = Machine(tmp_path, "a"), Machine(tmp_path, "b")
    a.json("capture", "claude-code", session(tmp_path / "s" / "1.jsonl", 1, 10))
    a.connect(r)
    a.json("bucket", "remote", "push")
    a.json("capture", "claude-code", session(tmp_path / "s" / "2.jsonl", 2, 12))
    marker = tmp_path / "held"
    _hold_hook(r.repo, STAGE_REFS[stage], marker)
    proc = subprocess.Popen([sys.executable, "-m", "opentraces.cli", "bucket", "remote", "push", "--json"],
                            env=a.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), (proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
    os.killpg(proc.pid, signal.SIGKILL)  # the client dies mid-stage
    proc.wait()
    time.sleep(0.2)
    try:
        os.kill(int(marker.read_text()), signal.SIGKILL)  # and the held hook with it
    except (ProcessLookupError, ValueError):
        pass
    (r.repo / "hooks" / "pre-receive").unlink()
    time.sleep(0.3)
    fsck_ok(r.repo)
    # another machine sees a consistent older state
    b.connect(r)
    b.json("bucket", "remote", "pull")
    assert b.json("bucket", "verify", "--full")["verify"]["ok"]
    seen = b.trace_ids()
    events_landed = stage in ("trails", "bucket")
    assert len(seen) == (2 if events_landed else 1)
    # a rerun completes it; the other machine then has everything
    a.json("bucket", "remote", "push")
    assert remote_refs(r) == a.refs() or b.json("bucket", "remote", "status")["remote_status"]["state"] != "diverged"
    assert a.json("bucket", "remote", "status")["remote_status"]["state"] == "in_sync"
    b.json("bucket", "remote", "pull")
    assert b.trace_ids() == a.trace_ids() and len(a.trace_ids()) == 2
    assert b.json("bucket", "verify", "--full")["verify"]["ok"]
    fsck_ok(r.repo)


def test_two_machines_push_and_pull_concurrently(daemon_remote, tmp_path):
    """20 rounds: each machine captures a session (some older than the other's) and both push at once."""
    r = daemon_remote
    a, b = Machine(tmp_path, "a"), Machine(tmp_path, "b")
    a.connect(r)
    b.connect(r)
    hours_a = [10, 3, 12, 14, 1, 16, 18, 5, 20, 21, 7, 22, 9, 11, 13, 15, 17, 19, 2, 23]
    hours_b = [11, 2, 13, 4, 15, 0, 17, 19, 6, 21, 8, 23, 10, 12, 14, 16, 18, 20, 22, 1]
    for i in range(20):
        a.json("capture", "claude-code", session(tmp_path / "sa" / f"{i}.jsonl", 100 + i, hours_a[i]))
        b.json("capture", "claude-code", session(tmp_path / "sb" / f"{i}.jsonl", 200 + i, hours_b[i]))
        procs = [subprocess.Popen([sys.executable, "-m", "opentraces.cli", "bucket", "remote", "push", "--json"],
                                  env=m.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for m in (a, b)]
        for m, p in zip((a, b), procs):
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, (i, m.name, out[-1500:], err[-1500:])
    for m in (a, b):
        m.json("bucket", "remote", "pull")
        m.json("bucket", "remote", "push")
    for m in (a, b):
        m.json("bucket", "remote", "pull")
    assert a.trace_ids() == b.trace_ids() and len(a.trace_ids()) == 40
    for m in (a, b):
        v = m.json("bucket", "verify", "--full")["verify"]
        assert v["ok"], v["problems"][:5]
        st = m.json("bucket", "remote", "status")["remote_status"]
        assert st["state"] == "in_sync", (m.name, st)
    fsck_ok(r.repo)
