"""``opentraces capture claude-code --hook``, run as Claude Code runs it.

Every hook here is a real process fed the JSON Claude Code sends on stdin.
Proves: the real session is captured with nothing on stdout and exit 0;
every failure (garbage, empty stdin, missing or non-file transcript, a
locked bucket, a folder that is not a bucket, stdin never closed, no time
left) still exits 0 with empty stdout, within its time bound, and adds
exactly one line to hook-errors.log naming the reason, which
``bucket status`` counts; ten hooks for ten sessions at once all land.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from opentraces.ids import trace_id_for

from bucketrig import REAL_CLAUDE, copy_file, rewrite_session, run_cli_process, tree_digest

REAL_SESSION_ID = "164b9ad1-4c1b-4602-9102-5276951a1594"
REAL_CWD = "/workspace/claude-real-edit-box/project"
WATCHDOG_GRACE_S = 3.0  # opentraces.cli.setup_cmd.WATCHDOG_GRACE_S
STARTUP_SLACK_S = 10.0  # interpreter start and imports on a loaded machine; a bound, not a benchmark
DEFAULT_BOUND_S = 20.0 + WATCHDOG_GRACE_S  # opentraces.capture.hook.DEFAULT_DEADLINE_S + grace


def home() -> Path:
    return Path(os.environ["OPENTRACES_HOME"])


def log_lines() -> list[str]:
    try:
        return (home() / "logs" / "hook-errors.log").read_text().splitlines()
    except FileNotFoundError:
        return []


def payload(transcript, session_id=REAL_SESSION_ID, event="Stop", cwd=REAL_CWD) -> bytes:
    return orjson.dumps({"session_id": session_id, "transcript_path": str(transcript), "cwd": cwd,
                         "hook_event_name": event, "stop_hook_active": False,
                         "permission_mode": "default"})


def hook(stdin: bytes, *global_args, timeout: float | None = None) -> tuple[subprocess.CompletedProcess, float]:
    extra = ("--hook-timeout", str(timeout)) if timeout is not None else ()
    t0 = time.monotonic()
    proc = run_cli_process(*global_args, "capture", "claude-code", "--hook", *extra, input=stdin, timeout=120)
    return proc, time.monotonic() - t0


def traces(cli, *global_args) -> list[str]:
    res = cli(*global_args, "trace", "list", "--limit", "1000", "--json")
    assert res.exit_code == 0, res.stderr
    return sorted(r["trace_id"] for r in res.json["traces"])


def hook_failures(cli) -> int:
    res = cli("bucket", "status", "--json")
    assert res.exit_code == 0, res.stderr
    return res.json["bucket"]["hook_failures"]


@pytest.fixture
def session(tmp_path) -> Path:
    """A copy of the real session where Claude Code keeps transcripts."""
    return copy_file(REAL_CLAUDE, tmp_path / ".claude" / "projects" / "-workspace-claude-real-edit-box-project"
                     / f"{REAL_SESSION_ID}.jsonl")


@pytest.fixture
def captured(cli, session) -> Path:
    """A bucket that already holds the real session (so ``bucket status`` has a manifest)."""
    proc, _ = hook(payload(session))
    assert proc.returncode == 0 and proc.stdout == b"" and log_lines() == []
    return session


def test_hook_captures_the_real_session(cli, session, capsys):
    proc, elapsed = hook(payload(session))
    assert proc.returncode == 0
    assert proc.stdout == b""
    assert b"Traceback" not in proc.stderr
    assert traces(cli) == [trace_id_for("claude-code", REAL_SESSION_ID)]
    assert log_lines() == []
    assert elapsed < DEFAULT_BOUND_S + STARTUP_SLACK_S
    with capsys.disabled():
        print(f"\n[hook latency] real session, process start to exit: {elapsed:.3f}s")
    row = cli("trace", "list", "--json").json["traces"][0]
    assert row["project"].startswith("project-")  # from the session's cwd

    # SessionEnd right after Stop: nothing new, still silent and successful
    batches = cli("bucket", "status", "--json").json["bucket"]["batches"]
    proc, _ = hook(payload(session, event="SessionEnd"))
    assert (proc.returncode, proc.stdout) == (0, b"")
    assert cli("bucket", "status", "--json").json["bucket"]["batches"] == batches
    assert log_lines() == [] and hook_failures(cli) == 0


def test_hook_captures_a_growing_session_turn_by_turn(cli, tmp_path):
    lines = REAL_CLAUDE.read_bytes().splitlines(keepends=True)
    live = tmp_path / "live.jsonl"
    live.write_bytes(b"".join(lines[:8]))
    proc, _ = hook(payload(live))
    assert (proc.returncode, proc.stdout) == (0, b"")
    first = cli("trace", "list", "--json").json["traces"][0]["steps"]
    live.write_bytes(b"".join(lines))
    proc, _ = hook(payload(live))
    assert (proc.returncode, proc.stdout) == (0, b"")
    (row,) = cli("trace", "list", "--json").json["traces"]
    assert row["steps"] > first
    assert log_lines() == []


def _missing(tmp_path):
    return payload(tmp_path / "gone" / "nope.jsonl")


def _a_folder(tmp_path):
    (tmp_path / "adir").mkdir()
    return payload(tmp_path / "adir")


def _no_transcript(tmp_path):
    return orjson.dumps({"session_id": "s-1", "hook_event_name": "Stop", "cwd": "/x"})


FAILURES = [
    ("garbage", lambda tmp: b"\x00\xffthis is not json{", "not valid JSON"),
    ("empty", lambda tmp: b"", "empty stdin"),
    ("whitespace", lambda tmp: b"  \n", "empty stdin"),
    ("json-array", lambda tmp: b'["session_id"]', "not an object"),
    ("missing-transcript", _missing, "transcript not found"),
    ("transcript-is-a-folder", _a_folder, "not a file"),
    ("no-transcript-path", _no_transcript, "no transcript_path"),
    ("not-a-session", lambda tmp: payload(_write(tmp / "junk.jsonl", b"hello\nworld\n")), "not captured"),
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name,make,reason", FAILURES, ids=[f[0] for f in FAILURES])
def test_hook_failure_exits_0_silently_and_logs_one_line(cli, captured, tmp_path, name, make, reason):
    before = log_lines()
    proc, elapsed = hook(make(tmp_path), timeout=5)
    assert proc.returncode == 0
    assert proc.stdout == b""
    assert b"Traceback" not in proc.stderr
    assert elapsed < 5 + WATCHDOG_GRACE_S + STARTUP_SLACK_S
    new = log_lines()[len(before):]
    assert len(new) == 1, new
    when, sid, why = new[0].split("\t")
    assert when.endswith("Z") and when[:4].isdigit()
    assert reason in why, why
    assert hook_failures(cli) == len(before) + 1
    assert len(traces(cli)) == 1  # the bucket still holds exactly what it held


def test_failure_log_names_the_session(cli, captured, tmp_path):
    proc, _ = hook(payload(tmp_path / "missing.jsonl", session_id="abc-123"), timeout=5)
    assert (proc.returncode, proc.stdout) == (0, b"")
    (line,) = log_lines()
    assert line.split("\t")[1] == "abc-123"


LOCKER = """
import sys, time
from opentraces.bucket import Bucket
lock = Bucket(sys.argv[1]).lock(0)
lock.acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_hook_with_bucket_locked_by_another_process(cli, captured, tmp_path):
    bucket = home() / "bucket"
    other = rewrite_session(REAL_CLAUDE, tmp_path / "other.jsonl", "0f0f0f0f-aaaa-bbbb-cccc-000000000001")
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(bucket)], stdout=subprocess.PIPE)
    try:
        assert locker.stdout.readline() == b"locked\n"
        proc, elapsed = hook(payload(other, session_id="0f0f0f0f-aaaa-bbbb-cccc-000000000001"), timeout=3)
        assert proc.returncode == 0
        assert proc.stdout == b""
        assert b"Traceback" not in proc.stderr
        assert elapsed < 3 + WATCHDOG_GRACE_S + STARTUP_SLACK_S
        (line,) = log_lines()
        assert "locked" in line.split("\t")[2]
        assert line.split("\t")[1] == "0f0f0f0f-aaaa-bbbb-cccc-000000000001"
        assert hook_failures(cli) == 1
        assert len(traces(cli)) == 1
    finally:
        locker.kill()
        locker.wait()
    # lock gone: the next hook for that session captures it
    proc, _ = hook(payload(other, session_id="0f0f0f0f-aaaa-bbbb-cccc-000000000001"), timeout=5)
    assert (proc.returncode, proc.stdout) == (0, b"")
    assert len(traces(cli)) == 2 and len(log_lines()) == 1


