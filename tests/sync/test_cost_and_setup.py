"""What a push costs, measured at the server (nginx's request sizes), and `setup bucket` (issue #8)."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pexpect
import pytest

from syncrig import Machine, session
from bucketrig import REAL_CLAUDE


def _new_bytes(bucket, before: set) -> int:
    """Bytes of the canonical files a capture added (its blobs and batch)."""
    total = 0
    for top in ("blobs", "events/v1/batches"):
        for p in (bucket / top).rglob("*"):
            if p.is_file() and str(p) not in before:
                total += p.stat().st_size
    return total


def _canonical_files(bucket) -> set:
    return {str(p) for top in ("blobs", "events/v1/batches") for p in (bucket / top).rglob("*") if p.is_file()}


def test_noop_push_sends_nothing_and_one_session_sends_about_its_bytes(http_remote, tmp_path):
    r = http_remote
    a = Machine(tmp_path, "a")
    for i in range(5):
        a.json("capture", "claude-code", session(tmp_path / "s" / f"{i}.jsonl", 10 + i, 5 + i))
    a.connect(r)
    a.json("bucket", "remote", "push")
    posts = lambda: [ln for ln in r.log.read_text().splitlines() if "git-receive-pack" in ln and " POST " in ln]  # noqa: E731
    n_posts, received = len(posts()), r.received_bytes()
    noop = a.json("bucket", "remote", "push")["push"]
    assert noop["state"] == "up_to_date" and noop["sent"] == {"objects": 0, "bytes": 0} and noop["refs"] == {}
    assert len(posts()) == n_posts  # not one receive-pack request
    noop_bytes = r.received_bytes() - received
    assert noop_bytes < 2000, noop_bytes  # one ref listing's request headers
    before_files = _canonical_files(a.bucket)
    new = session(tmp_path / "s" / "new.jsonl", 99, 20)
    a.json("capture", "claude-code", new)
    own = _new_bytes(a.bucket, before_files)
    received = r.received_bytes()
    one = a.json("bucket", "remote", "push")["push"]
    got = r.received_bytes() - received
    print(f"\n[push cost] no-op: {noop_bytes} B received; one session: {got} B received by the server, "
          f"{own} B of new canonical files, session file {new.stat().st_size} B")
    assert one["state"] == "pushed"
    assert got <= 2 * own + 20_000, (got, own)  # the session's bytes, plus refs and a few trees and commits
    assert got >= own // 3, (got, own)


def test_setup_bucket_needs_a_credential(bare_remote, tmp_path):
    m = Machine(tmp_path, "m")
    done = m.run("setup", "bucket", "--remote", bare_remote.url, expect=3)
    assert "opentraces auth login" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (m.ot_home / "config.json").exists()


def test_setup_bucket_without_a_tty_applies_recommended(bare_remote, tmp_path):
    m = Machine(tmp_path, "m")
    m.json("auth", "login", "--token", "t")
    done = subprocess.run([sys.executable, "-m", "opentraces.cli", "setup", "bucket", "--remote", bare_remote.url],
                          env=m.env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    cfg = orjson.loads((m.ot_home / "config.json").read_bytes())
    on = {t for t, v in cfg["security"].items() if v["enabled"]}
    assert on == {"regex", "entropy", "business_logic", "path_anonymizer", "classifier"}
    assert cfg["bucket"]["remote"] == bare_remote.url
    # explicit flags win over the default; a tool the policy turns off is named on stderr
    out = m.json("setup", "bucket", "--disable-security-tool", "entropy", "--enable-security-tool", "trufflehog")
    assert out["security"]["tools"]["entropy"] is False and out["security"]["tools"]["trufflehog"] is True
    assert out["security"]["policy"] == "custom"
    done = m.run("setup", "bucket", "--policy", "off", "--json")
    assert "security.regex.enabled" in done.stderr


def test_setup_bucket_wizard_on_a_real_terminal(bare_remote, tmp_path):
    m = Machine(tmp_path, "m")
    m.json("auth", "login", "--token", "t")
    child = pexpect.spawn(sys.executable, ["-m", "opentraces.cli", "setup", "bucket"], env=m.env,
                          encoding="utf-8", timeout=30, dimensions=(40, 120))
    child.expect("bucket security policy")
    child.sendline("strict")
    child.expect("remote URL")
    child.sendline(bare_remote.url)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    cfg = orjson.loads((m.ot_home / "config.json").read_bytes())
    assert all(v["enabled"] for v in cfg["security"].values()) and len(cfg["security"]) == 7
    assert cfg["bucket"]["remote"] == bare_remote.url
    # custom: one question per tool
    child = pexpect.spawn(sys.executable, ["-m", "opentraces.cli", "setup", "bucket"], env=m.env,
                          encoding="utf-8", timeout=30)
    child.expect("bucket security policy")
    child.sendline("custom")
    answers = {"regex": "y", "entropy": "n", "trufflehog": "n", "privacy_filter": "n", "business_logic": "y",
               "path_anonymizer": "n", "classifier": "y"}
    for tool, ans in answers.items():
        child.expect(f"enable {tool}")
        child.sendline(ans)
    child.expect("remote URL")
    child.sendline("")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    cfg = orjson.loads((m.ot_home / "config.json").read_bytes())
    assert {t for t, v in cfg["security"].items() if v["enabled"]} == {"regex", "business_logic", "classifier"}
