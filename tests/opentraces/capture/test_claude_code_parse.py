"""Claude Code transcript parser: real session, authored fixtures, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from opentraces_schema import Step

from opentraces.capture import claude_code
from opentraces.capture.session import ParsedSession, SessionParseError

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "fixtures" / "claude"
REAL = REPO.parent / "shared" / "fixtures" / "real-sessions" / "claude" / "claude-linear-edit-real-session.jsonl"

REAL_SID = "164b9ad1-4c1b-4602-9102-5276951a1594"
REAL_ROOT = "/workspace/claude-real-edit-box/project"
FAREWELL = 'def farewell(name: str) -> str:\n    return f"goodbye, {name}"'


def load(path: Path) -> tuple[bytes, ParsedSession]:
    data = path.read_bytes()
    return data, claude_code.parse(data, path.name)


def rows_of(data: bytes) -> list[dict]:
    out = []
    for line in data.split(b"\n"):
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def check_steps(session: ParsedSession) -> None:
    """Every record is a valid Step, already in normalized form, indexed 0..n-1."""
    for i, step in enumerate(session.steps):
        assert step.index == i
        assert step.record["step_index"] == i
        assert "context_node_id" not in step.record
        model = Step.model_validate(step.record)
        assert model.model_dump(mode="json", exclude={"context_node_id"}) == step.record
        orjson.dumps(step.record)  # JSON-able
        assert step.time.endswith("Z")
        if step.record["role"] == "user":
            assert step.context_leaf is None
        else:
            assert step.context_leaf is not None


def check_tree(session: ParsedSession) -> None:
    """Parents name earlier messages; every agent step's leaf is a message."""
    seen: set[str] = set()
    for msg in session.messages:
        assert msg.uuid not in seen
        assert msg.parent is None or msg.parent in seen
        seen.add(msg.uuid)
        orjson.dumps(msg.content)
    for step in session.steps:
        if step.context_leaf is not None:
            assert step.context_leaf in seen


def chain(session: ParsedSession, leaf: str) -> list[str]:
    by_uuid = {m.uuid: m for m in session.messages}
    out = []
    cur: str | None = leaf
    while cur is not None:
        out.append(cur)
        cur = by_uuid[cur].parent
    return out


# --------------------------------------------------------------------------
# the real session


@pytest.fixture(scope="module")
def real() -> tuple[bytes, ParsedSession]:
    return load(REAL)


def test_real_session_header(real):
    _, s = real
    assert s.agent == claude_code.AGENT == "claude-code"
    assert s.session_id == REAL_SID
    assert s.model == "claude-opus-4-8"
    assert s.agent_version == "2.1.175"
    assert s.git_branch == "main"
    assert s.cwd == REAL_ROOT
    assert s.git_commit == "45088647c59203b10622fe3874ee8611d1e3d5ac"
    assert s.task.startswith("In this repo, add a farewell(name: str) helper to src/app.py")
    assert s.started_at == "2026-06-12T15:22:55.596Z"
    assert s.ended_at == "2026-06-12T15:23:20.962991Z"  # the Stop hook row
    assert s.records == 21 and s.skipped == []
    assert s.metadata["source_format"] == "claude-code-jsonl"
    assert s.metadata["hook_rows"] == 9
    assert s.metadata["skipped_lines"] == 0
    assert s.success is None and s.terminal_state is None


def test_real_session_steps(real):
    _, s = real
    check_steps(s)
    roles = [st.record["role"] for st in s.steps]
    assert roles == ["user", "agent", "agent", "agent", "agent", "agent"]
    tools = [[c["tool_name"] for c in st.record["tool_calls"]] for st in s.steps]
    assert tools == [[], ["Read"], ["Edit"], ["Bash"], ["Bash"], []]
    # every tool call got its result as an observation on the same step
    for st in s.steps:
        calls = [c["tool_call_id"] for c in st.record["tool_calls"]]
        assert [o["source_call_id"] for o in st.record["observations"]] == calls
    bash = s.steps[3].record["observations"][0]
    assert bash["content"] == "syntax OK" and bash["error"] is None
    assert s.steps[5].record["content"].startswith("Done. Here's what I did:")
    assert all(st.record["call_type"] == "main" for st in s.steps)
    assert {st.record["model"] for st in s.steps[1:]} == {"claude-opus-4-8"}
    # the thinking blocks are empty in this capture (signatures stripped)
    assert all(st.record["reasoning_content"] is None for st in s.steps)
    # rev = assistant rows of the message id + tool-result rows attached
    assert [st.rev for st in s.steps] == [1, 3, 2, 2, 3, 1]
    assert s.steps[1].time == "2026-06-12T15:23:00.009Z"  # first row of msg_01W55n...