def test_hook_into_a_folder_that_is_not_a_bucket(cli, tmp_path, session):
    notbucket = tmp_path / "documents"
    notbucket.mkdir()
    (notbucket / "thesis.txt").write_text("precious")
    proc, elapsed = hook(payload(session), "--bucket", notbucket, timeout=5)
    assert (proc.returncode, proc.stdout) == (0, b"")
    assert elapsed < 5 + WATCHDOG_GRACE_S + STARTUP_SLACK_S
    (line,) = log_lines()
    assert "not an opentraces bucket" in line
    assert sorted(p.name for p in notbucket.iterdir()) == ["thesis.txt"]


def test_hook_whose_stdin_never_closes(cli, captured):
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "opentraces.cli", "capture", "claude-code", "--hook",
                             "--hook-timeout", "4"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b'{"session_id": "half')
        proc.stdin.flush()
        rc = proc.wait(timeout=60)  # stdin still open: the hook must give up on it by itself
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            f.close()
    elapsed = time.monotonic() - t0
    assert (rc, out) == (0, b"")
    assert elapsed < 4 + WATCHDOG_GRACE_S + STARTUP_SLACK_S
    (line,) = log_lines()
    assert "stdin was not closed" in line
    assert hook_failures(cli) == 1


def test_hook_with_no_time_left_logs_a_timeout(cli, captured):
    proc, elapsed = hook(payload(captured), timeout=0)
    assert (proc.returncode, proc.stdout) == (0, b"")
    assert elapsed < WATCHDOG_GRACE_S + STARTUP_SLACK_S
    (line,) = log_lines()
    assert "timed out" in line


