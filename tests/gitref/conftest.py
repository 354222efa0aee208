"""Fixtures for gitref tests: an isolated Git environment and a `git` runner."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import gitref


@pytest.fixture(autouse=True)
def gitref_isolated_git_env(tmp_path_factory, monkeypatch):
    """Run every `git` child with an empty HOME and no inherited GIT_* variables."""
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith("GIT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("LC_ALL", "C")
    return home


def run_git(gitdir: Path, *args: str, input: bytes | None = None, env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run `git --git-dir=<gitdir> args...`, capturing bytes; raise on failure if check."""
    full_env = dict(os.environ, **(env or {}))
    done = subprocess.run(["git", f"--git-dir={gitdir}", *args], input=input,
                          capture_output=True, env=full_env, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} exited {done.returncode}: {done.stderr!r}")
    return done


@pytest.fixture
def git():
    """The `run_git` helper."""
    return run_git


@pytest.fixture
def bare(tmp_path):
    """A fresh bare repository opened with gitref."""
    return gitref.open_or_init_bare(tmp_path / "repo.git")
