"""The TraceRecord fields a user reads (issue #10), each against a fixture and the raw file.

Every expected value is computed here from the session's own rows (or the
price table), never copied from our output: cost (recorded by Pi, priced
from the table for Claude Code and Codex, null for a model the table does
not know), snippets, compaction, repository URL and VCS of the project,
lifecycle, hook rows (Claude Code's own and opentraces 0.4.x's), Codex turn
policy and carried-over context.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from opentraces.bucket import Bucket
from opentraces.ids import trace_id_for
from opentraces.projections.cost import price_of, price_table

from bucketrig import FIXTURES, REAL_CLAUDE, SHARED, capture, commit, git, verify_full

PI = FIXTURES / "pi" / "2026-04-02T09-14-58-417Z_019d2c4e-8a31-7d55-b0e2-6f4a1c9d3e77.jsonl"
CODEX_OLD = FIXTURES / "codex" / "rollout-2026-04-21T16-29-58-019d1b7e-22c4-7f03-a6d1-8c5e3b9f0d42.jsonl"
CODEX_NEW = FIXTURES / "codex" / "rollout-2026-03-14T10-01-59-019cf0a1-5b2e-7c41-9d3a-2f6b8e4c1a01.jsonl"
CODEX_CARRIED = SHARED / "codex_cli" / "linear-rollout.jsonl"
CLAUDE_EDIT = FIXTURES / "claude" / "claude-multiturn-edit.jsonl"
CLAUDE_COMPACT = FIXTURES / "claude" / "claude-sidechain-compact.jsonl"


def rows(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def record(cli, bucket: Path, path: Path, agent: str, *extra) -> dict:
    doc = capture(cli, bucket, path, *extra, agent=agent)["capture"]
    [got] = [c for c in doc["captured"] if c["path"] == str(path)]
    b = Bucket.open(bucket)
    row = b.find_trace(got["trace_id"])
    return b.trace_record(row["project"], row["trace_id"])


def cost_of(usage: dict, model: str) -> float:
    rates = price_of(model)
    assert rates is not None, model
    return (usage["in"] * rates["input"] + usage["out"] * rates["output"] + usage["cr"] * rates["cache_read"]
            + usage["cw"] * rates["cache_write"]) / 1e6


# --------------------------------------------------------------------------
# estimated_cost_usd


def test_pi_cost_is_the_one_pi_recorded(tmp_path, cli):
    recorded = sum(r["message"]["usage"]["cost"]["total"] for r in rows(PI)
                   if r.get("type") == "message" and r["message"].get("role") == "assistant")
    assert recorded > 0
    rec = record(cli, tmp_path / "b", PI, "pi")
    assert abs(rec["metrics"]["estimated_cost_usd"] - round(recorded, 6)) < 1e-9
    assert rec["metadata"]["cost"] == {"source": "recorded"}


def test_claude_code_cost_is_priced_from_the_dated_table(tmp_path, cli):
    usage: dict[str, dict] = {}  # one LLM call per message id, its last usage row
    for r in rows(CLAUDE_EDIT):
        msg = r.get("message") if r.get("type") == "assistant" else None
        if msg and msg.get("usage"):
            u = msg["usage"]
            usage[msg["id"]] = {"model": msg["model"], "in": u.get("input_tokens", 0), "out": u.get("output_tokens", 0),
                                "cr": u.get("cache_read_input_tokens", 0), "cw": u.get("cache_creation_input_tokens", 0)}
    expected = sum(cost_of(u, "anthropic/" + u["model"]) for u in usage.values())
    rec = record(cli, tmp_path / "b", CLAUDE_EDIT, "claude-code")
    assert expected > 0
    assert abs(rec["metrics"]["estimated_cost_usd"] - round(expected, 6)) < 1e-9
    table = price_table()
    assert rec["metadata"]["cost"] == {"source": "price_table",
                                       "price_table": {"date": table["date"], "version": table["version"]}}


def test_codex_cost_counts_cached_input_at_the_cached_rate(tmp_path, cli):
    calls = [r["payload"]["info"]["last_token_usage"] for r in rows(CODEX_OLD)
             if r.get("type") == "event_msg" and r["payload"].get("type") == "token_count" and r["payload"].get("info")]
    model = next(r["payload"]["model"] for r in rows(CODEX_OLD) if r.get("type") == "turn_context")
    rec = record(cli, tmp_path / "b", CODEX_OLD, "codex")
    priced = [s["token_usage"] for s in rec["steps"] if any(s["token_usage"].values())]
    # every agent step's usage is one token_count row: uncached input + cached input = the row's input
    assert sorted((u["input_tokens"] + u["cache_read_tokens"], u["output_tokens"]) for u in priced) == \
        sorted((c["input_tokens"], c["output_tokens"]) for c in calls if (c["input_tokens"], c["output_tokens"])
               in {(u["input_tokens"] + u["cache_read_tokens"], u["output_tokens"]) for u in priced})
    expected = sum(cost_of({"in": u["input_tokens"], "out": u["output_tokens"], "cr": u["cache_read_tokens"], "cw": 0},
                           "openai/" + model) for u in priced)
    assert abs(rec["metrics"]["estimated_cost_usd"] - round(expected, 6)) < 1e-9
    assert rec["agent"]["model"] == "openai/" + model


def test_a_model_the_table_does_not_know_has_no_estimate(tmp_path, cli):
    model = next(r["payload"]["model"] for r in rows(CODEX_NEW) if r.get("type") == "turn_context")
    assert price_of("openai/" + model) is None  # gpt-5.3-codex: never priced as gpt-5
    rec = record(cli, tmp_path / "b", CODEX_NEW, "codex")
    assert rec["metrics"]["estimated_cost_usd"] is None
    assert rec["metadata"]["cost"]["unpriced_models"] == ["openai/" + model]


def test_price_table_is_dated_and_complete():
    table = price_table()
    assert table["format"] == "opentraces.prices.v1" and isinstance(table["version"], int)
    assert len(table["date"]) == 10 and table["date"][4] == "-"
    for key, rates in table["models"].items():
        assert "/" in key and set(rates) == {"input", "output", "cache_read", "cache_write"}, key
    assert price_of("openai/gpt-5-2025-08-07") == table["models"]["openai/gpt-5"]
    assert price_of("openai/gpt-5.5") is None and price_of(None) is None
    assert price_of("anthropic/claude-opus-4-5-20251101") == table["models"]["anthropic/claude-opus-4-5"]


# --------------------------------------------------------------------------
# snippets


def test_snippets_are_what_the_steps_read_and_wrote(tmp_path, cli):
    rec = record(cli, tmp_path / "b", CLAUDE_EDIT, "claude-code")
    raw = rows(CLAUDE_EDIT)
    writes = [b["input"] for r in raw if r.get("type") == "assistant" for b in r["message"]["content"]
              if isinstance(b, dict) and b.get("type") == "tool_use" and b["name"] == "Write"]
    reads = [r["toolUseResult"]["file"] for r in raw if isinstance(r.get("toolUseResult"), dict)
             and isinstance(r["toolUseResult"].get("file"), dict)]
    snips = [s for st in rec["steps"] for s in st["snippets"]]
    assert writes and reads
    for w in writes:
        [s] = [s for s in snips if s["file_path"] == w["file_path"] and s["start_line"] == 1 and s["text"] == w["content"]]
        assert s["end_line"] == w["content"].count("\n") and s["language"] == "python"
    for f in reads:
        [s] = [s for s in snips if s["file_path"] == f["filePath"] and s["text"].rstrip("\n") == f["content"].rstrip("\n")]
        assert (s["start_line"], s["end_line"]) == (f["startLine"], f["startLine"] + f["numLines"] - 1)
    for st in rec["steps"]:
        assert all(s["source_step"] == st["step_index"] for s in st["snippets"])


def test_codex_and_pi_snippets(tmp_path, cli):
    rec = record(cli, tmp_path / "b", CODEX_NEW, "codex")
    snips = {(s["file_path"], s["start_line"]): s for st in rec["steps"] for s in st["snippets"]}
    added = [r["payload"]["input"] for r in rows(CODEX_NEW) if r.get("type") == "response_item"
             and r["payload"].get("type") == "custom_tool_call" and "*** Add File: src/demo_app/text.py" in r["payload"]["input"]]
    body = added[0].split("*** Add File: src/demo_app/text.py\n", 1)[1].split("\n*** ", 1)[0]
    assert snips[("src/demo_app/text.py", 1)]["text"] == "".join(ln[1:] + "\n" for ln in body.split("\n"))
    assert snips[("src/demo_app/cli.py", 1)]["text"].startswith("import argparse\n")  # sed -n '1,80p'
    assert "Chunk ID" not in snips[("src/demo_app/cli.py", 1)]["text"]

    rec = record(cli, tmp_path / "b2", PI, "pi")
    [readme] = [s for st in rec["steps"] for s in st["snippets"] if s["file_path"] == "README.md" and s["start_line"]]
    assert readme["start_line"] == 1 and "more lines in file" not in readme["text"]
    assert readme["end_line"] == readme["text"].rstrip("\n").count("\n") + 1 and readme["language"] == "markdown"


# --------------------------------------------------------------------------
# compaction


def test_claude_compaction_trigger_and_tokens(tmp_path, cli):
    [boundary] = [r for r in rows(CLAUDE_COMPACT) if r.get("subtype") == "compact_boundary"]
    rec = record(cli, tmp_path / "b", CLAUDE_COMPACT, "claude-code")
    comp = rec["metadata"]["compaction"]
    assert comp["count"] == 1 and comp["summary_rows"] == 1
    [ev] = comp["events"]
    assert ev["trigger"] == boundary["compactMetadata"]["trigger"] == "manual"
    assert ev["pre_tokens"] == boundary["compactMetadata"]["preTokens"]


def test_compact_summary_without_a_boundary_row_is_counted(tmp_path, cli):
    lines = [ln for ln in CLAUDE_COMPACT.read_bytes().splitlines(keepends=True) if b'"compact_boundary"' not in ln]
    src = tmp_path / "no-boundary.jsonl"
    src.write_bytes(b"".join(lines))
    rec = record(cli, tmp_path / "b", src, "claude-code")
    comp = rec["metadata"]["compaction"]
    assert comp["count"] == 1 and comp["summary_rows"] == 1
    assert comp["events"][0]["trigger"] is None


def test_codex_compaction_tokens_before(tmp_path, cli):
    before = None
    for r in rows(CODEX_OLD):
        if r.get("type") == "event_msg" and r["payload"].get("type") == "token_count" and r["payload"].get("info"):
            before = r["payload"]["info"]["last_token_usage"]["total_tokens"]
        if r.get("type") == "compacted":
            break
    rec = record(cli, tmp_path / "b", CODEX_OLD, "codex")
    [ev] = rec["metadata"]["compaction"]["events"]
    assert ev["pre_tokens"] == before and before > 0


# --------------------------------------------------------------------------
# repository, VCS, lifecycle


def _pi_in(repo: Path, tmp_path: Path) -> Path:
    header = rows(PI)[0]
    data = PI.read_bytes().replace(header["cwd"].encode(), str(repo).encode())
    dst = tmp_path / "sessions" / PI.name
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data)
    return dst


def test_pi_session_in_a_repository_reports_its_vcs_and_url(tmp_path, cli):
    repo = tmp_path / "widgets"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    commit(repo, "init", "2026-04-01T10:00:00Z", {"README.md": "# demo-app\n"})
    git("remote", "add", "origin", "https://someone:s3cr3t-token@git.example.com/acme/widgets.git", cwd=repo)
    rec = record(cli, tmp_path / "b", _pi_in(repo, tmp_path), "pi")
    assert rec["environment"]["vcs"]["type"] == "git"
    assert rec["task"]["repository_url"] == "https://git.example.com/acme/widgets"
    assert rec["task"]["repository"] == "acme/widgets"
    bucket_bytes = b"".join(p.read_bytes() for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert b"s3cr3t-token" not in bucket_bytes

    plain = record(cli, tmp_path / "b2", PI, "pi")  # its cwd is no repository here
    assert plain["environment"]["vcs"]["type"] == "none" and plain["task"]["repository_url"] is None


def test_codex_repository_url_from_the_session(tmp_path, cli):
    meta = rows(CODEX_NEW)[0]["payload"]["git"]
    rec = record(cli, tmp_path / "b", CODEX_NEW, "codex")
    host, path = meta["repository_url"].split("@", 1)[1].split(":", 1)  # git@host:owner/repo.git
    assert rec["task"]["repository_url"] == f"https://{host}/{path.removesuffix('.git')}"
    assert rec["task"]["repository"] == path.removesuffix(".git") == "acme/demo-app"


def test_lifecycle_final_once_a_patch_is_anchored(tmp_path, cli):
    original = 'def greet(name: str) -> str:\n    return f"hello, {name}"\n'
    edited = original + '\n\ndef farewell(name: str) -> str:\n    return f"goodbye, {name}"\n'
    repo = tmp_path / "project"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    commit(repo, "greet", "2026-06-12T15:20:00Z", {"src/app.py": original})
    bucket = tmp_path / "b"
    rec = record(cli, bucket, REAL_CLAUDE, "claude-code", "--project", repo)
    assert rec["lifecycle"] == "provisional" and not rec["outcome"]["committed"]
    commit(repo, "farewell", "2026-06-12T15:23:17Z", {"src/app.py": edited})
    res = cli("--bucket", bucket, "trail", "anchor", "--project", repo, "--json")
    assert res.exit_code == 0 and res.json["anchors_added"] == 1
    b = Bucket.open(bucket)
    row = b.find_trace(trace_id_for("claude-code", "164b9ad1-4c1b-4602-9102-5276951a1594"))
    assert b.trace_record(row["project"], row["trace_id"])["lifecycle"] == "final"
    assert verify_full(cli, bucket)["exit"] == 0


# --------------------------------------------------------------------------
# hooks, turn policy, carried context


def test_opentraces_hook_rows_are_kept(tmp_path, cli):
    raw = [r for r in rows(REAL_CLAUDE) if r.get("type") == "opentraces_hook"]
    rec = record(cli, tmp_path / "b", REAL_CLAUDE, "claude-code")
    hooks = rec["metadata"]["hooks"]
    counts: dict[str, int] = {}
    for r in raw:
        counts[r["event"]] = counts.get(r["event"], 0) + 1
    assert hooks["events"] == counts and counts["PreToolUse"] and counts["Stop"]
    for r in raw:
        if r["data"].get("tool_use_id"):
            assert r["event"] in hooks["tool_calls"][r["data"]["tool_use_id"]]
    [stop] = [r["data"] for r in raw if r["event"] == "Stop"]
    assert hooks["stops"][0]["git_head"] == stop["git"]["sha"] and hooks["stops"][0]["dirty"] == stop["git"]["dirty"]
    [patch] = rec["patches"]
    assert patch["capture_method"] == ["transcript", "hook_pretooluse", "hook_posttooluse"]


def test_claude_code_native_hook_rows_are_kept(tmp_path, cli):
    """Claude Code's own rows: ``hook_progress`` progress rows, ``hook_success`` attachments, ``stop_hook_summary``."""
    out = []
    tool_ids = []
    for r in rows(REAL_CLAUDE):
        if r.get("type") == "opentraces_hook":
            continue
        out.append(r)
        for b in (r.get("message") or {}).get("content") or []:
            if isinstance(b, dict) and b.get("type") == "tool_use":
                tool_ids.append((b["id"], b["name"], r))
    extra = []
    for i, (tid, name, r) in enumerate(tool_ids):
        for event in ("PreToolUse", "PostToolUse"):
            base = {"parentUuid": r["uuid"], "isSidechain": False, "sessionId": r["sessionId"], "timestamp": r["timestamp"],
                    "cwd": r["cwd"], "version": r.get("version")}
            extra.append({**base, "type": "progress", "uuid": f"p-{i}-{event}", "toolUseID": tid,
                          "data": {"type": "hook_progress", "hookEvent": event, "hookName": f"{event}:{name}",
                                   "command": "audit.sh"}})
            extra.append({**base, "type": "attachment", "uuid": f"a-{i}-{event}",
                          "attachment": {"type": "hook_success", "hookName": f"{event}:{name}", "toolUseID": tid,
                                         "hookEvent": event, "content": "", "stdout": "", "stderr": "", "exitCode": 0}})
    last = out[-1]
    extra.append({"parentUuid": last["uuid"], "isSidechain": False, "sessionId": last["sessionId"], "type": "system",
                  "subtype": "stop_hook_summary", "uuid": "stop-1", "timestamp": last["timestamp"], "hookCount": 2,
                  "hookInfos": [{"command": "a"}, {"command": "b"}], "hookErrors": ["b failed"],
                  "preventedContinuation": False, "stopReason": "", "hasOutput": False, "level": "suggestion",
                  "toolUseID": "stop-tool"})
    src = tmp_path / "native.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in out + extra))
    rec = record(cli, tmp_path / "b", src, "claude-code")
    hooks = rec["metadata"]["hooks"]
    # a run told by a progress row and an attachment is one run
    assert hooks["events"] == {"PreToolUse": len(tool_ids), "PostToolUse": len(tool_ids), "Stop": 1}
    assert hooks["outcomes"] == {"success": 2 * len(tool_ids)}
    assert hooks["stops"][0]["hooks"] == 2 and hooks["stops"][0]["errors"] == 1
    assert rec["patches"][0]["capture_method"] == ["transcript", "hook_pretooluse", "hook_posttooluse"]


