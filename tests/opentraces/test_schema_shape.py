"""The pydantic-free TraceRecord fold must equal what opentraces-schema produces."""

from pathlib import Path

import pytest
from opentraces_schema import SCHEMA_VERSION, GitAnchor, GitLink, Patch, TraceRecord

from opentraces.capture import agent_module
from opentraces.capture.emit import session_events
from opentraces.ids import trace_id_for
from opentraces.project import resolve_project
from opentraces.projections import schema
from opentraces.projections.fold import fold_trace

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "fixtures" / "real-sessions"


def test_templates_equal_installed_schema_defaults():
    assert schema.SCHEMA_VERSION == SCHEMA_VERSION
    assert schema.TRACE_DEFAULTS == TraceRecord(trace_id="", session_id="", agent={"name": ""}).model_dump(mode="json")
    assert schema.PATCH_DEFAULTS == Patch(patch_id="", file_path="").model_dump(mode="json")
    assert schema.ANCHOR_DEFAULTS == GitAnchor(last_searched_at="", found=False).model_dump(mode="json")
    assert schema.LINK_DEFAULTS == GitLink(revision="", tier="orphan").model_dump(mode="json")


SESSIONS = [("claude-code", p) for p in sorted((REPO / "fixtures" / "claude").glob("*.jsonl"))]
SESSIONS += [("claude-code", p) for p in sorted((SHARED / "claude").glob("*.jsonl"))]
SESSIONS += [("codex", p) for p in sorted((REPO / "fixtures" / "codex").glob("*.jsonl"))]
SESSIONS += [("codex", p) for p in sorted((SHARED / "codex_cli").glob("*.jsonl"))]
SESSIONS += [("pi", p) for p in sorted((REPO / "fixtures" / "pi").glob("*.jsonl"))]
SESSIONS += [("pi", p) for p in sorted((SHARED / "pi").glob("*.jsonl"))]


@pytest.mark.parametrize("agent,path", SESSIONS, ids=[p.name for _, p in SESSIONS])
def test_fold_is_the_schema_normal_form(agent, path):
    mod = agent_module(agent)
    data = path.read_bytes()
    parsed = mod.parse(data, path.name)
    trace_id = trace_id_for(parsed.agent, parsed.session_id)
    events, _ = session_events(parsed, data, path.name, resolve_project(parsed.cwd or "/x"), trace_id, [])
    rec = fold_trace(trace_id, events)
    model = TraceRecord.model_validate(rec)
    assert model.model_dump(mode="json") == rec
    assert model.compute_content_hash() == rec["content_hash"]
    assert schema.validate_record(rec) is None
    broken = dict(rec, steps=[dict(rec["steps"][0], role="robot")] + rec["steps"][1:])
    assert schema.validate_record(broken) is not None
