"""Helpers for the sync tests: machines (a HOME and a bucket each, the CLI as a real process)
and a project repository at fixed dates."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))

from bucketrig import REAL_CLAUDE, commit, git, rewrite_session  # noqa: E402

ORIGINAL = 'def greet(name: str) -> str:\n    return f"hello, {name}"\n'
EDITED = ORIGINAL + '\n\ndef farewell(name: str) -> str:\n    return f"goodbye, {name}"\n'


def make_project(folder: Path) -> Path:
    repo = folder / "project"
    repo.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=repo)
    commit(repo, "greet", "2026-06-12T05:00:00Z", {"src/app.py": ORIGINAL})
    commit(repo, "add farewell", "2026-06-12T15:23:17Z", {"src/app.py": EDITED})
    return repo


def session(dst: Path, n: int, hour: int) -> Path:
    """The real session as session ``n`` (its own id), its timestamps moved to ``hour``."""
    rewrite_session(REAL_CLAUDE, dst, str(uuid.UUID(int=0x5C0000 + n)))
    dst.write_bytes(dst.read_bytes().replace(b"2026-06-12T15:", b"2026-06-12T%02d:" % hour))
    return dst


class Machine:
    """One workstation: its own HOME, OPENTRACES_HOME and default bucket."""

    def __init__(self, root: Path, name: str):
        self.name = name
        self.home = root / name
        self.ot_home = self.home / ".opentraces"
        self.bucket = self.ot_home / "bucket"
        self.home.mkdir(parents=True, exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if k not in ("OPENTRACES_TOKEN", "OPENTRACES_USERNAME")}
        self.env.update(HOME=str(self.home), OPENTRACES_HOME=str(self.ot_home))

    def run(self, *args, expect: int | None = 0, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "opentraces.cli", *map(str, args)], env=env or self.env,
                              capture_output=True, text=True, timeout=timeout)
        if expect is not None:
            assert done.returncode == expect, (self.name, args, done.returncode, done.stdout[-2000:], done.stderr[-2000:])
        return done

    def json(self, *args, expect: int | None = 0, **kw) -> dict:
        done = self.run(*args, "--json", expect=expect, **kw)
        return orjson.loads(done.stdout)

    def connect(self, remote, policy: str = "off") -> None:
        """Log in and set the remote. The sync tests capture before and after connecting and test
        transport, so they pin the policy to ``off`` (``setup bucket`` alone applies ``recommended``,
        whose push gate would hold traces captured before it: tests/security covers that)."""
        self.json("auth", "login", *remote.login_args())
        self.json("setup", "bucket", "--remote", remote.url, "--policy", policy)

    def refs(self) -> dict[str, str]:
        out = subprocess.run(["git", f"--git-dir={self.bucket / '.git'}", "for-each-ref",
                              "--format=%(refname) %(objectname)"], capture_output=True, text=True, check=True).stdout
        return dict(line.split(" ", 1) for line in out.splitlines())

    def trace_ids(self) -> set[str]:
        return {r["trace_id"] for r in self.json("trace", "list", "--limit", "100000")["traces"]}


def remote_refs(remote) -> dict[str, str]:
    out = subprocess.run(["git", "ls-remote", remote.url], capture_output=True, text=True, env=remote.git_env(),
                         check=True).stdout
    return {name: oid for oid, name in (line.split("\t") for line in out.splitlines()) if name.startswith("refs/")}


def fsck_ok(gitdir: Path) -> None:
    done = subprocess.run(["git", f"--git-dir={gitdir}", "fsck", "--full", "--strict"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
