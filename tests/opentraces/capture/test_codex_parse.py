"""Codex CLI rollout parser: real-format fixtures, patches, append-stability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opentraces.capture import codex, patchtext
from opentraces.capture.session import ParsedSession, SessionParseError

from sessionrig import CLI_PY, ROOT, SHARED, check_append_stable, check_step_contract, git_apply, make_repo, read, roles

SAMPLE = SHARED / "codex_cli" / "linear-rollout.jsonl"
FIX1 = ROOT / "fixtures" / "codex" / "rollout-2026-03-14T10-01-59-019cf0a1-5b2e-7c41-9d3a-2f6b8e4c1a01.jsonl"
FIX2 = ROOT / "fixtures" / "codex" / "rollout-2026-04-21T16-29-58-019d1b7e-22c4-7f03-a6d1-8c5e3b9f0d42.jsonl"
PI_REAL = SHARED / "pi" / "pi-linear-edit-real-session.jsonl"
ALL = [SAMPLE, FIX1, FIX2]

# pre-images of the files the fixtures change (the demo-app project)
CLI_PY_AFTER = '''import argparse

from .text import slugify


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="demo-app")
    parser.add_argument("title", help="title to print")
    parser.add_argument("--slug", action="store_true", help="print the title as a slug")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print(slugify(args.title) if args.slug else args.title)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
'''
TEST_CLI = '''from demo_app.cli import main


def test_prints_title(capsys):
    assert main(["Hello World"]) == 0
    assert capsys.readouterr().out == "Hello World\\n"
'''
TEXT_PY = '''"""Text helpers."""

import re

_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """Lower-case ``text`` and join its words with dashes."""
    return _NON_WORD.sub("-", text.lower()).strip("-")
'''
TEXT_PY_AFTER = '''"""Text helpers."""

import re
import unicodedata

_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """Lower-case ``text`` and join its words with dashes."""
    folded = unicodedata.normalize("NFKD", text)
    ascii_text = folded.encode("ascii", "ignore").decode("ascii")
    return _NON_WORD.sub("-", ascii_text.lower()).strip("-")
'''
STRINGS_PY = '''def shout(text: str) -> str:
    return text.upper() + "!"


def whisper(text: str) -> str:
    return text.lower() + "..."
'''
LEGACY_PY = "def old_shout(text):\n    return text.upper()\n"
INIT_PY = '''"""Demo app."""

from .strings import shout, whisper

__all__ = ["shout", "whisper"]
'''


def parse(path: Path) -> ParsedSession:
    return codex.parse(read(path), path.name)


# --------------------------------------------------------------------------
# every session


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_step_is_a_schema_step(path):
    check_step_contract(parse(path))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_parse_is_deterministic(path):
    data = read(path)
    assert codex.parse(data, path.name) == codex.parse(bytes(data), path.name)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_appending_rows_never_changes_earlier_steps(path):
    check_append_stable(codex.parse, read(path), path.name, tear=7)


def test_metadata_has_no_absolute_paths_or_capture_time():
    for path in ALL:
        s = parse(path)
        text = json.dumps(s.metadata)
        assert "/home/" not in text and "/root" not in text and "/Users/" not in text
        assert s.metadata["source_format"] == codex.SOURCE_FORMAT


# --------------------------------------------------------------------------
# the shared sample rollout


def test_sample_rollout_identity_and_steps():
    s = parse(SAMPLE)
    assert s.agent == codex.AGENT == "codex-cli"
    assert s.session_id == "019e0000-0000-7000-8000-000000000001"
    assert s.cwd == "/workspace/demo"
    assert s.agent_version == "0.132.0"
    assert s.model == "gpt-5.5"
    assert s.git_branch == "main"
    assert s.git_commit == "0123456789abcdef0123456789abcdef01234567"
    assert (s.started_at, s.ended_at) == ("2026-05-21T09:00:00Z", "2026-05-21T09:00:11Z")
    assert s.records == 12 and s.skipped == []
    assert s.layers == {"system": "Fixture system instructions."}
    assert roles(s) == ["user", "user", "agent", "agent"]
    assert s.steps[1].record["content"] == "Add a small parser test for Codex CLI."
    work = s.steps[2].record
    assert work["content"] == "I will inspect the fixture and run the focused parser test."
    assert work["reasoning_content"] == "[encrypted reasoning]"
    assert work["model"] == "gpt-5.5"
    assert [(c["tool_call_id"], c["tool_name"]) for c in work["tool_calls"]] == [("call_fixture_001", "exec_command")]
    assert work["tool_calls"][0]["input"] == {
        "cmd": "pytest tests/capture/test_parser_codex_cli.py -q", "workdir": "/workspace/demo"}
    assert work["observations"] == [{
        "source_call_id": "call_fixture_001",
        "content": "tests/capture/test_parser_codex_cli.py::test_fixture_parse PASSED\n",
        "output_summary": "tests/capture/test_parser_codex_cli.py::test_fixture_parse PASSED\n",
        "error": None,
    }]
    # the token_count row follows this step's call: 1000 input of which 200 cached
    assert work["token_usage"] == {"input_tokens": 800, "output_tokens": 120, "cache_read_tokens": 200,
                                   "cache_write_tokens": 0, "prefix_reuse_tokens": 0}
    assert s.steps[2].rev == 5  # reasoning, message, call, output, token_count
    assert s.steps[3].record["content"] == "Parser test is in place and passes."
    assert s.patches == []


def test_sample_context_tree_is_a_linear_chain():
    s = parse(SAMPLE)
    assert [(m.uuid, m.parent, m.role, m.kind) for m in s.messages] == [
        ("L2", None, "developer", "meta"),
        ("L3", "L2", "user", "message"),
        ("L6", "L3", "user", "message"),
        ("L7", "L6", "assistant", "reasoning"),
        ("L8", "L7", "assistant", "message"),
        ("L9", "L8", "assistant", "message"),
        ("L10", "L9", "tool", "tool_result"),
        ("L12", "L10", "assistant", "message"),
    ]
    assert s.steps[2].context_leaf == "L6"
    assert s.steps[3].context_leaf == "L10"
    assert s.messages[3].content["encrypted_content"] == "fixture-encrypted-reasoning"


# --------------------------------------------------------------------------
# fixture 1: unified exec + freeform apply_patch, two turns


def test_fixture1_identity_and_counts():
    s = parse(FIX1)
    assert s.session_id == "019cf0a1-5b2e-7c41-9d3a-2f6b8e4c1a01"
    assert s.agent_version == "0.118.0"
    assert s.model == "gpt-5.3-codex"
    assert s.git_branch == "feature/slugify"
    assert s.git_commit == "9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6"
    assert s.cwd == "/workspace/demo-app"
    assert s.task.startswith("Add a slugify(text) helper in src/demo_app/text.py")
    assert (s.started_at, s.ended_at) == ("2026-03-14T10:01:59.874Z", "2026-03-14T10:03:07.179Z")
    assert s.skipped == [] and s.records == 69
    assert roles(s).count("user") == 2 and roles(s).count("agent") == 11
    assert roles(s)[0] == "user" and roles(s)[9] == "user"  # wrappers are context, not prompts
    calls = [c for st in s.steps for c in st.record["tool_calls"]]
    assert [c["tool_name"] for c in calls] == [
        "exec_command", "exec_command", "apply_patch", "apply_patch", "exec_command",
        "apply_patch", "exec_command", "apply_patch", "exec_command"]
    assert calls[2]["input"]["input"].startswith("*** Begin Patch\n*** Add File: src/demo_app/text.py")
    assert s.metadata["failed_patches"] == 1
    assert s.metadata["repository_url"] == "git@example.invalid:acme/demo-app.git"
    assert "system" in s.layers
    kinds = {m.kind for m in s.messages}
    assert kinds == {"meta", "message", "reasoning", "tool_result"}
    assert len(s.messages) == 31


def test_fixture1_reasoning_tokens_and_errors():
    s = parse(FIX1)
    first, second = s.steps[1].record, s.steps[2].record
    assert first["reasoning_content"].startswith("**Exploring the package layout**")
    assert second["reasoning_content"] == "[encrypted reasoning]"  # no summary: placeholder
    assert first["token_usage"]["input_tokens"] == 6120 - 4864
    assert first["token_usage"]["cache_read_tokens"] == 4864
    assert first["token_usage"]["output_tokens"] == 143
    failed = s.steps[4].record
    assert failed["observations"][0]["error"] == "tool_error"
    assert failed["observations"][0]["content"].startswith("apply_patch verification failed")
    assert s.steps[1].record["observations"][0]["error"] is None
    # the duration Codex recorded (exec_command_end: 41.2 ms), not the 3,411 ms between the call and output rows
    assert s.steps[1].record["tool_calls"][0]["duration_ms"] == 41
    assert s.steps[8].record["content"].startswith("Added `slugify`")
    assert all(st.record["model"] == "gpt-5.3-codex" for st in s.steps if st.record["role"] == "agent")


def test_fixture1_patches():
    s = parse(FIX1)
    got = [(p.seq, p.step, p.path, p.operation, p.before_known, p.after_known) for p in s.patches]
    assert got == [
        (0, 3, "/workspace/demo-app/src/demo_app/text.py", "create", True, True),
        (1, 3, "/workspace/demo-app/src/demo_app/cli.py", "modify", False, False),
        (2, 6, "/workspace/demo-app/tests/test_text.py", "create", True, True),
        (3, 6, "/workspace/demo-app/tests/test_cli.py", "modify", False, False),
        (4, 10, "/workspace/demo-app/src/demo_app/text.py", "modify", True, True),
    ]
    add = s.patches[0]
    assert add.before is None and add.after == TEXT_PY.encode()
    assert add.tool_name == "apply_patch" and add.tool_call_id == "call_Zp3vNc6xB1mQ8wE5rT2yU9iO"
    assert add.time == "2026-03-14T10:02:23.151Z"  # the patch_apply_end row (line 25)
    # the session created text.py, so the later update knows both sides
    upd = s.patches[4]
    assert upd.before == TEXT_PY.encode() and upd.after == TEXT_PY_AFTER.encode()
    for p in s.patches:
        assert p.hunk_diff.startswith("diff --git a/")
    cli = s.patches[1].hunk_diff
    assert "--- a/src/demo_app/cli.py\n+++ b/src/demo_app/cli.py\n" in cli
    assert cli.count("\n@@ ") == 2


def test_fixture1_update_hunk_applies_with_git(tmp_path):
    s = parse(FIX1)
    repo = make_repo(tmp_path, {"src/demo_app/cli.py": CLI_PY, "tests/test_cli.py": TEST_CLI})
    git_apply(repo, s.patches[1].hunk_diff, check_only=True)
    for p in s.patches:  # the whole session, in order
        git_apply(repo, p.hunk_diff)
    assert (repo / "src/demo_app/cli.py").read_text() == CLI_PY_AFTER
    assert (repo / "src/demo_app/text.py").read_text() == TEXT_PY_AFTER
    assert (repo / "tests/test_cli.py").read_text() == TEST_CLI + (
        '\n\ndef test_prints_slug(capsys):\n'
        '    assert main(["Hello World", "--slug"]) == 0\n'
        '    assert capsys.readouterr().out == "hello-world\\n"\n')
    assert (repo / "tests/test_text.py").read_bytes() == s.patches[2].after


# --------------------------------------------------------------------------
# fixture 2: shell tool, heredoc/argv apply_patch, delete, move, compaction


def test_fixture2_identity_steps_and_compaction():
    s = parse(FIX2)
    assert s.session_id == "019d1b7e-22c4-7f03-a6d1-8c5e3b9f0d42"
    assert (s.agent_version, s.model, s.git_branch) == ("0.98.2", "gpt-5-codex", "main")
    assert s.layers == {}  # "instructions": null
    assert roles(s) == ["user"] + ["agent"] * 6 + ["user"] + ["agent"] * 3
    assert s.metadata["compactions"] == 1
    summary = [m for m in s.messages if m.kind == "compaction_summary"]
    assert len(summary) == 1 and summary[0].parent is None and summary[0].uuid == "L31"
    after = s.messages[s.messages.index(summary[0]) + 1]
    assert after.parent == "L31" and after.role == "user"
    names = [c["tool_name"] for st in s.steps for c in st.record["tool_calls"]]
    assert names == ["shell"] * 5 + ["local_shell", "apply_patch", "shell"]
    local = s.steps[6].record
    assert local["tool_calls"][0]["input"]["command"] == ["bash", "-lc", "pytest -q"]
    assert local["observations"][0]["error"] == "tool_error"
    assert local["observations"][0]["content"].startswith("E   ModuleNotFoundError")


def test_fixture2_patches():
    s = parse(FIX2)
    got = [(p.seq, p.step, p.path, p.operation, p.before_known, p.after_known, p.tool_name) for p in s.patches]
    assert got == [
        (0, 3, "/workspace/demo-app/src/demo_app/legacy.py", "delete", False, True, "shell"),
        (1, 3, "/workspace/demo-app/src/demo_app/text_utils.py", "modify", False, False, "shell"),
        (2, 3, "/workspace/demo-app/CHANGELOG.md", "create", True, True, "shell"),
        # `sed -i` ran on CHANGELOG.md in between: its content is no longer known
        (3, 5, "/workspace/demo-app/CHANGELOG.md", "modify", False, False, "shell"),
        (4, 8, "/workspace/demo-app/src/demo_app/__init__.py", "modify", False, False, "apply_patch"),
    ]
    assert s.patches[0].before is None and s.patches[0].after is None and s.patches[0].hunk_diff is None
    assert "rename from src/demo_app/strings.py\nrename to src/demo_app/text_utils.py\n" in s.patches[1].hunk_diff


def test_fixture2_diffs_replay_with_git(tmp_path):
    s = parse(FIX2)
    repo = make_repo(tmp_path, {"src/demo_app/strings.py": STRINGS_PY, "src/demo_app/legacy.py": LEGACY_PY,
                                "src/demo_app/__init__.py": INIT_PY})
    (repo / "src/demo_app/legacy.py").unlink()  # delete: no pre-image, so no diff
    for p in s.patches[1:3]:
        git_apply(repo, p.hunk_diff)
    changelog = repo / "CHANGELOG.md"
    changelog.write_text(changelog.read_text().replace("## Unreleased", "## 0.2.0"))  # the sed -i step
    git_apply(repo, s.patches[3].hunk_diff, check_only=True)
    for p in s.patches[3:]:
        git_apply(repo, p.hunk_diff)
    assert not (repo / "src/demo_app/strings.py").exists()
    assert (repo / "src/demo_app/text_utils.py").read_text() == STRINGS_PY.replace(
        "text.lower()", "text.strip().lower()")
    assert changelog.read_text().endswith(
        "- Remove the `demo_app.legacy` module.\n- `whisper()` now strips surrounding whitespace.\n")
    assert "from .text_utils import shout, whisper" in (repo / "src/demo_app/__init__.py").read_text()


# --------------------------------------------------------------------------
# malformed input


def test_malformed_lines_are_skipped_with_their_line_numbers():
    lines = read(SAMPLE).split(b"\n")
    bad = lines[:2] + [b"{not json"] + lines[2:4] + [b"\xff\xfe broken"] + lines[4:5] + [b"[1, 2]"] + lines[5:]
    s = codex.parse(b"\n".join(bad) + b'{"torn": ', "x.jsonl")
    assert s.skipped == [(3, "invalid JSON"), (6, "not UTF-8"), (8, "not a JSON object"), (16, "invalid JSON")]
    ref = parse(SAMPLE)
    assert roles(s) == roles(ref)
    assert [st.record["content"] for st in s.steps] == [st.record["content"] for st in ref.steps]
    assert s.records == ref.records


@pytest.mark.parametrize("data", [
    b"",
    b"\n\n  \n",
    bytes(range(256)) * 8,
    b"\x00\x01\x02PNG\x89\n\x00",
    b"not json at all\n{oops\n",
    b'{"type":"response_item","payload":{"type":"message","role":"user","content":[]}}\n',
], ids=["empty", "blank", "binary", "nul", "garbage", "no-meta"])
def test_no_session_raises(data):
    with pytest.raises(SessionParseError):
        codex.parse(data, "rollout-x.jsonl")


def test_other_agent_file_raises():
    with pytest.raises(SessionParseError):
        codex.parse(read(PI_REAL), PI_REAL.name)


@pytest.mark.parametrize("sid", ["../../etc", "a/b", "x\x01y", "..", ".hidden", "a\\b"])
def test_unsafe_session_id_raises(sid):
    meta = {"timestamp": "2026-01-01T00:00:00Z", "type": "session_meta", "payload": {"id": sid, "cwd": "/w"}}
    with pytest.raises(SessionParseError):
        codex.parse(json.dumps(meta).encode() + b"\n", "rollout.jsonl")


def test_meta_less_rollout_takes_the_id_from_its_name():
    row = {"timestamp": "2026-01-01T00:00:00Z", "type": "response_item",
           "payload": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}
    s = codex.parse(json.dumps(row).encode() + b"\n",
                    "rollout-2026-01-01T00-00-00-019c0000-0000-7000-8000-00000000abcd.jsonl")
    assert s.session_id == "019c0000-0000-7000-8000-00000000abcd"
    assert roles(s) == ["user"]


def test_legacy_unwrapped_rollout():
    rows = [
        {"id": "5973b6c0-94b8-487b-a530-2aeb6098ae0e", "timestamp": "2026-02-01T08:00:00.000Z",
         "instructions": "legacy instructions"},
        {"record_type": "state"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
        {"type": "function_call", "name": "shell", "arguments": "{\"command\":[\"ls\"]}", "call_id": "c1"},
        {"type": "function_call_output", "call_id": "c1",
         "output": "{\"output\":\"a.py\\n\",\"metadata\":{\"exit_code\":0,\"duration_seconds\":0.01}}"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a.py"}]},
    ]
    s = codex.parse(b"".join(json.dumps(r).encode() + b"\n" for r in rows), "rollout-old.jsonl")
    assert s.session_id == "5973b6c0-94b8-487b-a530-2aeb6098ae0e"
    assert s.layers == {"system": "legacy instructions"}
    assert roles(s) == ["user", "agent", "agent"]
    assert s.steps[1].record["observations"][0]["content"] == "a.py\n"
    assert s.started_at == s.ended_at == "2026-02-01T08:00:00.000Z"


def test_failed_and_pending_patches_are_not_emitted():
    meta = {"timestamp": "2026-01-01T00:00:00Z", "type": "session_meta",
            "payload": {"id": "019c0000-0000-7000-8000-000000000001", "cwd": "/w"}}
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"

    def call(cid):
        return {"timestamp": "2026-01-01T00:00:01Z", "type": "response_item",
                "payload": {"type": "custom_tool_call", "call_id": cid, "name": "apply_patch", "input": patch}}

    rows = [
        meta, call("ok"),
        {"timestamp": "2026-01-01T00:00:02Z", "type": "response_item",
         "payload": {"type": "custom_tool_call_output", "call_id": "ok",
                     "output": "Exit code: 0\nWall time: 0 seconds\nOutput:\nSuccess. Updated the following files:\nA a.txt\n"}},
        call("rejected"),
        {"timestamp": "2026-01-01T00:00:03Z", "type": "event_msg",
         "payload": {"type": "patch_apply_end", "call_id": "rejected", "success": False, "stdout": "", "stderr": "x"}},
        {"timestamp": "2026-01-01T00:00:04Z", "type": "response_item",
         "payload": {"type": "custom_tool_call_output", "call_id": "rejected", "output": "Success."}},
        call("pending"),
    ]
    s = codex.parse(b"".join(json.dumps(r).encode() + b"\n" for r in rows), "r.jsonl")
    assert [(p.tool_call_id, p.path, p.after) for p in s.patches] == [("ok", "/w/a.txt", b"hi\n")]
    assert s.metadata["failed_patches"] == 1


# --------------------------------------------------------------------------
# discovery


def test_default_root_and_discover(tmp_path):
    home = tmp_path / "home"
    assert codex.default_root(home, {}) == home / ".codex" / "sessions"
    assert codex.default_root(home, {"CODEX_HOME": "/opt/codex"}) == Path("/opt/codex/sessions")
    assert codex.default_root(home, {"CODEX_HOME": ""}) == home / ".codex" / "sessions"
    root = tmp_path / "sessions"
    for rel in ("2026/03/14/rollout-b.jsonl", "2026/03/13/rollout-a.jsonl", "2026/03/14/notes.jsonl",
                "rollout-top.jsonl"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("{}\n")
    (root / "2026/03/14/rollout-dir.jsonl").mkdir()
    assert [p.relative_to(root).as_posix() for p in codex.discover(root)] == [
        "2026/03/13/rollout-a.jsonl", "2026/03/14/rollout-b.jsonl", "rollout-top.jsonl"]
    assert codex.discover(tmp_path / "missing") == []


# --------------------------------------------------------------------------
# patch text helpers


def test_apply_patch_parser_and_replay_agree():
    patch = ("*** Begin Patch\n*** Update File: cli.py\n@@\n import argparse\n \n+from .text import slugify\n+\n \n"
             " def build_parser() -> argparse.ArgumentParser:\n@@ def main(argv: list[str] | None = None) -> int:\n"
             "     args = build_parser().parse_args(argv)\n-    print(args.title)\n+    print(args.title.upper())\n"
             "*** End Patch")
    (op,) = patchtext.parse_apply_patch(patch)
    assert op.kind == "update" and op.path == "cli.py" and len(op.chunks) == 2
    assert op.chunks[1].context == "def main(argv: list[str] | None = None) -> int:"
    after = patchtext.apply_update(CLI_PY, op.chunks)
    assert after == CLI_PY.replace("import argparse\n", "import argparse\n\nfrom .text import slugify\n", 1).replace(
        "print(args.title)", "print(args.title.upper())")
    with pytest.raises(patchtext.PatchTextError):
        patchtext.parse_apply_patch("*** Begin Patch\n*** Frobnicate: x\n*** End Patch")
    with pytest.raises(patchtext.PatchTextError):
        patchtext.parse_apply_patch("no patch here")
    assert patchtext.apply_update("a\nb\n", patchtext.parse_apply_patch(
        "*** Begin Patch\n*** Update File: f\n@@\n-zzz\n+y\n*** End Patch")[0].chunks) is None


def test_unified_diff_round_trip(tmp_path):
    repo = make_repo(tmp_path, {"f.txt": "one\ntwo\nthree\n", "g.txt": "no newline"})
    git_apply(repo, patchtext.unified_diff("f.txt", "f.txt", "one\ntwo\nthree\n", "one\n2\nthree\nfour"))
    git_apply(repo, patchtext.unified_diff("g.txt", "g.txt", "no newline", "no newline\n"))
    git_apply(repo, patchtext.unified_diff("g.txt", None, "no newline\n", None))
    git_apply(repo, patchtext.new_file_diff("empty.txt", ""))
    assert (repo / "f.txt").read_text() == "one\n2\nthree\nfour"
    assert not (repo / "g.txt").exists() and (repo / "empty.txt").read_text() == ""


@pytest.mark.parametrize("cmd,ro", [
    ("ls -la && git status --short", True),
    ("find . -maxdepth 3 -type f | sort", True),
    (["bash", "-lc", "sed -n '1,80p' src/a.py"], True),
    ("pytest -q 2>&1 | tail -5", True),
    ("rg foo > out.txt", False),
    ("sed -i 's/a/b/' f", False),
    ("find . -name '*.pyc' -delete", False),
    ("python script.py", False),
    ("git checkout -- src", False),
    ("cat <<'EOF' > f\nx\nEOF", False),
    (["rm", "-rf", "build"], False),
])
def test_read_only_command_guess(cmd, ro):
    assert patchtext.is_read_only_command(cmd) is ro
