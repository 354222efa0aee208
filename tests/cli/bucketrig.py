"""Helpers shared by the bucket CLI tests (issue #2).

The root ``tests/conftest.py`` is loaded here by path under a private name,
because ``from conftest import ...`` resolves to whichever conftest pytest
imported last.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import orjson

_spec = importlib.util.spec_from_file_location("_opentraces_root_conftest", Path(__file__).resolve().parent.parent / "conftest.py")
_root = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("_opentraces_root_conftest", _root)
_spec.loader.exec_module(_root)

tree_digest = _root.tree_digest
run_cli_process = _root.run_cli_process
git = _root.git
REPO: Path = _root.REPO
FIXTURES: Path = _root.FIXTURES
REAL_CLAUDE: Path = _root.REAL_CLAUDE
SHARED: Path = _root.SHARED

BATCHES = "events/v1/batches"
INDEX = "events/v1/index.json"


def claude_sessions() -> list[Path]:
    """Every Claude Code session file we test against (real + authored)."""
    shared = sorted((SHARED / "claude").glob("*.jsonl"))
    authored = sorted((FIXTURES / "claude").glob("*.jsonl"))
    return shared + authored


def one_line_error(stderr: str) -> str:
    """Assert stderr is exactly one non-empty line with no traceback; return it."""
    lines = [ln for ln in stderr.splitlines()]
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {stderr!r}"
    assert "Traceback" not in stderr
    assert lines[0].strip()
    # a deliberate error, not the CLI's catch-all for a bug
    assert not lines[0].startswith("error: unexpected "), lines[0]
    return lines[0]


def capture(cli, bucket: Path, *paths, agent: str = "claude-code", expect: int = 0) -> dict:
    res = cli("--bucket", bucket, "capture", agent, *paths, "--json")
    assert res.exit_code == expect, (res.exit_code, res.stdout, res.stderr)
    return res.json


def bucket_cmd(cli, bucket: Path, *args, expect: int | None = 0):
    res = cli("--bucket", bucket, "bucket", *args, "--json")
    if expect is not None:
        assert res.exit_code == expect, (res.exit_code, res.stdout, res.stderr)
    return res


def verify_full(cli, bucket: Path) -> dict:
    res = bucket_cmd(cli, bucket, "verify", "--full", expect=None)
    doc = res.json
    assert doc["schema_version"] == "opentraces.bucket.verify.v1"
    return {"exit": res.exit_code, **doc["verify"]}


def file_problems(v: dict) -> list[dict]:
    """verify problems about bucket files (the Git mirror's refs/ findings left out)."""
    return [p for p in v["problems"] if not p["kind"].startswith("mirror_")]


def digest_of(root: Path, *, state: bool = False) -> dict[str, str]:
    """tree_digest of a bucket; ``.state`` (local, never synced) only if asked."""
    return tree_digest(root, exclude=() if state else (".state",))


def canonical_digest(root: Path) -> dict[str, str]:
    """The synced, machine-neutral parts: traces/ and blobs/."""
    out = {}
    for sub in ("traces", "blobs"):
        for rel, h in tree_digest(root / sub).items():
            out[f"{sub}/{rel}"] = h
    return out


def batch_files(root: Path) -> list[Path]:
    folder = root / BATCHES
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(".jsonl.gz") and not p.name.startswith("."))


def trace_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in (root / "traces").glob("v1/*/*/trace.json"))


def rewrite_session(src: Path, dst: Path, session_id: str, *, n_lines: int | None = None) -> Path:
    """Copy a Claude Code session with every ``sessionId`` replaced."""
    lines = src.read_bytes().splitlines(keepends=True)
    if n_lines is not None:
        lines = lines[:n_lines]
    out = []
    for line in lines:
        obj = orjson.loads(line)
        if isinstance(obj, dict) and "sessionId" in obj:
            obj["sessionId"] = session_id
        out.append(orjson.dumps(obj) + b"\n")
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(b"".join(out))
    return dst


def gz_lines(data: bytes) -> list[bytes]:
    return gzip.decompress(data).split(b"\n")


def copy_file(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def set_mtime(path: Path, seconds: int) -> None:
    os.utime(path, (seconds, seconds))


def commit(repo: Path, message: str, when: str, files: dict[str, str]) -> str:
    """Write ``files`` into ``repo`` and commit them at ``when`` (author and committer date)."""
    import subprocess

    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
        git("add", rel, cwd=repo)
    env = dict(os.environ, GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo, env=env, check=True, capture_output=True)
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def capture_in_process(bucket: Path, paths) -> None:
    """Build a bucket with the library (no CLI), for tests that only need one."""
    from opentraces.bucket import Bucket
    from opentraces.capture import capture_paths, claude_code

    rep = capture_paths(Bucket(bucket), claude_code, list(paths))
    assert rep.captured and not rep.skipped, rep.skipped
