"""Capture of Claude Code sessions through the CLI (real + authored sessions).

Proves: the --json contract, TraceRecord validity of every trace.json, the
real session's Edit becoming exactly one trail.patch whose diff applies with
``git apply``, short-id lookup, and ``ctx`` showing what the model saw.
"""

from __future__ import annotations

import gzip
import hashlib

import orjson

from opentraces.bucket import Bucket
import pytest
from opentraces_schema import TraceRecord

from opentraces.ids import trace_id_for

from bucketrig import (
    REAL_CLAUDE,
    capture,
    claude_sessions,
    git,
    one_line_error,
    rewrite_session,
    trace_dirs,
    verify_full,
)

ORIGINAL = 'def greet(name: str) -> str:\n    return f"hello, {name}"\n'
EDITED = ORIGINAL + '\n\ndef farewell(name: str) -> str:\n    return f"goodbye, {name}"\n'
REAL_SESSION_ID = "164b9ad1-4c1b-4602-9102-5276951a1594"
REAL_TRACE = trace_id_for("claude-code", REAL_SESSION_ID)
PROMPT = "add a farewell(name: str) helper to src/app.py"


@pytest.fixture
def real_bucket(tmp_path, cli):
    bucket = tmp_path / "bucket"
    doc = capture(cli, bucket, REAL_CLAUDE)
    assert [c["trace_id"] for c in doc["capture"]["captured"]] == [REAL_TRACE]
    return bucket


def _trace_dir(bucket, trace_id):
    dirs = [d for d in trace_dirs(bucket) if d.name == trace_id]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_every_claude_session_captures_and_validates(tmp_path, cli):
    sessions = claude_sessions()
    assert REAL_CLAUDE in sessions and len(sessions) >= 2
    bucket = tmp_path / "bucket"
    res = cli("--bucket", bucket, "capture", "claude-code", *sessions, "--json")
    assert res.exit_code == 0, res.stderr
    # exactly one JSON object on stdout, nothing else
    assert res.stdout.endswith("\n") and res.stdout.count("\n") == 1
    doc = orjson.loads(res.stdout)
    assert isinstance(doc, dict)
    assert doc["status"] == "ok"
    assert doc["schema_version"] == "opentraces.capture.v1"
    cap = doc["capture"]
    assert cap["skipped"] == []
    assert sorted(c["path"] for c in cap["captured"]) == sorted(str(p) for p in sessions)
    assert len(cap["batches"]) == 1 and cap["events"] > 0

    ids = {c["trace_id"] for c in cap["captured"]}
    dirs = trace_dirs(bucket)
    assert {d.name for d in dirs} == ids
    for d in dirs:
        raw = (d / "trace.json").read_bytes()
        record = orjson.loads(raw)
        model = TraceRecord.model_validate(record)
        assert model.trace_id == d.name
        assert record["content_hash"] == model.compute_content_hash()
        # pretty JSON: sorted keys, 2-space indent, trailing newline
        assert raw == orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
        for companion in ("trail.jsonl.gz", "context.jsonl.gz", "sources.jsonl.gz"):
            for line in gzip.decompress((d / companion).read_bytes()).splitlines():
                ev = orjson.loads(line)
                assert ev["trace_id"] == d.name and ev["project"] == d.parent.name

    manifest = Bucket(bucket).manifest()
    assert manifest["summary"]["trace_count"] == len(ids)
    assert {r["trace_id"] for r in manifest["traces"]} == ids
    v = verify_full(cli, bucket)
    assert v["exit"] == 0 and v["problems"] == []


def test_source_bytes_are_kept_as_a_raw_blob(real_bucket):
    data = REAL_CLAUDE.read_bytes()
    hexd = hashlib.sha256(data).hexdigest()
    d = _trace_dir(real_bucket, REAL_TRACE)
    blob = real_bucket / "blobs/v1" / d.parent.name / "raw" / hexd[:2] / f"{hexd}.blob"
    assert blob.read_bytes() == data
    sources = [orjson.loads(x) for x in gzip.decompress((d / "sources.jsonl.gz").read_bytes()).splitlines()]
    assert len(sources) == 1
    p = sources[0]["payload"]
    assert (sources[0]["kind"], p["start"], p["end"], p["size"], p["sha256"]) == (
        "source.captured", 0, len(data), len(data), f"sha256:{hexd}")
    assert p["chunks"] == [{"blob": f"sha256:{hexd}", "size": len(data)}]


def test_real_edit_is_one_patch_that_git_applies(real_bucket, tmp_path):
    d = _trace_dir(real_bucket, REAL_TRACE)
    project = d.parent.name
    trail = [orjson.loads(x) for x in gzip.decompress((d / "trail.jsonl.gz").read_bytes()).splitlines()]
    patches = [e for e in trail if e["kind"] == "trail.patch"]
    assert len(patches) == 1
    p = patches[0]["payload"]
    assert p["path"] == "src/app.py" and p["tool"] == "Edit"
    assert p["tool_call_id"] == "toolu_014tjmwAhVuwMdFdbCVpdHkC"
    # before/after are raw blobs holding the exact file contents
    for key, content in (("before", ORIGINAL), ("after", EDITED)):
        hexd = p[key][len("sha256:"):]
        assert (real_bucket / "blobs/v1" / project / "raw" / hexd[:2] / f"{hexd}.blob").read_bytes() == content.encode()

    history = sorted((d / "trace_history").iterdir())
    assert len(history) == 1
    assert history[0].read_text() == p["diff"]

    record = orjson.loads((d / "trace.json").read_bytes())
    assert [(x["file_path"], x["patch_id"]) for x in record["patches"]] == [("src/app.py", p["patch_id"])]
    assert record["patches"][0]["step_index"] == patches[0]["step"]

    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src/app.py").write_text(ORIGINAL)
    git("init", "-q", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "base", cwd=repo)
    git("apply", "--check", str(history[0]), cwd=repo)
    git("apply", str(history[0]), cwd=repo)
    assert (repo / "src/app.py").read_text() == EDITED
    # and it is reversible: the diff is exact, not fuzzy
    git("apply", "-R", str(history[0]), cwd=repo)
    assert (repo / "src/app.py").read_text() == ORIGINAL