def test_real_session_tokens_counted_once_per_message(real):
    data, s = real
    per_message: dict[str, dict] = {}
    per_row_output = 0
    for row in rows_of(data):
        if row.get("type") == "assistant":
            msg = row["message"]
            per_message[msg["id"]] = msg["usage"]
            per_row_output += msg["usage"]["output_tokens"]
    assert len(per_message) == 5

    def total(field: str, ours: str) -> tuple[int, int]:
        want = sum(u[field] for u in per_message.values())
        got = sum(st.record["token_usage"][ours] for st in s.steps)
        return want, got

    for field, ours in [
        ("input_tokens", "input_tokens"),
        ("output_tokens", "output_tokens"),
        ("cache_read_input_tokens", "cache_read_tokens"),
        ("cache_creation_input_tokens", "cache_write_tokens"),
    ]:
        want, got = total(field, ours)
        assert got == want, field
    # hand sums from the file
    assert sum(st.record["token_usage"]["input_tokens"] for st in s.steps) == 3952
    assert sum(st.record["token_usage"]["output_tokens"] for st in s.steps) == 1044
    assert sum(st.record["token_usage"]["cache_read_tokens"] for st in s.steps) == 196455
    assert sum(st.record["token_usage"]["cache_write_tokens"] for st in s.steps) == 31362
    assert per_row_output == 1044 + 121 + 347  # two messages span two rows each


def test_real_session_patch(real):
    data, s = real
    assert len(s.patches) == 1
    p = s.patches[0]
    assert p.path == REAL_ROOT + "/src/app.py"
    assert p.tool_name == "Edit" and p.seq == 0 and p.step == 2
    assert p.tool_call_id == "toolu_014tjmwAhVuwMdFdbCVpdHkC"
    assert p.operation == "modify" and p.before_known and p.after_known and p.hunk_diff is None
    assert p.time == "2026-06-12T15:23:06.255Z"  # the tool result's row
    edit = next(
        b["input"]
        for r in rows_of(data)
        if r.get("type") == "assistant"
        for b in r["message"]["content"]
        if b.get("type") == "tool_use" and b["name"] == "Edit"
    )
    before = p.before.decode()
    assert before == 'def greet(name: str) -> str:\n    return f"hello, {name}"\n'
    assert edit["new_string"].endswith(FAREWELL)
    assert p.after.decode() == before.replace(edit["old_string"], edit["new_string"], 1)
    assert p.after.decode() == before[:-1] + "\n\n\n" + FAREWELL + "\n"


def test_real_session_context_tree(real):
    _, s = real
    check_tree(s)
    assert len(s.messages) == 12  # 5 user rows + 7 assistant rows; hook rows are not messages
    assert [m.kind for m in s.messages].count("tool_result") == 4
    assert [m.kind for m in s.messages].count("reasoning") == 2
    leaves = [st.context_leaf for st in s.steps]
    assert leaves == [
        None,
        # the first call's parent row was dropped from the capture: the leaf
        # falls back to the prompt, the last message before it
        "634aa63b-82a6-47be-bd7a-fdce0392daa3",
        "230d4a82-77e8-4d1d-ace9-afb501b0e800",  # Read result
        "c7dedfdb-e630-409c-88c5-8aedd0236257",  # Edit result
        "5ffa397a-3722-40b3-af79-1bd5c2843e64",  # first Bash result
        "dd7ebacf-3f66-4e75-a7fd-7e69e65c9396",  # commit result
    ]
    # the last call saw the whole linear conversation back to the prompt
    seen = chain(s, leaves[-1])
    assert seen[-1] == "634aa63b-82a6-47be-bd7a-fdce0392daa3"
    assert len(seen) == 11
    # each call's view extends the previous call's view
    for a, b in zip(leaves[1:], leaves[2:]):
        assert set(chain(s, a)) < set(chain(s, b))


def test_metadata_has_no_host_paths(real):
    _, s = real
    text = orjson.dumps(s.metadata).decode()
    assert "/workspace" not in text and "/home" not in text and "/root" not in text


# --------------------------------------------------------------------------
# authored fixtures

