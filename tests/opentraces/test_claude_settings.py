"""Editing Claude Code's settings.json: ours added, everything else untouched, reversible.

Real files in a temp folder; no mocks. The rich fixture has odd formatting
(4-space indent, unicode, no trailing newline) so "restores the original
bytes" cannot pass by re-serialising.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
from pathlib import Path

import pytest

from opentraces.errors import RefusedError
from opentraces.setup import claude_settings as cs

CMD = "/opt/venv/bin/opentraces capture claude-code --hook"
CMD2 = "/other/venv/bin/opentraces capture claude-code --hook"

RICH = {
    "model": "opus",
    "permissions": {"allow": ["Bash(npm run test:*)"], "deny": ["Read(./.env)"]},
    "env": {"ANTHROPIC_LOG": "débug", "FOO": "1"},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "/usr/bin/audit-bash"}]}],
        "Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "other-tool notify --done", "timeout": 5}]}],
    },
    "includeCoAuthoredBy": False,
}
RICH_BYTES = json.dumps(RICH, indent=4, ensure_ascii=False).encode()  # no trailing newline


def ours(doc: dict) -> list[tuple[str, dict]]:
    return [(ev, h) for ev, groups in (doc.get("hooks") or {}).items() for g in groups for h in g.get("hooks", [])
            if cs.HOOK_MARKER in h.get("command", "")]


@pytest.fixture
def paths(tmp_path):
    return tmp_path / "claude" / "settings.json", tmp_path / "ot" / "setup"


def test_settings_path_follows_claude_config_dir(tmp_path):
    assert cs.settings_path(tmp_path, {}) == tmp_path / ".claude" / "settings.json"
    assert cs.settings_path(tmp_path, {"CLAUDE_CONFIG_DIR": "/x/cfg"}) == Path("/x/cfg/settings.json")
    assert cs.settings_path(tmp_path, {"CLAUDE_CONFIG_DIR": "~/cfg"}) == tmp_path / "cfg" / "settings.json"


def test_hook_command_prefers_the_interpreters_console_script(tmp_path):
    bindir = tmp_path / "venv bin"
    bindir.mkdir()
    script = bindir / "opentraces"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    cmd = cs.hook_command({}, executable=str(bindir / "python"), which=lambda _: "/usr/local/bin/opentraces")
    assert shlex.split(cmd) == [str(script), "capture", "claude-code", "--hook"]
    # no sibling script: PATH lookup, made absolute
    cmd = cs.hook_command({}, executable=str(tmp_path / "python"), which=lambda _: "/usr/local/bin/opentraces")
    assert shlex.split(cmd) == ["/usr/local/bin/opentraces", "capture", "claude-code", "--hook"]
    # nothing resolvable: python -m with the running interpreter
    cmd = cs.hook_command({}, executable="/py thon/bin/python3", which=lambda _: None)
    assert shlex.split(cmd) == ["/py thon/bin/python3", "-m", "opentraces.cli", "capture", "claude-code", "--hook"]


def test_hook_command_pins_opentraces_home_and_explicit_bucket(tmp_path):
    cmd = cs.hook_command({"OPENTRACES_HOME": str(tmp_path / "o t")}, bucket=tmp_path / "my bucket",
                          executable="/py/python", which=lambda _: None)
    argv = shlex.split(cmd)
    assert argv[0] == f"OPENTRACES_HOME={tmp_path / 'o t'}"
    assert argv[1:] == ["/py/python", "-m", "opentraces.cli", "--bucket", str(tmp_path / "my bucket"),
                        "capture", "claude-code", "--hook"]
    assert cs.HOOK_MARKER in cmd


def test_install_keeps_everything_else_and_is_idempotent(paths):
    settings, state = paths
    settings.parent.mkdir(parents=True)
    settings.write_bytes(RICH_BYTES)
    res = cs.install(settings, state, CMD)
    assert (res.changed, res.action) == (True, "installed")
    after = json.loads(settings.read_bytes())
    assert cs.remove_hooks(after)[0] == RICH
    assert sorted(ev for ev, _ in ours(after)) == ["SessionEnd", "Stop"]
    assert all(h == {"type": "command", "command": CMD, "timeout": cs.HOOK_TIMEOUT_S} for _, h in ours(after))
    # the other tool's Stop hook is still first, in its own group
    assert after["hooks"]["Stop"][0] == RICH["hooks"]["Stop"][0]
    first = settings.read_bytes()
    res = cs.install(settings, state, CMD)
    assert (res.changed, res.action) == (False, "unchanged")
    assert settings.read_bytes() == first


def test_uninstall_restores_original_bytes(paths):
    settings, state = paths
    settings.parent.mkdir(parents=True)
    settings.write_bytes(RICH_BYTES)
    cs.install(settings, state, CMD)
    cs.install(settings, state, CMD)
    res = cs.uninstall(settings, state)
    assert (res.changed, res.action) == (True, "restored")
    assert settings.read_bytes() == RICH_BYTES
    assert not list(state.iterdir())  # backup consumed
    res = cs.uninstall(settings, state)
    assert (res.changed, res.action) == (False, "not-installed")
    assert settings.read_bytes() == RICH_BYTES


def test_install_on_missing_file_creates_it_private_and_uninstall_deletes_it(paths):
    settings, state = paths
    res = cs.install(settings, state, CMD)
    assert res.action == "installed" and settings.is_file()
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    assert cs.normalize(json.loads(settings.read_bytes())) == {}
    res = cs.uninstall(settings, state)
    assert res.action == "deleted"
    assert not settings.exists()


def test_user_changes_after_setup_survive_uninstall(paths):
    settings, state = paths
    settings.parent.mkdir(parents=True)
    settings.write_bytes(RICH_BYTES)
    cs.install(settings, state, CMD)
    doc = json.loads(settings.read_bytes())
    doc["model"] = "sonnet"
    doc["hooks"]["Stop"].append({"matcher": "", "hooks": [{"type": "command", "command": "late-tool"}]})
    settings.write_text(json.dumps(doc))
    res = cs.uninstall(settings, state)
    assert res.action == "removed"
    left = json.loads(settings.read_bytes())
    assert ours(left) == []
    assert left["model"] == "sonnet"
    assert [g["hooks"][0]["command"] for g in left["hooks"]["Stop"]] == ["other-tool notify --done", "late-tool"]
    assert "SessionEnd" not in left["hooks"]  # it only ever held ours


def test_uninstall_created_file_keeps_user_settings_added_later(paths):
    settings, state = paths
    cs.install(settings, state, CMD)
    doc = json.loads(settings.read_bytes())
    doc["model"] = "opus"
    settings.write_text(json.dumps(doc))
    assert cs.uninstall(settings, state).action == "removed"
    assert json.loads(settings.read_bytes()) == {"model": "opus"}


def test_new_command_replaces_ours_and_uninstall_still_restores(paths):
    settings, state = paths
    settings.parent.mkdir(parents=True)
    settings.write_bytes(RICH_BYTES)
    cs.install(settings, state, CMD)
    res = cs.install(settings, state, CMD2)
    assert (res.changed, res.action) == (True, "updated")
    hooks = ours(json.loads(settings.read_bytes()))
    assert len(hooks) == 2 and {h["command"] for _, h in hooks} == {CMD2}
    assert cs.uninstall(settings, state).action == "restored"
    assert settings.read_bytes() == RICH_BYTES


def test_ours_inside_a_user_group_removed_alone(paths):
    settings, state = paths
    settings.parent.mkdir(parents=True)
    doc = {"hooks": {"Stop": [{"matcher": "", "hooks": [{"type": "command", "command": "keep-me"},
                                                        {"type": "command", "command": CMD}]}]}}
    settings.write_text(json.dumps(doc))  # ours put there by hand: no backup of a pre-setup state
    assert cs.install(settings, state, CMD).action == "updated"
    assert cs.uninstall(settings, state).action == "removed"
    assert json.loads(settings.read_bytes()) == {"hooks": {"Stop": [{"matcher": "", "hooks": [
        {"type": "command", "command": "keep-me"}]}]}}


def test_empty_event_lists_the_user_had_do_not_block_restore(paths):
    settings, state = paths
    settings.parent.mkdir(parents=True)
    original = b'{"hooks": {"Stop": [], "SessionEnd": []}, "model": "x"}\n'
    settings.write_bytes(original)
    cs.install(settings, state, CMD)
    assert len(ours(json.loads(settings.read_bytes()))) == 2
    assert cs.uninstall(settings, state).action == "restored"
    assert settings.read_bytes() == original


@pytest.mark.parametrize("data", [b"{not json", b"", b"[1, 2]", b'"text"', b'{"hooks": []}',
                                  b'{"hooks": {"Stop": {"matcher": ""}}}', b"\xff\xfe{}"])
def test_refuses_what_it_cannot_edit_and_leaves_it_untouched(paths, data):
    settings, state = paths
    settings.parent.mkdir(parents=True)
    settings.write_bytes(data)
    before = settings.stat()
    with pytest.raises(RefusedError):
        cs.install(settings, state, CMD)
    with pytest.raises(RefusedError):
        cs.uninstall(settings, state)
    assert settings.read_bytes() == data
    assert settings.stat().st_mtime_ns == before.st_mtime_ns
    assert not state.exists() or not list(state.iterdir())


def test_keeps_file_mode_and_writes_through_symlink(paths, tmp_path):
    settings, state = paths
    real = tmp_path / "dotfiles" / "claude-settings.json"
    real.parent.mkdir()
    real.write_bytes(RICH_BYTES)
    real.chmod(0o640)
    settings.parent.mkdir(parents=True)
    settings.symlink_to(real)
    cs.install(settings, state, CMD)
    assert settings.is_symlink() and len(ours(json.loads(real.read_bytes()))) == 2
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert cs.uninstall(settings, state).action == "restored"
    assert settings.is_symlink() and real.read_bytes() == RICH_BYTES
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert not [p for p in real.parent.iterdir() if p.name.endswith(".tmp")]


def test_backup_is_private(paths):
    settings, state = paths
    settings.parent.mkdir(parents=True)
    settings.write_bytes(RICH_BYTES)
    cs.install(settings, state, CMD)
    (backup,) = state.iterdir()
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600


def test_uninstall_with_lost_backup_removes_only_ours(paths):
    settings, state = paths
    settings.parent.mkdir(parents=True)
    settings.write_bytes(RICH_BYTES)
    cs.install(settings, state, CMD)
    for p in state.iterdir():
        os.unlink(p)
    assert cs.uninstall(settings, state).action == "removed"
    assert json.loads(settings.read_bytes()) == RICH
