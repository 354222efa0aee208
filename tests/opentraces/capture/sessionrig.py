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


def check_step_contract(s: ParsedSession) -> None:
    """What every parser owes ``emit``: schema Steps in order, revs, context leaves, a tree of messages."""
    from opentraces_schema import Step

    uuids = {m.uuid for m in s.messages}
    for i, st in enumerate(s.steps):
        assert st.index == i == st.record["step_index"]
        assert "context_node_id" not in st.record
        Step.model_validate(st.record)
        assert st.time == st.record["timestamp"]
        assert st.rev >= 1
        if st.record["role"] == "agent":
            assert st.context_leaf in uuids
        else:
            assert st.context_leaf is None
    for tc in (tc for st in s.steps for tc in st.record["tool_calls"]):
        assert isinstance(tc["input"], dict)
    for m in s.messages:
        assert m.parent is None or m.parent in uuids


def check_append_stable(parse, data: bytes, name: str, tear: int) -> None:
    """Parsing any prefix (whole lines, or a last line torn ``tear`` bytes
    short) never changes an earlier step unless its rev grew, and messages
    and patches only grow."""
    full = parse(data, name)
    ends = [i + 1 for i, b in enumerate(data) if b == 0x0A]
    for cut in sorted(set(ends + [e - tear for e in ends[1:]])):
        part = parse(data[:cut], name)
        assert len(part.steps) <= len(full.steps)
        for a in part.steps:
            b = full.steps[a.index]
            assert b.record["role"] == a.record["role"]
            assert b.rev >= a.rev, (cut, a.index)
            assert b.context_leaf == a.context_leaf
            if b.rev == a.rev:
                assert b.record == a.record, (cut, a.index)
        assert full.messages[: len(part.messages)] == part.messages
        assert full.patches[: len(part.patches)] == part.patches
