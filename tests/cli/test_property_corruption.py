"""Property tests (hypothesis, bounded): any single-byte change, truncation or deletion of any file
of the bucket, or of any pack, index or ref of its .git, is found by ``verify --full`` and named.

Local state (``.state/``) is not evidence and is regenerated, so it is out of scope; so are Git's own
files that hold no data (``config``, ``description``, ``hooks/``, ``info/``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bucketrig import capture_in_process, claude_sessions

from opentraces.bucket import Bucket
from opentraces.maintenance.verify import verify

CASES = {"n": 0}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("prop")
    bucket = root / "bucket"
    capture_in_process(bucket, claude_sessions()[:3])
    assert verify(Bucket(bucket), sample=None)["ok"]
    return bucket


def _candidates(bucket: Path) -> list[str]:
    out = []
    for p in sorted(bucket.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(bucket).as_posix()
        if rel.startswith(".state/"):
            continue
        if rel.startswith(".git/") and not (rel.startswith((".git/objects/pack/", ".git/refs/"))
                                            or rel in (".git/packed-refs", ".git/HEAD")):
            continue
        out.append(rel)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_change_is_found_and_named(pristine, tmp_path_factory, data):
    files = _candidates(pristine)
    rel = data.draw(st.sampled_from(files), label="file")
    size = (pristine / rel).stat().st_size
    how = data.draw(st.sampled_from(["flip", "truncate", "delete"] if size else ["delete"]), label="how")
    work = tmp_path_factory.mktemp("case") / "bucket"
    shutil.copytree(pristine, work, symlinks=True)
    target = work / rel
    if how == "delete":
        target.unlink()
    elif how == "truncate":
        # a ref file without its final newline is the same ref to Git: cut into the id
        top = min(size - 1, 39) if rel.startswith(".git/refs/") else size - 1
        cut = data.draw(st.integers(0, top), label="length")
        target.write_bytes(target.read_bytes()[:cut])
    else:
        at = data.draw(st.integers(0, size - 1), label="offset")
        raw = bytearray(target.read_bytes())
        raw[at] ^= data.draw(st.integers(1, 255), label="xor")
        target.write_bytes(bytes(raw))
    res = verify(Bucket(work), sample=None)
    CASES["n"] += 1
    assert not res["ok"], (rel, how)
    paths = [p["path"] for p in res["problems"]]
    if rel.startswith(".git/"):
        assert any(p["kind"].startswith("mirror_") for p in res["problems"]), (rel, how, res["problems"][:3])
    else:
        assert any(rel == p or rel.endswith("/" + p) or p.endswith(rel) or p.startswith(rel.rsplit("/", 1)[0])
                   for p in paths), (rel, how, paths[:5])
    shutil.rmtree(work.parent)


AGENT_FIXTURES = {
    "claude_code": sorted((Path(__file__).resolve().parents[2] / "fixtures" / "claude").glob("*.jsonl"))[:1],
    "codex": sorted((Path(__file__).resolve().parents[2] / "fixtures" / "codex").glob("*.jsonl"))[:1],
    "pi": sorted((Path(__file__).resolve().parents[2] / "fixtures" / "pi").glob("*.jsonl"))[:1],
}


@settings(max_examples=150, deadline=None)
@given(agent=st.sampled_from(sorted(AGENT_FIXTURES)), data=st.data())
def test_fuzzed_sessions_give_a_parse_or_a_documented_error(agent, data):
    """Bytes flipped, lines cut, duplicated or nested deep: a parse, or SessionParseError; never a crash."""
    import importlib

    from opentraces.capture.session import SessionParseError

    mod = importlib.import_module(f"opentraces.capture.{agent}")
    src = AGENT_FIXTURES[agent][0].read_bytes()
    lines = src.split(b"\n")
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        op = data.draw(st.sampled_from(["flip", "cut", "dup", "deep", "junk"]), label="op")
        i = data.draw(st.integers(0, max(0, len(lines) - 1)), label="line")
        if op == "flip" and lines[i]:
            j = data.draw(st.integers(0, len(lines[i]) - 1), label="at")
            b = bytearray(lines[i])
            b[j] ^= data.draw(st.integers(1, 255), label="xor")
            lines[i] = bytes(b)
        elif op == "cut":
            lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])), label="len")]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "deep":
            lines.insert(i, b'{"type":"x","v":' + b"[" * 3000 + b"]" * 3000 + b"}")
        else:
            lines.insert(i, data.draw(st.binary(max_size=200), label="junk"))
    blob = b"\n".join(lines)
    try:
        parsed = mod.parse(blob, AGENT_FIXTURES[agent][0].name)
    except SessionParseError:
        return
    assert parsed.session_id
