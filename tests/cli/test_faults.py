"""Reproductions of what a fault-injection run found (issue #11), each failing before its fix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson

from bucketrig import REAL_CLAUDE, capture, claude_sessions, one_line_error, rewrite_session, verify_full


def test_a_deeply_nested_line_is_one_skipped_line(tmp_path, cli):
    """1,025 levels of nesting made the JSON fallback raise RecursionError and abort the whole run."""
    bad = tmp_path / "s" / "deep.jsonl"
    rewrite_session(REAL_CLAUDE, bad, "deep-session")
    deep = b'{"type":"user","x":' + b"[" * 1025 + b"]" * 1025 + b"}\n"
    bad.write_bytes(bad.read_bytes() + deep)
    other = rewrite_session(REAL_CLAUDE, tmp_path / "s" / "other.jsonl", "other-session")
    doc = capture(cli, tmp_path / "bucket", bad, other)["capture"]
    assert len(doc["captured"]) == 2
    [mine] = [c for c in doc["captured"] if c["path"] == str(bad)]
    assert [reason for _line, reason in mine["skipped_lines"]] == ["nested too deeply"]
    assert verify_full(cli, tmp_path / "bucket")["exit"] == 0


def test_a_fifo_is_skipped_not_waited_for(tmp_path):
    """A FIFO given by path hung capture forever while it held the writer lock."""
    fifo = tmp_path / "s" / "pipe.jsonl"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    good = rewrite_session(REAL_CLAUDE, tmp_path / "s" / "good.jsonl", "good-session")
    bucket = tmp_path / "bucket"
    env = dict(os.environ)
    for args in ((fifo, good), (tmp_path / "s",)):  # by path, then inside a folder
        t0 = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "opentraces.cli", "--bucket", bucket, "capture", "claude-code",
                               *map(str, args), "--json"], env=env, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - t0 < 30
        doc = orjson.loads(done.stdout)["capture"]
        [skip] = doc["skipped"]
        assert skip["path"] == str(fifo) and "regular file" in skip["reason"]
    # the lock was released: another capture proceeds at once
    done = subprocess.run([sys.executable, "-m", "opentraces.cli", "--bucket", bucket, "capture", "claude-code",
                           str(good), "--json"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0 and orjson.loads(done.stdout)["capture"]["unchanged"] == [str(good)]
