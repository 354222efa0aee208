"""Pi session parser: the real Pi session, fixtures, patches, append-stability."""

from __future__ import annotations

from pathlib import Path

import pytest

from opentraces.capture import pi
from opentraces.capture.session import ParsedSession, SessionParseError

from sessionrig import CLI_PY, ROOT, SHARED, check_append_stable, check_step_contract, git_apply, jsonl, make_repo, read, roles

REAL = SHARED / "pi" / "pi-linear-edit-real-session.jsonl"
SYNTH = SHARED / "pi" / "linear-session.jsonl"
FIX = ROOT / "fixtures" / "pi" / "2026-04-02T09-14-58-417Z_019d2c4e-8a31-7d55-b0e2-6f4a1c9d3e77.jsonl"
CODEX_SAMPLE = SHARED / "codex_cli" / "linear-rollout.jsonl"
ALL = [REAL, SYNTH, FIX]

# src/app.py in the real session, before and after the agent's edit
APP_BEFORE = 'def greet(name: str) -> str:\n    return f"hello, {name}"\n'
APP_AFTER = (
    'def greet(name: str) -> str:\n    return f"hello, {name}"\n'
    '\n\ndef farewell(name: str) -> str:\n    return f"goodbye, {name}"\n'
)
# the demo-app files the fixture changes
CLI_PY_AFTER = CLI_PY.replace(
    '    parser.add_argument("title", help="title to print")\n',
    '    parser.add_argument("title", help="title to print")\n'
    '    parser.add_argument("--upper", action="store_true", help="print the title in upper case")\n',
).replace("    print(args.title)\n", "    print(args.title.upper() if args.upper else args.title)\n")
README = '''# demo-app

A tiny command line demo.

## Usage

    demo-app "Hello World"

## Development

Run `pytest -q`.
'''
README_AFTER = README.replace(
    '    demo-app "Hello World"\n',
    '    demo-app "Hello World"\n    demo-app --upper "Hello World"   # HELLO WORLD\n',
)
TEST_UPPER = '''from demo_app.cli import main


def test_upper_flag(capsys):
    assert main(["Hello World", "--upper"]) == 0
    assert capsys.readouterr().out == "HELLO WORLD\\n"
'''


def parse(path: Path) -> ParsedSession:
    return pi.parse(read(path), path.name)


# --------------------------------------------------------------------------
# every session


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_step_is_a_schema_step(path):
    check_step_contract(parse(path))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_parse_is_deterministic(path):
    data = read(path)
    assert pi.parse(data, path.name) == pi.parse(bytes(data), path.name)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_appending_rows_never_changes_earlier_steps(path):
    check_append_stable(pi.parse, read(path), path.name, tear=5)


# --------------------------------------------------------------------------
# the real Pi session


def test_real_session_identity_and_steps():
    s = parse(REAL)
    assert s.agent == pi.AGENT == "pi"
    assert s.session_id == "019eb1ff-4699-790c-9a4c-d637d93b8bc7"
    assert s.cwd == "/workspace/pi-real-edit-box/project"
    assert s.model == "openai-codex/gpt-5.5"
    assert s.agent_version is None
    assert (s.started_at, s.ended_at) == ("2026-06-10T14:45:57.529Z", "2026-06-10T14:46:44.697Z")
    assert s.task.startswith("In this repo, add a farewell(name: str) helper to src/app.py")
    assert s.records == 18 and s.skipped == []
    assert roles(s) == ["user"] + ["agent"] * 7
    names = [c["tool_name"] for st in s.steps for c in st.record["tool_calls"]]
    assert names == ["bash", "read", "bash", "edit", "bash", "bash", "bash"]
    obs = [o for st in s.steps for o in st.record["observations"]]
    assert len(obs) == 7 and all(o["error"] is None for o in obs)
    edit = s.steps[3].record
    assert edit["model"] == "openai-codex/gpt-5.5"
    assert edit["reasoning_content"].startswith("**Planning app updates**")
    assert edit["token_usage"] == {"input_tokens": 565, "output_tokens": 125, "cache_read_tokens": 10752,
                                   "cache_write_tokens": 0, "prefix_reuse_tokens": 0}
    assert edit["tool_calls"][0]["input"]["edits"][0]["oldText"] == APP_BEFORE
    assert s.steps[4].record["reasoning_content"] is None  # empty thinking block
    assert s.steps[7].record["content"].startswith("Done.")
    assert s.metadata["thinking_level"] == "xhigh"
    assert s.metadata["session_format_version"] == 3