EXPECTED = {
    # file: (steps, patches, skipped lines)
    "claude-multiturn-edit.jsonl": (10, 3, []),
    "claude-sidechain-compact.jsonl": (9, 1, []),
    "claude-bad-lines.jsonl": (4, 1, [(3, "invalid JSON"), (5, "not UTF-8"), (7, "not a JSON object")]),
    "claude-subagent-file.jsonl": (3, 0, []),
}


def test_fixture_set_is_what_we_expect():
    assert sorted(p.name for p in FIXTURES.glob("*.jsonl")) == sorted(EXPECTED)
    for p in FIXTURES.glob("*.jsonl"):
        assert p.stat().st_size < 21 * 1024


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_counts(name):
    _, s = load(FIXTURES / name)
    steps, patches, skipped = EXPECTED[name]
    assert len(s.steps) == steps
    assert len(s.patches) == patches
    assert s.skipped == skipped
    assert s.metadata["skipped_lines"] == len(skipped)
    assert [p.seq for p in s.patches] == list(range(patches))
    check_steps(s)
    check_tree(s)
    assert s.cwd == "/workspace/demo-app"
    assert s.started_at.startswith("2026-") and s.ended_at >= s.started_at


def test_fixture_session_ids_are_distinct():
    ids = [load(FIXTURES / n)[1].session_id for n in sorted(EXPECTED)]
    assert len(set(ids)) == len(ids)


def test_multiturn_fixture():
    data, s = load(FIXTURES / "claude-multiturn-edit.jsonl")
    recs = [st.record for st in s.steps]
    assert [r["role"] for r in recs] == ["user"] + ["agent"] * 5 + ["user"] + ["agent"] * 3
    assert recs[0]["content"].startswith("Move the JSON loading")
    assert recs[6]["content"].startswith("Keep the merge.")  # text-block prompt
    assert s.task == recs[0]["content"]
    assert recs[1]["reasoning_content"].startswith("I should read src/app.py")
    assert recs[7]["reasoning_content"] is not None
    assert [[c["tool_name"] for c in r["tool_calls"]] for r in recs] == [
        [], ["Read"], ["Write"], ["MultiEdit"], ["Bash"], [], [], ["Edit"], ["Bash"], [],
    ]
    failed = recs[4]["observations"][0]
    assert failed["error"] == "tool_error"
    assert failed["content"].startswith("Exit code 1")
    assert failed["output_summary"] == failed["content"][:200]
    assert recs[8]["observations"][0]["error"] is None
    assert recs[4]["tool_calls"][0]["duration_ms"] == 1122
    assert s.git_commit == "3f9a1c07b2d4e5f60718293a4b5c6d7e8f901a2b"
    assert s.metadata["hook_rows"] == 1

    create, multi, edit = s.patches
    write_input = next(
        b["input"]
        for r in rows_of(data)
        if r.get("type") == "assistant"
        for b in r["message"]["content"]
        if b.get("type") == "tool_use" and b["name"] == "Write"
    )
    assert create.tool_name == "Write" and create.operation == "create"
    assert create.path == "/workspace/demo-app/src/config.py"
    assert create.before is None and create.before_known
    assert create.after == write_input["content"].encode()
    assert create.step == 2

    original = (
        'import json\n\n\ndef main(path):\n    with open(path) as fh:\n        data = json.load(fh)\n'
        '    print("loaded", data)\n    return data\n'
    )
    after_multi = (
        'from config import load_config\n\n\ndef main(path):\n    data = load_config(path)\n'
        '    print("loaded", data)\n    return data\n'
    )
    assert multi.tool_name == "MultiEdit" and multi.step == 3
    assert multi.before == original.encode()  # from toolUseResult.originalFileContents
    assert multi.after == after_multi.encode()
    assert edit.tool_name == "Edit" and edit.step == 7
    assert edit.before == after_multi.encode()
    assert edit.after == after_multi.replace("data", "config").encode()  # replace_all
    assert [p.path for p in s.patches if p.tool_name != "Write"] == ["/workspace/demo-app/src/app.py"] * 2
    # no patch for the Bash calls, nor for Read
    assert {p.tool_name for p in s.patches} == {"Write", "MultiEdit", "Edit"}


