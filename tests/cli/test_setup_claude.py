"""``opentraces setup claude-code [--uninstall] [--json]`` against real settings files.

Proves: other settings and hooks survive (parsed JSON minus our entries
equals the original), setup twice gives the same bytes, --uninstall gives
back the original bytes (or no file when there was none), an unparseable
file is refused untouched, and the command written into settings.json,
run the way Claude Code runs it (a shell, payload on stdin), captures.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import orjson
import pytest

from opentraces.ids import trace_id_for
from opentraces.setup import claude_settings as cs

from bucketrig import REAL_CLAUDE, copy_file, one_line_error

REAL_SESSION_ID = "164b9ad1-4c1b-4602-9102-5276951a1594"
EXISTING = {
    "$schema": "https://json.schemastore.org/claude-code-settings.json",
    "model": "claude-opus-4",
    "permissions": {"allow": ["Bash(git status)", "Read(~/.zshrc)"], "deny": ["WebFetch"], "defaultMode": "acceptEdits"},
    "env": {"DISABLE_TELEMETRY": "1", "HTTPS_PROXY": "http://proxy.local:3128"},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/check-bash.sh", "timeout": 10}]}],
        "Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "notify-send 'claude done'"},
                                           {"type": "command", "command": "other-logger --stop"}]}],
    },
    "statusLine": {"type": "command", "command": "~/.claude/statusline.sh"},
}
# odd formatting on purpose: a re-serialisation could not reproduce these bytes
EXISTING_BYTES = json.dumps(EXISTING, indent="\t", ensure_ascii=False).encode() + b"\r\n"


def without_ours(doc: dict) -> dict:
    return cs.remove_hooks(doc)[0]


def our_commands(doc: dict) -> dict[str, list[str]]:
    return {ev: [h["command"] for g in groups for h in g["hooks"] if cs.HOOK_MARKER in h.get("command", "")]
            for ev, groups in doc.get("hooks", {}).items()}


def setup(cli, *args, expect=0):
    res = cli(*args, "setup", "claude-code", "--json")
    assert res.exit_code == expect, (res.exit_code, res.stdout, res.stderr)
    return res


def uninstall(cli, *args, expect=0):
    res = cli(*args, "setup", "claude-code", "--uninstall", "--json")
    assert res.exit_code == expect, (res.exit_code, res.stdout, res.stderr)
    return res


@pytest.fixture
def settings(isolated_env):
    return isolated_env / ".claude" / "settings.json"


def test_setup_keeps_other_hooks_and_settings_is_idempotent_and_reversible(cli, settings):
    settings.parent.mkdir()
    settings.write_bytes(EXISTING_BYTES)

    doc = setup(cli).json
    assert set(doc) == {"status", "schema_version", "settings_path", "changed", "action"}
    assert doc["schema_version"] == "opentraces.setup.claude-code.v1"
    assert (doc["status"], doc["changed"], doc["action"]) == ("ok", True, "installed")
    assert doc["settings_path"] == str(settings)
    after = orjson.loads(settings.read_bytes())
    assert without_ours(after) == EXISTING
    ours = our_commands(after)
    assert len(ours["Stop"]) == 1 and len(ours["SessionEnd"]) == 1 and ours["PreToolUse"] == []
    assert ours["Stop"][0].endswith(" capture claude-code --hook")
    # the other tool's Stop group is unchanged and still first
    assert after["hooks"]["Stop"][0] == EXISTING["hooks"]["Stop"][0]

    once = settings.read_bytes()
    doc = setup(cli).json
    assert (doc["changed"], doc["action"]) == (False, "unchanged")
    assert settings.read_bytes() == once

    doc = uninstall(cli).json
    assert (doc["changed"], doc["action"]) == (True, "restored")
    assert settings.read_bytes() == EXISTING_BYTES


def test_setup_without_a_settings_file_then_uninstall_leaves_no_file(cli, settings):
    assert not settings.exists()
    doc = setup(cli).json
    assert doc["action"] == "installed" and settings.is_file()
    assert list(our_commands(orjson.loads(settings.read_bytes()))) == ["Stop", "SessionEnd"]
    doc = uninstall(cli).json
    assert (doc["changed"], doc["action"]) == (True, "deleted")
    assert not settings.exists()
    doc = uninstall(cli).json
    assert (doc["changed"], doc["action"]) == (False, "absent")


def test_claude_config_dir_is_respected(cli, settings, tmp_path, monkeypatch):
    config = tmp_path / "claude-config"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config))
    doc = setup(cli).json
    assert doc["settings_path"] == str(config / "settings.json")
    assert (config / "settings.json").is_file() and not settings.exists()


@pytest.mark.parametrize("data", [b'{"model": "opus",', b"[]", b'{"hooks": "none"}'])
def test_unusable_settings_file_refused_untouched(cli, settings, data):
    settings.parent.mkdir()
    settings.write_bytes(data)
    mtime = settings.stat().st_mtime_ns
    for args in (("setup", "claude-code"), ("setup", "claude-code", "--uninstall")):
        res = cli(*args)
        assert res.exit_code == 2, (res.stdout, res.stderr)
        assert res.stdout == ""
        assert str(settings) in one_line_error(res.stderr)
    res = cli("setup", "claude-code", "--json")
    assert res.exit_code == 2
    assert res.json["status"] == "error" and res.json["exit_code"] == 2
    assert settings.read_bytes() == data and settings.stat().st_mtime_ns == mtime


def _run_as_claude_would(command: str, payload: dict) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    proc = subprocess.run(["bash", "-c", command], input=orjson.dumps(payload), capture_output=True,
                          timeout=60, env=os.environ.copy())
    return proc, time.monotonic() - t0


def test_installed_command_captures_when_claude_runs_it(cli, settings, tmp_path, isolated_env):
    setup(cli)
    (command,) = our_commands(orjson.loads(settings.read_bytes()))["Stop"]
    session = copy_file(REAL_CLAUDE, tmp_path / "projects" / "-workspace-project" / f"{REAL_SESSION_ID}.jsonl")
    # Claude Code need not have OPENTRACES_HOME: the command pins the one setup ran with
    env_home = os.environ.pop("OPENTRACES_HOME")
    try:
        proc, _ = _run_as_claude_would(command, {
            "session_id": REAL_SESSION_ID, "transcript_path": str(session),
            "cwd": "/workspace/claude-real-edit-box/project", "hook_event_name": "Stop"})
    finally:
        os.environ["OPENTRACES_HOME"] = env_home
    assert proc.returncode == 0 and proc.stdout == b"", proc
    res = cli("trace", "list", "--json")
    assert [r["trace_id"] for r in res.json["traces"]] == [trace_id_for("claude-code", REAL_SESSION_ID)]


def test_explicit_bucket_is_pinned_in_the_command(cli, settings, tmp_path):
    bucket = tmp_path / "elsewhere bucket"
    setup(cli, "--bucket", bucket)
    (command,) = our_commands(orjson.loads(settings.read_bytes()))["SessionEnd"]
    assert "--bucket" in command
    proc, _ = _run_as_claude_would(command, {
        "session_id": REAL_SESSION_ID, "transcript_path": str(REAL_CLAUDE),
        "cwd": "/workspace/claude-real-edit-box/project", "hook_event_name": "SessionEnd", "reason": "other"})
    assert proc.returncode == 0 and proc.stdout == b""
    res = cli("--bucket", bucket, "trace", "list", "--json")
    assert res.json["total"] == 1
    assert cli("trace", "list", "--json").json["total"] == 0  # not the default bucket
