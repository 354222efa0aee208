"""``tool_calls[].duration_ms`` is the duration the agent recorded when it records one (issue #10):
Codex's ``exec_command_end.duration`` and ``metadata.duration_seconds``, Claude Code's
``toolUseResult.durationMs``; the gap between rows only when nothing was recorded."""

from __future__ import annotations

from pathlib import Path

import orjson

from opentraces.capture import claude_code, codex
from opentraces.capture.common import millis_between

FIX = Path(__file__).resolve().parents[3] / "fixtures"
CODEX = FIX / "codex" / "rollout-2026-03-14T10-01-59-019cf0a1-5b2e-7c41-9d3a-2f6b8e4c1a01.jsonl"


def _calls(parsed):
    return {c["tool_call_id"]: c for st in parsed.steps for c in st.record.get("tool_calls", [])}


def _recorded(path: Path) -> dict[str, tuple[int, str, str]]:
    """call id -> (recorded ms, time of the call row, time of the output row), read from the raw file."""
    calls, outs, rec = {}, {}, {}
    for line in path.read_bytes().splitlines():
        row = orjson.loads(line)
        p = row.get("payload") or {}
        if p.get("type") in ("function_call", "custom_tool_call"):
            calls[p["call_id"]] = row["timestamp"]
        if p.get("type") in ("function_call_output", "custom_tool_call_output"):
            outs[p["call_id"]] = row["timestamp"]
            out = p.get("output")
            if isinstance(out, str) and "duration_seconds" in out:
                rec[p["call_id"]] = round(orjson.loads(out)["metadata"]["duration_seconds"] * 1000)
        if p.get("type") == "exec_command_end" and isinstance(p.get("duration"), dict):
            d = p["duration"]
            rec[p["call_id"]] = round(d["secs"] * 1000 + d["nanos"] / 1e6)
    return {k: (v, calls[k], outs[k]) for k, v in rec.items() if k in calls and k in outs}


def test_codex_durations_are_the_recorded_ones():
    parsed = codex.parse(CODEX.read_bytes(), CODEX.name)
    calls = _calls(parsed)
    recorded = _recorded(CODEX)
    assert len(recorded) >= 5
    differs = 0
    for call_id, (ms, t_call, t_out) in recorded.items():
        assert calls[call_id]["duration_ms"] == ms, call_id
        differs += ms != millis_between(t_call, t_out)
    assert differs  # the rows' gap would have given other numbers


def test_claude_code_duration_ms_of_tool_use_result():
    path = FIX / "claude" / "claude-subagent-file.jsonl"
    parsed = claude_code.parse(path.read_bytes(), path.name)
    want = {}
    for line in path.read_bytes().splitlines():
        row = orjson.loads(line)
        tur = row.get("toolUseResult")
        content = (row.get("message") or {}).get("content")
        if isinstance(tur, dict) and "durationMs" in tur and isinstance(content, list):
            want[content[0]["tool_use_id"]] = tur["durationMs"]
    assert want
    calls = _calls(parsed)
    for call_id, ms in want.items():
        assert calls[call_id]["duration_ms"] == ms