def test_sidechain_and_compaction_fixture():
    _, s = load(FIXTURES / "claude-sidechain-compact.jsonl")
    recs = [st.record for st in s.steps]
    assert [r["call_type"] for r in recs] == ["main", "main", "subagent", "subagent", "subagent", "main", "main", "main", "main"]
    assert [r["agent_role"] for r in recs] == ["main"] * 2 + ["subagent"] * 3 + ["main"] * 4
    assert [r["parent_step"] for r in recs[2:5]] == [1, 1, 1]  # the step that called Task
    assert recs[1]["tool_calls"][0]["tool_name"] == "Task"
    assert recs[1]["observations"][0]["content"].startswith("Retry logic is in src/net.py")
    assert recs[3]["model"] == recs[4]["model"] == "claude-haiku-4-6"
    assert s.model == "claude-opus-4-8"
    assert s.task == "Find where the retry logic lives and explain it briefly."
    # the sub-agent chain is its own root in the context tree
    side = [m for m in s.messages if m.sidechain]
    assert len(side) == 4 and side[0].parent is None
    assert s.steps[3].context_leaf == side[0].uuid
    # compaction: boundary (root) -> compact summary -> caveat (meta) -> new prompt
    kinds = [(m.role, m.kind) for m in s.messages]
    assert ("system", "meta") in kinds and ("user", "compaction_summary") in kinds
    boundary = next(m for m in s.messages if m.role == "system")
    summary = next(m for m in s.messages if m.kind == "compaction_summary")
    assert boundary.parent is None
    assert summary.parent == boundary.uuid
    assert s.metadata["compactions"] == 1
    pre = {m.uuid for m in s.messages[: s.messages.index(boundary)]}
    seen = chain(s, s.steps[-1].context_leaf)
    assert summary.uuid in seen and not pre & set(seen)
    # the caveat row and the compact summary are messages, not steps
    assert sum(1 for r in recs if r["role"] == "user") == 3
    (p,) = s.patches
    assert p.tool_name == "Edit" and p.step == 7 and p.path == "/workspace/demo-app/src/net.py"
    assert b"def fetch(client, url, max_retries=3):\n    for attempt in range(max_retries):" in p.after
    assert p.after == p.before.replace(
        b"def fetch(client, url):\n    for attempt in range(3):",
        b"def fetch(client, url, max_retries=3):\n    for attempt in range(max_retries):",
    )


def test_bad_lines_fixture():
    data, s = load(FIXTURES / "claude-bad-lines.jsonl")
    lines = data.split(b"\n")
    for no, _ in s.skipped:  # the reported lines really are the bad ones
        with pytest.raises((ValueError, UnicodeDecodeError)):
            obj = json.loads(lines[no - 1].decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError("not an object")
    assert s.records == 6
    recs = [st.record for st in s.steps]
    assert recs[1]["observations"][0]["error"] == "tool_error"  # failed Edit: no patch
    (p,) = s.patches
    assert p.tool_name == "Write" and p.operation == "modify" and p.step == 2
    assert p.before == b"# demo-app\n\nA small demo.\n"
    assert p.after.startswith(b"# demo-app\n\nA small demo application.\n\n## Usage")
    assert s.git_branch == "fix/readme"


def test_subagent_file_fixture():
    _, s = load(FIXTURES / "claude-subagent-file.jsonl")
    parent = s.metadata["parent_session_id"]
    assert s.session_id == f"{parent}-agent-{s.metadata['agent_id']}"
    assert all(st.record["call_type"] == "subagent" for st in s.steps)
    assert s.task.startswith("List the test files")
    assert s.model == "claude-haiku-4-6"


# --------------------------------------------------------------------------
# refusals


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n\n  \n",
        bytes(range(256)) * 16,
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
        b'{"hello": "world"}\n[1, 2]\n',
        b'{"type":"summary","summary":"only a title","leafUuid":"x"}\n',
    ],
    ids=["empty", "blank", "binary", "png", "other-json", "summary-only"],
)
def test_not_a_session_raises(data):
    with pytest.raises(SessionParseError):
        claude_code.parse(data, "x.jsonl")


def _row(sid: str) -> bytes:
    return orjson.dumps(
        {
            "parentUuid": None,
            "isSidechain": False,
            "type": "user",
            "message": {"role": "user", "content": "hi"},
            "uuid": "11111111-1111-4111-8111-111111111111",
            "timestamp": "2026-01-01T00:00:00.000Z",
            "cwd": "/workspace/demo-app",
            "sessionId": sid,
        }
    ) + b"\n"


@pytest.mark.parametrize("sid", ["../../etc", "a/b", "..", ".hidden", "x\x00y", "a\\b", "tab\there"])
def test_unsafe_session_id_raises(sid):
    with pytest.raises(SessionParseError, match="unsafe session id"):
        claude_code.parse(_row(sid), "x.jsonl")