def test_real_session_context_tree():
    s = parse(REAL)
    assert len(s.messages) == 15
    first = s.messages[0]
    # parentId is a thinking_level_change row, itself under a model_change: looked through
    assert (first.uuid, first.parent, first.role) == ("5eddc035", None, "user")
    assert [m.kind for m in s.messages].count("tool_result") == 7
    assert s.steps[3].context_leaf == "6d9170e0"  # both results of the read+find call
    assert s.steps[1].context_leaf == "5eddc035"


def test_real_session_edit_patch_has_both_sides(tmp_path):
    s = parse(REAL)
    (p,) = s.patches
    assert (p.seq, p.step, p.tool_name, p.operation) == (0, 3, "edit", "modify")
    assert p.tool_call_id.startswith("call_32rb3eyWlYAj6GP58jLhYglM|")
    assert p.path == "/workspace/pi-real-edit-box/project/src/app.py"
    assert p.time == "2026-06-10T14:46:22.378Z"
    assert p.before_known and p.after_known
    assert p.before == APP_BEFORE.encode()  # from the full `read` result two steps earlier
    assert p.after == APP_AFTER.encode()
    assert p.after.decode() == p.before.decode().replace(APP_BEFORE, APP_AFTER)
    repo = make_repo(tmp_path, {"src/app.py": APP_BEFORE})
    git_apply(repo, p.hunk_diff, check_only=True)
    git_apply(repo, p.hunk_diff)
    assert (repo / "src/app.py").read_text() == APP_AFTER


def test_synthetic_session():
    s = parse(SYNTH)
    assert (s.session_id, s.agent_version, s.model, s.cwd) == (
        "pi-linear-session", "1.0.0", "anthropic/claude-sonnet-4", "/workspace/pi-demo")
    assert roles(s) == ["user", "agent", "agent"]
    assert s.steps[1].record["tool_calls"] == [{
        "tool_call_id": "call-edit-1", "tool_name": "Edit", "duration_ms": 1000,
        "input": {"file_path": "src/app.py", "old_string": "return greeting", "new_string": "return farewell"}}]
    assert s.steps[1].record["token_usage"]["cache_read_tokens"] == 5
    assert s.steps[1].rev == 2 and s.steps[2].rev == 1
    (p,) = s.patches
    # no read showed the file and no diff was reported: nothing known but the call
    assert (p.path, p.before_known, p.after_known, p.hunk_diff) == ("/workspace/pi-demo/src/app.py", False, False, None)


# --------------------------------------------------------------------------
# the authored fixture: read, edit, partial read + edit, write


def test_fixture_identity_and_counts():
    s = parse(FIX)
    assert s.session_id == "019d2c4e-8a31-7d55-b0e2-6f4a1c9d3e77"
    assert (s.model, s.cwd) == ("openai/gpt-5.1-codex", "/workspace/demo-app")
    assert roles(s) == ["user"] + ["agent"] * 6
    assert sum(len(st.record["tool_calls"]) for st in s.steps) == 6
    assert s.steps[1].rev == 3  # assistant row + two read results
    assert s.skipped == [] and s.records == 16


def test_fixture_patches(tmp_path):
    s = parse(FIX)
    got = [(p.seq, p.step, p.tool_name, p.path, p.operation, p.before_known, p.after_known) for p in s.patches]
    assert got == [
        (0, 2, "edit", "/workspace/demo-app/src/demo_app/cli.py", "modify", True, True),
        (1, 3, "edit", "/workspace/demo-app/README.md", "modify", False, False),
        (2, 4, "write", "/workspace/demo-app/tests/test_cli_upper.py", "create", False, True),
    ]
    cli, readme, write = s.patches
    assert cli.before == CLI_PY.encode() and cli.after == CLI_PY_AFTER.encode()
    assert readme.before is None and readme.after is None  # only 4 lines were read
    assert write.before is None and write.after == TEST_UPPER.encode()
    repo = make_repo(tmp_path, {"src/demo_app/cli.py": CLI_PY, "README.md": README})
    git_apply(repo, readme.hunk_diff, check_only=True)  # Pi's own reported patch, re-headed
    for p in s.patches:
        git_apply(repo, p.hunk_diff)
    assert (repo / "src/demo_app/cli.py").read_text() == CLI_PY_AFTER
    assert (repo / "README.md").read_text() == README_AFTER
    assert (repo / "tests/test_cli_upper.py").read_text() == TEST_UPPER


