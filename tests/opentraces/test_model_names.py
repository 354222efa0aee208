"""Model names in the form the schema documents (``provider/model-name``), the same for every agent
(issue #10): Claude Code's bare names, Codex's bare names, Pi's own provider ids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opentraces.projections.models import schema_model

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "fixtures" / "real-sessions"


@pytest.mark.parametrize("raw,want", [
    ("claude-opus-4-8", "anthropic/claude-opus-4-8"), ("gpt-5.3-codex", "openai/gpt-5.3-codex"),
    ("openai-codex/gpt-5.5", "openai/gpt-5.5"), ("o3-mini", "openai/o3-mini"), ("gemini-2.5-pro", "google/gemini-2.5-pro"),
    ("anthropic/claude-sonnet-4-20250514", "anthropic/claude-sonnet-4-20250514"), ("<synthetic>", "<synthetic>"),
    (None, None), ("", None),
])
def test_schema_model(raw, want):
    assert schema_model(raw) == want


def test_every_agent_gets_provider_slash_model(cli, tmp_path):
    files = {"claude-code": sorted((ROOT / "fixtures" / "claude").glob("*.jsonl")) + sorted((SHARED / "claude").glob("*.jsonl")),
             "codex": sorted((ROOT / "fixtures" / "codex").glob("*.jsonl")) + sorted((SHARED / "codex_cli").glob("*.jsonl")),
             "pi": sorted((ROOT / "fixtures" / "pi").glob("*.jsonl")) + sorted((SHARED / "pi").glob("*.jsonl"))}
    bucket = tmp_path / "b"
    for agent, paths in files.items():
        assert cli("--bucket", bucket, "capture", agent, *paths, "--json").exit_code == 0
    import orjson

    seen = {}
    for tj in bucket.glob("traces/v1/*/*/trace.json"):
        rec = orjson.loads(tj.read_bytes())
        m = rec["agent"]["model"]
        if m is None:
            continue
        assert re.fullmatch(r"(anthropic|openai|google)/[\w.\-]+", m), (rec["agent"]["name"], m)
        for st in rec["steps"]:
            if st.get("model") and st["model"] != "<synthetic>":
                assert "/" in st["model"], st["model"]
        seen[rec["agent"]["name"]] = m
    assert set(seen) == {"claude-code", "codex-cli", "pi"}
    assert not any(m.startswith("openai-codex/") for m in seen.values())
