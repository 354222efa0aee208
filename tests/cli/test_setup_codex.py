"""``opentraces setup codex [--uninstall]`` and Codex's notify program (issue #10).

Real config files parsed back with ``tomllib``; the notify program run as a
real process the way Codex runs it (argv from the config, the JSON payload
as the last argument) against a real rollout under ``$CODEX_HOME/sessions``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from opentraces.bucket import Bucket
from opentraces.ids import trace_id_for

from bucketrig import FIXTURES, one_line_error

ROLLOUT = FIXTURES / "codex" / "rollout-2026-03-14T10-01-59-019cf0a1-5b2e-7c41-9d3a-2f6b8e4c1a01.jsonl"
THREAD = "019cf0a1-5b2e-7c41-9d3a-2f6b8e4c1a01"

USER_CONFIG = b"""# my Codex settings
model = "gpt-5.3-codex"   # keep this comment
approval_policy = "on-request"

[profiles.fast]
model = "gpt-5-mini"
notify = ["not", "top-level"]  # a profile's key, not ours to touch

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-server"]
"""


def config(home: Path) -> Path:
    return home / ".codex" / "config.toml"


def setup(cli, *args) -> dict:
    res = cli("setup", "codex", *args, "--json")
    assert res.exit_code == 0, (res.stdout, res.stderr)
    return res.json


def test_install_keeps_every_other_byte_and_uninstall_restores_them(isolated_env, cli):
    path = config(isolated_env)
    path.parent.mkdir(parents=True)
    path.write_bytes(USER_CONFIG)
    doc = setup(cli)
    assert doc["action"] == "installed" and doc["changed"]
    after = path.read_bytes()
    parsed = tomllib.loads(after.decode())
    assert parsed["notify"][-3:] == ["capture", "codex", "--notify"]
    assert {k: v for k, v in parsed.items() if k != "notify"} == tomllib.loads(USER_CONFIG.decode())
    assert after.endswith(USER_CONFIG)  # our line went on top; the user's bytes follow unchanged
    assert setup(cli)["action"] == "unchanged" and path.read_bytes() == after
    assert setup(cli, "--uninstall")["action"] == "restored"
    assert path.read_bytes() == USER_CONFIG
    assert setup(cli, "--uninstall")["action"] == "not-installed" and path.read_bytes() == USER_CONFIG


def test_no_config_is_created_then_deleted(isolated_env, cli):
    path = config(isolated_env)
    assert setup(cli)["action"] == "installed" and path.exists()
    assert setup(cli, "--uninstall")["action"] == "deleted" and not path.exists()


def test_the_users_notify_program_is_carried_and_given_back(isolated_env, cli):
    path = config(isolated_env)
    path.parent.mkdir(parents=True)
    original = b'notify = [\n  "notify-send",\n  "Codex",  # desktop\n]\n' + USER_CONFIG
    path.write_bytes(original)
    setup(cli)
    notify = tomllib.loads(path.read_text())["notify"]
    assert notify[notify.index("--chain") + 1] == json.dumps(["notify-send", "Codex"])
    assert setup(cli, "--uninstall")["action"] == "restored" and path.read_bytes() == original

    # the user edits the file meanwhile: only our program goes, theirs comes back, their edit stays
    setup(cli)
    path.write_bytes(path.read_bytes() + b'\n[history]\npersistence = "none"\n')
    assert setup(cli, "--uninstall")["action"] == "removed"
    parsed = tomllib.loads(path.read_text())
    assert parsed["notify"] == ["notify-send", "Codex"] and parsed["history"] == {"persistence": "none"}


def test_invalid_toml_is_refused_untouched(isolated_env, cli):
    path = config(isolated_env)
    path.parent.mkdir(parents=True)
    bad = b'model = "gpt-5\n[broken\n'
    path.write_bytes(bad)
    res = cli("setup", "codex")
    assert res.exit_code == 2  # refused, as setup claude-code refuses a settings file it cannot parse
    assert "not valid TOML" in one_line_error(res.stderr)
    assert path.read_bytes() == bad and not (isolated_env / ".opentraces" / "setup").exists()


def _notify(argv: list[str], payload: dict, env: dict) -> subprocess.CompletedProcess:
    # the console script of this interpreter may be absent in CI's layout: run the same module
    if not Path(argv[0]).exists() and argv[0] != "/usr/bin/env":
        argv = [sys.executable, "-m", "opentraces.cli", *argv[1:]]
    return subprocess.run([*argv, json.dumps(payload)], env=env, capture_output=True, timeout=120)


def test_notify_captures_the_turns_rollout_and_runs_the_users_program(isolated_env, cli, tmp_path):
    codex_home = isolated_env / "codex-home"
    day = codex_home / "sessions" / "2026" / "03" / "14"
    day.mkdir(parents=True)
    lines = ROLLOUT.read_bytes().splitlines(keepends=True)
    first_turn = next(i for i, ln in enumerate(lines) if b'"task_complete"' in ln) + 1
    rollout = day / ROLLOUT.name
    rollout.write_bytes(b"".join(lines[:first_turn]))
    seen = tmp_path / "user-program-saw.json"
    user_program = tmp_path / "user-notify.sh"
    user_program.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {seen}\n')
    user_program.chmod(0o755)
    cfg = codex_home / "config.toml"
    cfg.write_text(f'notify = ["{user_program}"]\n')
    env = dict(os.environ, CODEX_HOME=str(codex_home))
    os.environ["CODEX_HOME"] = str(codex_home)
    try:
        assert setup(cli)["action"] == "installed"
    finally:
        del os.environ["CODEX_HOME"]
    argv = tomllib.loads(cfg.read_text())["notify"]
    payload = {"type": "agent-turn-complete", "thread-id": THREAD, "turn-id": "t1", "cwd": "/workspace/demo-app",
               "input-messages": ["Add a slugify helper"], "last-assistant-message": "done"}

    p = _notify(argv, payload, env)
    assert p.returncode == 0 and p.stdout == b"", p.stderr
    bucket = Bucket.open(isolated_env / ".opentraces" / "bucket")
    row = bucket.find_trace(trace_id_for("codex-cli", THREAD))
    assert row is not None
    first = len(bucket.trace_events(row["project"], row["trace_id"]))
    for _ in range(50):  # the user's program runs detached
        if seen.exists():
            break
        time.sleep(0.1)
    assert json.loads(seen.read_text()) == payload

    rollout.write_bytes(b"".join(lines))  # the second turn
    p = _notify(argv, {**payload, "turn-id": "t2"}, env)
    assert p.returncode == 0
    bucket = Bucket.open(isolated_env / ".opentraces" / "bucket")
    assert len(bucket.trace_events(row["project"], row["trace_id"])) > first
    assert not (isolated_env / ".opentraces" / "logs" / "hook-errors.log").exists()


def test_notify_with_a_bad_payload_logs_one_line_and_exits_0(isolated_env, tmp_path):
    codex_home = isolated_env / "codex-home"
    (codex_home / "sessions").mkdir(parents=True)
    env = dict(os.environ, CODEX_HOME=str(codex_home))
    for payload in ("not json", json.dumps({"type": "agent-turn-complete"}),
                    json.dumps({"thread-id": "../../etc"}), json.dumps({"thread-id": "*"}),
                    json.dumps({"thread-id": "019d0000-0000-7000-8000-00000000dead"})):
        p = subprocess.run([sys.executable, "-m", "opentraces.cli", "capture", "codex", "--notify", payload],
                           env=env, capture_output=True, timeout=60)
        assert p.returncode == 0 and p.stdout == b""
    log = (isolated_env / ".opentraces" / "logs" / "hook-errors.log").read_text().splitlines()
    assert len(log) == 5
    assert "not valid JSON" in log[0] and "no thread-id" in log[1] and "not a safe path component" in log[2]
    assert "not a Codex thread id" in log[3] and "no rollout for thread" in log[4]
    assert not (isolated_env / ".opentraces" / "bucket" / "events").exists()