def test_ten_hooks_for_ten_sessions_at_once(cli, tmp_path):
    sids = [str(uuid.UUID(int=0x5E55_0000_0000_4000_8000_0000_0000_0000 + i)) for i in range(10)]
    files = [rewrite_session(REAL_CLAUDE, tmp_path / "projects" / f"{sid}.jsonl", sid) for sid in sids]
    procs = []
    t0 = time.monotonic()
    for sid, path in zip(sids, files):
        procs.append(subprocess.Popen([sys.executable, "-m", "opentraces.cli", "capture", "claude-code", "--hook"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for p, sid, path in zip(procs, sids, files):
        p.stdin.write(payload(path, session_id=sid))
        p.stdin.close()
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    elapsed = time.monotonic() - t0
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [(rc, out) for rc, out, _ in results] == [(0, b"")] * 10, results
    assert log_lines() == []
    assert traces(cli) == sorted(trace_id_for("claude-code", sid) for sid in sids)
    assert elapsed < DEFAULT_BOUND_S + STARTUP_SLACK_S
    res = cli("bucket", "verify", "--full", "--json")
    assert res.exit_code == 0, res.stdout
    assert res.json["verify"]["ok"] is True


@pytest.mark.timeout(300, method="thread")  # pytest-timeout's signal method would own SIGALRM
def test_the_alarm_at_any_point_leaves_a_bucket_the_next_hook_completes(tmp_path):
    """The SIGALRM safety net may stop a capture anywhere; whatever it stopped, the
    next hook finishes the job and the bucket verifies. (In-process: run_hook
    is the library part; the deadlines sweep the stages of one capture.)"""
    from opentraces.bucket import Bucket
    from opentraces.capture.hook import run_hook
    from opentraces.maintenance.verify import verify

    logs = tmp_path / "logs"
    data = payload(REAL_CLAUDE)
    timed_out = 0
    for i, deadline in enumerate([0.001, 0.003, 0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5]):
        bucket = Bucket(tmp_path / f"b{i}")
        first = run_hook(data, bucket, logs, deadline_s=deadline)
        assert first.ok or "timed out" in first.reason, first
        timed_out += not first.ok
        again = run_hook(data, bucket, logs, deadline_s=20)
        assert again.ok, again
        assert [r["trace_id"] for r in bucket.rows()] == [trace_id_for("claude-code", REAL_SESSION_ID)]
        report = verify(bucket, sample=None)
        # The Git mirror is updated after the commit point; a capture stopped between the two
        # leaves the mirror behind until the next commit, like a crash there (the mirror's
        # contract, not the hook's). Everything canonical and projected must verify.
        problems = [p for p in report["problems"] if not p["kind"].startswith("mirror_")]
        assert problems == [], (deadline, problems)
    assert timed_out >= 1  # the sweep did interrupt captures
    assert len((logs / "hook-errors.log").read_text().splitlines()) == timed_out


def test_an_unchanged_session_is_answered_without_loading_the_bucket(session, cli):
    """The entry point's fast path (opentraces.cli.fast): the cursor says the transcript is captured,
    so the process exits 0 before pygit2 or the bucket code is imported; a grown transcript still
    goes the full way with the payload the fast path read."""
    proc, _ = hook(payload(session))
    assert proc.returncode == 0 and proc.stdout == b""
    before = tree_digest(home() / "bucket", exclude=(".state",))
    env = dict(os.environ)
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "opentraces.cli", "capture", "claude-code", "--hook"],
                       input=payload(session), env=env, capture_output=True, timeout=120)
    assert p.returncode == 0 and p.stdout == b""
    imported = {ln.rsplit("|", 1)[-1].strip() for ln in p.stderr.decode().splitlines() if "|" in ln}
    assert "opentraces.cli.fast" in imported and "pygit2" not in imported and "opentraces.bucket" not in imported
    assert tree_digest(home() / "bucket", exclude=(".state",)) == before and log_lines() == []

    with open(session, "ab") as f:  # one more row: the full path captures it, from the same payload
        f.write(REAL_CLAUDE.read_bytes().splitlines(keepends=True)[-1].replace(b'"uuid":"', b'"uuid":"x'))
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "opentraces.cli", "capture", "claude-code", "--hook"],
                       input=payload(session), env=env, capture_output=True, timeout=120)
    assert p.returncode == 0 and "pygit2" in p.stderr.decode()
    assert tree_digest(home() / "bucket", exclude=(".state",)) != before and log_lines() == []
