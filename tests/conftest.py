"""Shared test rig: isolated HOME / OPENTRACES_HOME / GIT_* for every test,
paths to real session files, and an in-process CLI runner."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
pytest_plugins = ["serverrig"]  # the real Git servers (bare, git daemon, http-backend behind nginx, sshd)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
SHARED = REPO.parent / "shared" / "fixtures" / "real-sessions"
REAL_CLAUDE = SHARED / "claude" / "claude-linear-edit-real-session.jsonl"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith("GIT_") or key in ("OPENTRACES_HOME", "CLAUDE_CONFIG_DIR", "CODEX_HOME", "PI_CODING_AGENT_DIR"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("OPENTRACES_HOME", str(home / ".opentraces"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.invalid")
    return home


class Result:
    def __init__(self, exit_code: int, stdout: str, stderr: str):
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    @property
    def json(self):
        return orjson.loads(self.stdout)


@pytest.fixture
def cli():
    """Run ``opentraces ARGS...`` in-process; returns exit code, stdout, stderr."""
    from opentraces.cli.main import cli as group

    def invoke(*args: str, input: str | None = None) -> Result:
        runner = CliRunner()
        res = runner.invoke(group, [str(a) for a in args], input=input, catch_exceptions=False)
        return Result(res.exit_code, res.stdout, res.stderr)

    return invoke


def run_cli_process(*args: str, env: dict | None = None, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the CLI as a real process (for crash, concurrency and hook tests)."""
    return subprocess.run([sys.executable, "-m", "opentraces.cli", *map(str, args)], env=env or os.environ.copy(),
                          input=input, capture_output=True, timeout=timeout)


def tree_digest(root: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative path -> hex)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            rel = p.relative_to(root).as_posix()
            if any(rel == e or rel.startswith(e.rstrip("/") + "/") for e in exclude):
                continue
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=check)