def test_safe_session_id_parses():
    s = claude_code.parse(_row("0d9c1f3e-0000-4000-8000-000000000000"), "x.jsonl")
    assert s.session_id == "0d9c1f3e-0000-4000-8000-000000000000"
    assert [st.record["content"] for st in s.steps] == ["hi"]


# --------------------------------------------------------------------------
# append stability and determinism

ALL = [REAL] + [FIXTURES / n for n in sorted(EXPECTED)]
LINEAR = [REAL] + [FIXTURES / n for n in ("claude-multiturn-edit.jsonl", "claude-bad-lines.jsonl")]


def _prefixes(data: bytes):
    lines = data.split(b"\n")[:-1]
    for k in range(1, len(lines)):
        prefix = b"\n".join(lines[:k]) + b"\n"
        try:
            yield k, claude_code.parse(prefix, "x.jsonl")
        except SessionParseError:
            continue


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_growing_file_only_grows(path):
    data, full = load(path)
    checked = 0
    for _, part in _prefixes(data):
        checked += 1
        assert len(part.steps) <= len(full.steps)
        for old, new in zip(part.steps, full.steps):
            assert old.index == new.index and old.time == new.time
            assert old.context_leaf == new.context_leaf
            assert old.rev <= new.rev
            if old.rev == new.rev:
                assert old.record == new.record  # unchanged rev: unchanged record
        assert full.patches[: len(part.patches)] == part.patches
        assert full.messages[: len(part.messages)] == part.messages
        assert full.skipped[: len(part.skipped)] == part.skipped
    assert checked > 0


@pytest.mark.parametrize("path", LINEAR, ids=lambda p: p.name)
def test_growing_linear_file_changes_only_last_step(path):
    data, full = load(path)
    for _, part in _prefixes(data):
        for old, new in zip(part.steps[:-1], full.steps):
            assert old.record == new.record and old.rev == new.rev


def test_appended_rows_keep_earlier_steps():
    data, before = load(FIXTURES / "claude-multiturn-edit.jsonl")
    last = rows_of(data)[-1]
    more = [
        {
            **{k: last[k] for k in ("userType", "entrypoint", "cwd", "sessionId", "version", "gitBranch")},
            "parentUuid": last["uuid"],
            "isSidechain": False,
            "type": "user",
            "message": {"role": "user", "content": "Thanks. Commit it."},
            "uuid": "7d0f3c52-9a1e-4b8e-8f7e-1c2d3e4f5a60",
            "timestamp": "2026-03-02T09:17:00.000Z",
        },
        {
            **{k: last[k] for k in ("userType", "entrypoint", "cwd", "sessionId", "version", "gitBranch")},
            "parentUuid": "7d0f3c52-9a1e-4b8e-8f7e-1c2d3e4f5a60",
            "isSidechain": False,
            "type": "assistant",
            "message": {
                "model": "claude-opus-4-8", "id": "msg_01ExtraExtraExtraExtra01", "type": "message",
                "role": "assistant", "content": [{"type": "text", "text": "Committed."}],
                "usage": {"input_tokens": 2, "output_tokens": 5},
            },
            "uuid": "7d0f3c52-9a1e-4b8e-8f7e-1c2d3e4f5a61",
            "timestamp": "2026-03-02T09:17:03.000Z",
        },
    ]
    grown = data + b"".join(orjson.dumps(r) + b"\n" for r in more)
    after = claude_code.parse(grown, "claude-multiturn-edit.jsonl")
    assert len(after.steps) == len(before.steps) + 2
    for old, new in zip(before.steps, after.steps):
        assert old == new
    assert after.steps[-1].context_leaf == "7d0f3c52-9a1e-4b8e-8f7e-1c2d3e4f5a60"
    assert after.patches == before.patches
    assert after.ended_at == "2026-03-02T09:17:03.000Z"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_parse_is_deterministic(path):
    data = path.read_bytes()
    a = claude_code.parse(data, path.name)
    b = claude_code.parse(bytes(data), path.name)
    assert a == b
    assert claude_code.parse(data, "elsewhere/other-name.jsonl") == a  # the name is only for errors


def test_partial_last_line_is_skipped_then_read():
    data = REAL.read_bytes()
    cut = data[: len(data) - 300]  # the Stop hook row, half written
    s = claude_code.parse(cut, REAL.name)
    assert s.skipped == [(21, "invalid JSON")]
    assert claude_code.parse(data, REAL.name).skipped == []


# --------------------------------------------------------------------------
# where sessions live