def test_trace_get_by_short_prefix(real_bucket, cli):
    res = cli("--bucket", real_bucket, "trace", "get", REAL_TRACE[:8], "--json")
    assert res.exit_code == 0, res.stderr
    doc = res.json
    assert doc["schema_version"] == "opentraces.trace.get.v1"
    assert doc["trace"]["trace_id"] == REAL_TRACE
    assert doc["trace"]["session_id"] == REAL_SESSION_ID
    on_disk = orjson.loads((_trace_dir(real_bucket, REAL_TRACE) / "trace.json").read_bytes())
    assert doc["trace"] == on_disk
    text = cli("--bucket", real_bucket, "trace", "get", REAL_TRACE[:8])
    assert text.exit_code == 0 and REAL_TRACE in text.stdout and "src/app.py" in text.stdout
    listed = cli("--bucket", real_bucket, "trace", "list", "--json")
    assert listed.exit_code == 0 and [r["trace_id"] for r in listed.json["traces"]] == [REAL_TRACE]


def _colliding_session_ids():
    """Two session ids whose trace ids share their first hex character."""
    seen = {}
    for i in range(100):
        sid = f"00000000-0000-4000-8000-{i:012d}"
        tid = trace_id_for("claude-code", sid)
        if tid[0] in seen:
            return seen[tid[0]], sid, tid[0]
        seen[tid[0]] = sid
    raise AssertionError("no collision in 100 ids")


def test_ambiguous_and_unknown_prefix_exit_2(tmp_path, cli):
    a, b, first = _colliding_session_ids()
    bucket = tmp_path / "bucket"
    files = [rewrite_session(REAL_CLAUDE, tmp_path / f"{s}.jsonl", s) for s in (a, b)]
    capture(cli, bucket, *files)
    for cmd in (("trace", "get", first), ("ctx", first)):
        res = cli("--bucket", bucket, *cmd)
        assert res.exit_code == 2
        line = one_line_error(res.stderr)
        assert "ambiguous" in line
        assert res.stdout == ""
    unknown = "ffffffff" if not trace_id_for("claude-code", a).startswith("ff") else "eeeeeeee"
    for cmd in (("trace", "get", unknown), ("ctx", unknown)):
        res = cli("--bucket", bucket, *cmd)
        assert res.exit_code == 2
        line = one_line_error(res.stderr)
        assert unknown in line
    # --json: still exit 2, one JSON error object on stdout, one line on stderr
    res = cli("--bucket", bucket, "trace", "get", first, "--json")
    assert res.exit_code == 2
    assert res.json["status"] == "error" and res.json["exit_code"] == 2
    one_line_error(res.stderr)


def test_ctx_shows_what_the_model_saw(real_bucket, cli):
    record = orjson.loads((_trace_dir(real_bucket, REAL_TRACE) / "trace.json").read_bytes())
    steps = record["steps"]
    read_step = next(s["step_index"] for s in steps if any(c["tool_name"] == "Read" for c in s.get("tool_calls") or []))
    edit_step = next(s["step_index"] for s in steps if any(c["tool_name"] == "Edit" for c in s.get("tool_calls") or []))
    assert edit_step == read_step + 1

    res = cli("--bucket", real_bucket, "ctx", REAL_TRACE[:8], "--step", edit_step, "--json")
    assert res.exit_code == 0, res.stderr
    view = res.json["context"]
    assert view["step"] == edit_step and view["trace_id"] == REAL_TRACE
    assert view["node_id"] == steps[edit_step]["context_node_id"]
    dump = orjson.dumps(view["messages"]).decode()
    assert PROMPT in dump
    assert "def greet(name: str) -> str:" in dump  # the Read result the model saw
    kinds = [m["kind"] for m in view["messages"]]
    roles = [m["role"] for m in view["messages"]]
    assert roles[0] == "user" and PROMPT in orjson.dumps(view["messages"][0]["content"]).decode()
    assert kinds[-1] == "tool_result"
    assert "def greet" in orjson.dumps(view["messages"][-1]["content"]).decode()

    # the step of the Read itself has not seen its result yet
    before = cli("--bucket", real_bucket, "ctx", REAL_TRACE[:8], "--step", read_step, "--json").json["context"]
    assert PROMPT in orjson.dumps(before["messages"]).decode()
    assert "def greet(name: str) -> str:" not in orjson.dumps(before["messages"]).decode()
    assert len(before["messages"]) < len(view["messages"])
    # history is shared, not copied: the earlier view is a prefix of the later one
    assert view["messages"][: len(before["messages"])] == before["messages"]

    text = cli("--bucket", real_bucket, "ctx", REAL_TRACE[:8], "--step", edit_step)
    assert text.exit_code == 0
    assert PROMPT in text.stdout and "def greet(name: str) -> str:" in text.stdout

    missing = cli("--bucket", real_bucket, "ctx", REAL_TRACE[:8], "--step", 999)
    assert missing.exit_code == 2
    one_line_error(missing.stderr)
