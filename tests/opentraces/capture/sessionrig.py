"""Shared rig of the agent parser tests: fixture bytes, step roles, and a
scratch git repository to replay a session's diffs in with ``git apply``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from opentraces.capture.session import ParsedSession

ROOT = Path(__file__).resolve().parents[3]
SHARED = ROOT.parent / "shared" / "fixtures" / "real-sessions"

# src/demo_app/cli.py of the demo-app project, before the fixtures change it
CLI_PY = '''import argparse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="demo-app")
    parser.add_argument("title", help="title to print")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print(args.title)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
'''


def read(path: Path) -> bytes:
    if not path.exists():  # the shared real-session corpus lives beside the repository
        pytest.skip(f"missing fixture {path}")
    return path.read_bytes()


def roles(s: ParsedSession) -> list[str]:
    return [st.record["role"] for st in s.steps]


def jsonl(rows: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=check)


def make_repo(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for rel, text in files.items():
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return repo


def git_apply(repo: Path, diff: str, check_only: bool = False) -> None:
    patch = repo.parent / "change.diff"
    patch.write_text(diff)
    args = ["apply", "--check", str(patch)] if check_only else ["apply", str(patch)]
    res = git(repo, *args, check=False)
    assert res.returncode == 0, res.stderr + "\n" + diff