# --------------------------------------------------------------------------
# what keeps a pre-image known


def _session(tool_calls: list[tuple[str, dict, str]]) -> bytes:
    rows = [{"type": "session", "version": 3, "id": "s-1", "timestamp": "2026-01-01T00:00:00.000Z", "cwd": "/w"},
            {"type": "message", "id": "u", "parentId": None, "timestamp": "2026-01-01T00:00:01.000Z",
             "message": {"role": "user", "content": "go"}}]
    parent = "u"
    for i, (name, args, result) in enumerate(tool_calls):
        a, r = f"a{i}", f"r{i}"
        rows.append({"type": "message", "id": a, "parentId": parent, "timestamp": f"2026-01-01T00:00:{2 + 2 * i:02d}.000Z",
                     "message": {"role": "assistant", "content": [
                         {"type": "toolCall", "id": f"c{i}", "name": name, "arguments": args}]}})
        rows.append({"type": "message", "id": r, "parentId": a, "timestamp": f"2026-01-01T00:00:{3 + 2 * i:02d}.000Z",
                     "message": {"role": "toolResult", "toolCallId": f"c{i}", "toolName": name,
                                 "content": [{"type": "text", "text": result}], "isError": False}})
        parent = r
    return jsonl(rows)


EDIT = ("edit", {"path": "f.py", "oldText": "x = 1\n", "newText": "x = 2\n"}, "Successfully replaced 1 block(s)")
READ = ("read", {"path": "f.py"}, "a = 0\nx = 1\n")


@pytest.mark.parametrize("between,known", [
    ([], True),
    ([("bash", {"command": "ls && git status --short"}, "f.py\n")], True),
    ([("bash", {"command": "sed -i 's/a = 0/a = 5/' f.py"}, "")], False),
    ([("bash", {"command": "python gen.py"}, "")], False),
    ([("read", {"path": "f.py", "offset": 2, "limit": 1}, "x = 1\n")], True),
    ([("read", {"path": "f.py"}, "a = 0\n\n\n[1 more lines in file. Use offset=2 to continue.]")], False),
])
def test_pre_image_known_only_while_trustworthy(between, known):
    s = pi.parse(_session([READ, *between, EDIT]), "s.jsonl")
    (p,) = s.patches
    assert (p.before_known, p.after_known) == (known, known)
    if known:
        assert (p.before, p.after) == (b"a = 0\nx = 1\n", b"a = 0\nx = 2\n")
        assert p.hunk_diff.startswith("diff --git a/f.py b/f.py\n")


def test_edit_then_edit_chains_known_contents():
    second = ("edit", {"path": "/w/f.py", "edits": [{"oldText": "a = 0", "newText": "a = 9"}]}, "ok")
    s = pi.parse(_session([READ, EDIT, second]), "s.jsonl")
    assert [p.after for p in s.patches] == [b"a = 0\nx = 2\n", b"a = 9\nx = 2\n"]
    assert s.patches[1].before == s.patches[0].after


def test_failed_edit_is_not_a_patch():
    data = _session([READ, EDIT]).replace(b'"isError": false}}\n', b'"isError": true}}\n')
    s = pi.parse(data, "s.jsonl")
    assert s.patches == []
    assert [o["error"] for st in s.steps for o in st.record["observations"]] == ["tool_error", "tool_error"]


# --------------------------------------------------------------------------
# malformed input


def test_malformed_lines_are_skipped_with_their_line_numbers():
    lines = read(SYNTH).split(b"\n")
    bad = lines[:1] + [b'{"type": "message", "id": '] + lines[1:3] + [b"\xc3\x28 bad utf-8"] + lines[3:4] + [b'"str"'] + lines[4:]
    s = pi.parse(b"\n".join(bad), "x.jsonl")
    assert s.skipped == [(2, "invalid JSON"), (5, "not UTF-8"), (7, "not a JSON object")]
    ref = parse(SYNTH)
    assert [st.record for st in s.steps] == [st.record for st in ref.steps]
    assert s.patches == ref.patches and s.messages == ref.messages


@pytest.mark.parametrize("data", [
    b"",
    b"\n \n",
    bytes(range(256)) * 4,
    b"\x00\x00\x00\x00",
    b'{"type":"message","id":"u1","parentId":null,"message":{"role":"user","content":"hi"}}\n',
], ids=["empty", "blank", "binary", "nul", "no-header"])
def test_no_session_raises(data):
    with pytest.raises(SessionParseError):
        pi.parse(data, "x.jsonl")