def test_default_root():
    home = Path("/home/someone")
    assert claude_code.default_root(home, {}) == home / ".claude" / "projects"
    assert claude_code.default_root(home, {"CLAUDE_CONFIG_DIR": ""}) == home / ".claude" / "projects"
    assert claude_code.default_root(home, {"CLAUDE_CONFIG_DIR": "/etc/cc"}) == Path("/etc/cc/projects")
    assert claude_code.default_root(home, {"CLAUDE_CONFIG_DIR": "~/cc"}) == home / "cc" / "projects"


def test_discover(tmp_path):
    root = tmp_path / "projects"
    proj = root / "-workspace-demo-app"
    sub = proj / "b22784f0-931a-5436-9e1c-0c586ca23747" / "subagents"
    sub.mkdir(parents=True)
    (proj / "b22784f0-931a-5436-9e1c-0c586ca23747.jsonl").write_bytes(b"{}\n")
    (proj / "0e0dc3f4-c26b-5e98-957f-0445345748d9.jsonl").write_bytes(b"{}\n")
    (sub / "agent-a3f9c2e71b4d5a6c8.jsonl").write_bytes(b"{}\n")
    (proj / "notes.txt").write_text("x")
    (proj / "dir.jsonl").mkdir()  # not a file
    other = root / "-workspace-other"
    other.mkdir()
    (other / "a.jsonl").write_bytes(b"")
    found = claude_code.discover(root)
    assert found == sorted(found, key=str)
    assert [p.relative_to(root).as_posix() for p in found] == [
        "-workspace-demo-app/0e0dc3f4-c26b-5e98-957f-0445345748d9.jsonl",
        "-workspace-demo-app/b22784f0-931a-5436-9e1c-0c586ca23747.jsonl",
        "-workspace-demo-app/b22784f0-931a-5436-9e1c-0c586ca23747/subagents/agent-a3f9c2e71b4d5a6c8.jsonl",
        "-workspace-other/a.jsonl",
    ]
    assert claude_code.discover(tmp_path / "missing") == []


# --------------------------------------------------------------------------
# patch edge cases, made by editing the real session's Edit result row


def _real_with(change) -> ParsedSession:
    lines = REAL.read_bytes().split(b"\n")
    out = []
    for line in lines:
        if b'"toolUseResult":{"filePath"' in line:
            row = json.loads(line)
            change(row)
            line = json.dumps(row, separators=(",", ":")).encode()
        out.append(line)
    return claude_code.parse(b"\n".join(out), REAL.name)


def test_edit_without_original_file_keeps_the_hunks():
    s = _real_with(lambda row: row["toolUseResult"].pop("originalFile"))
    (p,) = s.patches
    assert (p.before, p.after, p.before_known, p.after_known) == (None, None, False, False)
    assert p.hunk_diff.splitlines()[0] == "@@ -1,2 +1,6 @@"
    assert p.hunk_diff.splitlines()[-1] == '+    return f"goodbye, {name}"'


def test_edit_that_does_not_apply_has_unknown_after():
    def change(row):
        row["toolUseResult"]["originalFile"] = "something else\n"

    (p,) = _real_with(change).patches
    assert p.before == b"something else\n" and p.before_known
    assert p.after is None and not p.after_known
    assert p.hunk_diff.startswith("@@ -1,2 +1,6 @@\n")


def test_failed_edit_makes_no_patch_but_an_error_observation():
    def change(row):
        row["message"]["content"][0]["is_error"] = True
        row["message"]["content"][0]["content"] = "<tool_use_error>File has been modified since read</tool_use_error>"
        row["toolUseResult"] = "Error: File has been modified since read"

    s = _real_with(change)
    assert s.patches == []
    assert s.steps[2].record["observations"][0]["error"] == "tool_error"


def test_edit_without_result_makes_no_patch():
    data = REAL.read_bytes()
    lines = data.split(b"\n")
    cut = b"\n".join(lines[:9]) + b"\n"  # up to the Edit's PostToolUse hook, before its result row
    s = claude_code.parse(cut, REAL.name)
    assert [c["tool_name"] for c in s.steps[-1].record["tool_calls"]] == ["Edit"]
    assert s.steps[-1].record["observations"] == []
    assert s.patches == []


def test_edit_with_empty_old_string_creates_the_file():
    def change(row):
        row["toolUseResult"].update(oldString="", originalFile=None, newString="x = 1\n")

    (p,) = _real_with(change).patches
    assert p.operation == "create" and p.before is None and p.before_known
    assert p.after == b"x = 1\n" and p.hunk_diff is None
