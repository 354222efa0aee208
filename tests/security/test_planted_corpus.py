"""Planted secrets and PII in all three agents' sessions, captured under ``recommended`` (issue #9).

None of the planted values may appear in any bucket file (decompressed), in
any object of the bucket's ``.git``, or in any object of a remote after a push.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bucketrig import FIXTURES, SHARED, bucket_cmd, capture, one_line_error, verify_full  # noqa: E402
from corpus import plant, planted  # noqa: E402

USER = "malvina"
AGENTS = {"claude-code": ("claude", "claude"), "codex": ("codex", "codex_cli"), "pi": ("pi", "pi")}


def _sessions(own: str, shared: str) -> list[Path]:
    return sorted((FIXTURES / own).glob("*.jsonl")) + sorted((SHARED / shared).glob("*.jsonl"))


def all_bytes(root: Path) -> bytes:
    """Every file under ``root`` but .git, gzip members decompressed."""
    out = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for f in files:
            data = (Path(dirpath) / f).read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            out.append(data)
    return b"\n".join(out)


def git_objects(gitdir: Path) -> bytes:
    return subprocess.run(["git", f"--git-dir={gitdir}", "cat-file", "--batch-all-objects", "--batch"],
                          capture_output=True, check=True).stdout


def leaks(blob: bytes, values) -> list[str]:
    return [kind for kind, _, v in values if v.encode() in blob]


@pytest.fixture
def recommended(cli):
    assert cli("bucket", "security", "--policy", "recommended").exit_code == 0
    return cli


def planted_sessions(tmp_path: Path, values) -> dict[str, list[Path]]:
    lines = [line for _, line, _ in values]
    out: dict[str, list[Path]] = {}
    for agent, (own, shared) in AGENTS.items():
        dst = tmp_path / "sessions" / own
        dst.mkdir(parents=True)
        files = []
        for i, src in enumerate(_sessions(own, shared)):
            # rotate the list per file so every kind lands in every agent's files
            rot = lines[(i * 7) % len(lines):] + lines[:(i * 7) % len(lines)]
            p = dst / src.name
            p.write_bytes(plant(src.read_bytes(), rot, USER))
            files.append(p)
        out[agent] = files
        blob = b"".join(p.read_bytes() for p in files)
        missing = [k for k, _, v in values if v.encode() not in blob and v.encode("unicode_escape") not in blob]
        assert not missing, f"{agent}: corpus did not plant {missing}"
    return out


def test_no_planted_value_survives_capture_in_any_agent(recommended, tmp_path):
    cli = recommended
    values = planted(seed=11, user=USER)
    term = next(v for k, _, v in values if k == "business_term")
    assert cli("config", "set", "security.business_logic.terms", f"{term},Nightjar").exit_code == 0
    assert len({k for k, _, _ in values}) >= 25
    bucket = tmp_path / "bucket"
    sessions = planted_sessions(tmp_path, values)
    for agent, files in sessions.items():
        rep = capture(cli, bucket, *files, agent=agent)["capture"]
        assert len(rep["captured"]) == len(files), (agent, rep["skipped"])
    traces = bucket_cmd(cli, bucket, "status").json
    v = verify_full(cli, bucket)
    assert v["exit"] == 0, v["problems"]
    files_blob = all_bytes(bucket)
    assert b"[REDACTED:" in files_blob and f"/home/{USER}".encode() not in files_blob
    assert leaks(files_blob, values) == [], [_where(files_blob, v) for k, _, v in values if v.encode() in files_blob]
    assert leaks(git_objects(bucket / ".git"), values) == []
    # every trace says it was filtered, by which tools, and what was found (counts only)
    rows = cli("--bucket", bucket, "trace", "list", "--json").json["traces"]
    assert len(rows) == sum(len(f) for f in sessions.values())
    for row in rows:
        import orjson

        rec = orjson.loads((bucket / row["path"]).read_bytes())
        assert row["security"]["policy"] == "recommended" and row["security"]["version"]
        assert rec["security"]["scanned"] is True and rec["security"]["redactions_applied"] > 0, rec["security"]
        assert rec["metadata"]["security"]["policy"] == "recommended"
    assert traces


def test_ordinary_material_is_left_alone(recommended, tmp_path):
    """The project's own sources and git log -p, as tool output: few lines change (docs/SECURITY.md)."""
    import orjson

    from opentraces.security.tools import capture_filter

    repo = Path(__file__).resolve().parents[2]
    text = subprocess.run(["git", "log", "-p", "-n", "40", "--", "opentraces"], cwd=repo, capture_output=True).stdout.decode("utf-8", "replace")
    text += "".join(p.read_text() for p in sorted((repo / "opentraces").rglob("*.py")))
    lines = text.splitlines()
    rows = [orjson.dumps({"type": "tool_result", "content": "\n".join(lines[i:i + 40])}) for i in range(0, len(lines), 40)]
    f = capture_filter(Path(os.environ["OPENTRACES_HOME"]), {}, None)
    red = f.run(b"\n".join(rows) + b"\n")
    after = "\n".join(orjson.loads(r)["content"] for r in red.data.splitlines()).splitlines()
    changed = sum(1 for a, b in zip(lines, after) if a != b)
    assert len(after) == len(lines)
    assert changed / len(lines) < 0.01, (changed, len(lines))


def _where(blob: bytes, value: str, width: int = 80) -> str:
    i = blob.find(value.encode())
    return blob[max(0, i - width):i + len(value) + width].decode("utf-8", "replace")