def test_other_agent_file_raises():
    with pytest.raises(SessionParseError):
        pi.parse(read(CODEX_SAMPLE), CODEX_SAMPLE.name)


@pytest.mark.parametrize("sid", ["../x", "a/b", "bad\nid", "..", ".dot", ""])
def test_unsafe_session_id_raises(sid):
    header = {"type": "session", "version": 3, "id": sid, "timestamp": "2026-01-01T00:00:00Z", "cwd": "/w"}
    with pytest.raises(SessionParseError):
        pi.parse(jsonl([header]), "x.jsonl")


def test_pre_tree_session_is_a_linear_chain():
    rows = [{"type": "session", "id": "old-1", "timestamp": "2026-01-01T00:00:00Z", "cwd": "/w"},
            {"type": "message", "timestamp": "2026-01-01T00:00:01Z", "message": {"role": "user", "content": "hi"}},
            {"type": "message", "timestamp": "2026-01-01T00:00:02Z",
             "message": {"role": "assistant", "content": [{"type": "text", "text": "hello"}],
                         "provider": "anthropic", "model": "claude-x", "stopReason": "aborted"}}]
    s = pi.parse(jsonl(rows), "x.jsonl")
    assert [(m.uuid, m.parent) for m in s.messages] == [("L2", None), ("L3", "L2")]
    assert s.steps[1].context_leaf == "L2"
    assert s.terminal_state == "interrupted"


# --------------------------------------------------------------------------
# discovery


def test_default_root_and_discover(tmp_path):
    home = tmp_path / "home"
    assert pi.default_root(home, {}) == home / ".pi" / "agent" / "sessions"
    assert pi.default_root(home, {"PI_CODING_AGENT_DIR": "/srv/pi"}) == Path("/srv/pi/sessions")
    assert pi.default_root(home, {"PI_CODING_AGENT_DIR": "~/pi"}) == home / "pi" / "sessions"
    root = tmp_path / "sessions"
    for rel in ("--workspace-b--/2026_b.jsonl", "--workspace-a--/2026_a.jsonl", "--workspace-a--/notes.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("{}\n")
    assert [p.relative_to(root).as_posix() for p in pi.discover(root)] == [
        "--workspace-a--/2026_a.jsonl", "--workspace-b--/2026_b.jsonl"]
    assert pi.discover(tmp_path / "missing") == []


def test_compaction_and_injected_context_rows():
    t = "2026-01-01T00:00:0{}Z".format
    rows = [
        {"type": "session", "version": 3, "id": "s-2", "timestamp": t(0), "cwd": "/w"},
        {"type": "message", "id": "u1", "parentId": None, "timestamp": t(1), "message": {"role": "user", "content": "a"}},
        {"type": "message", "id": "b1", "parentId": "u1", "timestamp": t(2),
         "message": {"role": "bashExecution", "command": "rm -rf build", "output": "", "exitCode": 0}},
        {"type": "custom", "id": "x1", "parentId": "b1", "timestamp": t(3), "customType": "ext", "data": {}},
        {"type": "compaction", "id": "c1", "parentId": "x1", "timestamp": t(4), "summary": "did a",
         "firstKeptEntryId": "u1", "tokensBefore": 1000},
        {"type": "custom_message", "id": "m1", "parentId": "c1", "timestamp": t(5), "customType": "ext",
         "content": "note", "display": False},
        {"type": "message", "id": "u2", "parentId": "m1", "timestamp": t(6), "message": {"role": "user", "content": "b"}},
        {"type": "message", "id": "a2", "parentId": "u2", "timestamp": t(7),
         "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}], "stopReason": "stop"}},
    ]
    s = pi.parse(jsonl(rows), "x.jsonl")
    assert [(m.uuid, m.parent, m.role, m.kind) for m in s.messages] == [
        ("u1", None, "user", "message"),
        ("b1", "u1", "user", "meta"),
        ("c1", None, "summary", "compaction_summary"),
        ("m1", "c1", "user", "meta"),
        ("u2", "m1", "user", "message"),
        ("a2", "u2", "assistant", "message"),
    ]
    assert roles(s) == ["user", "user", "agent"]
    assert s.metadata["compactions"] == 1 and s.task == "a"