def test_codex_turn_policy_per_turn(tmp_path, cli):
    turns = [r["payload"] for r in rows(CODEX_NEW) if r.get("type") == "turn_context"]
    rec = record(cli, tmp_path / "b", CODEX_NEW, "codex")
    policy = rec["metadata"]["turn_policy"]
    distinct = []
    for t in turns:
        p = {k: t[k] for k in ("approval_policy", "sandbox_policy", "permission_profile", "model", "effort") if k in t}
        if not distinct or distinct[-1] != p:
            distinct.append(p)
    assert [{k: v for k, v in p.items() if k != "from_step"} for p in policy] == distinct and len(distinct) == 2
    # the second policy starts at the step of the second turn's prompt
    prompts = [s["step_index"] for s in rec["steps"] if s["role"] == "user"]
    assert [p["from_step"] for p in policy] == prompts[:2]


def test_carried_over_context_is_not_the_task(tmp_path, cli):
    raw = rows(CODEX_CARRIED)
    users = [r["payload"]["content"][0]["text"] for r in raw if r.get("type") == "response_item"
             and r["payload"].get("type") == "message" and r["payload"].get("role") == "user"]
    assert users[0].startswith("Prior transcript context")
    rec = record(cli, tmp_path / "b", CODEX_CARRIED, "codex")
    assert rec["task"]["description"] == users[1]
    assert rec["metadata"]["carried_context_steps"] == [0]
    # a rollout whose first prompt precedes its turn_context but was typed by the user keeps it as the task
    old = record(cli, tmp_path / "b2", CODEX_OLD, "codex")
    typed = next(r["payload"]["message"] for r in rows(CODEX_OLD)
                 if r.get("type") == "event_msg" and r["payload"].get("type") == "user_message")
    assert old["task"]["description"] == typed and "carried_context_steps" not in old["metadata"]
