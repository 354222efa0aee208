"""The TraceRecord shape (opentraces-schema 0.9.0) without importing pydantic.

Importing opentraces_schema costs ~0.4 s (pydantic), which would dominate a
Claude Code hook. The fold therefore fills defaults from the templates below
and computes ``content_hash`` exactly as ``TraceRecord.compute_content_hash``
does. ``validate_record`` (used by ``verify --full`` and the tests) checks
the result with the real pydantic model; a test asserts the templates equal
the installed schema's defaults, so a schema upgrade cannot drift silently.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

SCHEMA_VERSION = "0.9.0"

TRACE_DEFAULTS: dict[str, Any] = {
    "agent": {"model": None, "name": "", "version": None},
    "attribution": None, "content_hash": None, "context_tree_summary": {}, "dependencies": [],
    "environment": {"abi_tag": None, "arch": None, "interpreter": None, "language_ecosystem": [], "os": None,
                    "platform": None, "resolved_dependencies": None, "shell": None,
                    "vcs": {"base_commit": None, "branch": None, "diff": None, "type": "none"}},
    "execution_context": None, "generation_index": 0, "git_links": [], "lifecycle": "provisional", "metadata": {},
    "metrics": {"cache_hit_rate": None, "estimated_cost_usd": None, "total_cache_creation_tokens": 0,
                "total_cache_read_tokens": 0, "total_duration_s": None, "total_input_tokens": 0,
                "total_output_tokens": 0, "total_steps": 0},
    "outcome": {"commit_sha": None, "committed": False, "description": None, "reward": None, "reward_source": None,
                "signal_confidence": "derived", "signal_source": "deterministic", "success": None,
                "terminal_state": None},
    "patches": [], "schema_version": SCHEMA_VERSION,
    "security": {"classifier_version": None, "flags_reviewed": 0, "redactions_applied": 0, "scanned": False},
    "session_id": "", "steps": [], "system_prompts": {},
    "task": {"base_commit": None, "description": None, "repository": None, "repository_url": None, "source": None},
    "timestamp_end": None, "timestamp_start": None, "tool_definitions": [], "trace_id": "",
}
PATCH_DEFAULTS: dict[str, Any] = {
    "anchor": None, "capture_method": [], "file_path": "", "limitations": [], "patch_id": "",
    "snapshot_after_id": None, "snapshot_before_id": None, "step_index": None, "superseded_by": [],
    "tool_call_id": None,
}
ANCHOR_DEFAULTS: dict[str, Any] = {
    "blob_sha": None, "commit_sha": None, "evidence_firmness": None, "evidence_tier": None, "found": False,
    "git_patch_id": None, "last_searched_at": "", "path": None,
}
LINK_DEFAULTS: dict[str, Any] = {
    "branch": None, "commit_reachable": None, "content_alive": None, "repo_url": None, "revision": "",
    "tier": "orphan", "vcs_type": "git",
}


def _merge(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and out[key]:
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def normalize_record(rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` with every TraceRecord default filled in (steps come normalized)."""
    out = _merge(TRACE_DEFAULTS, rec)
    patches = []
    for p in out["patches"]:
        p = _merge(PATCH_DEFAULTS, p)
        if p["anchor"] is not None:
            p["anchor"] = _merge(ANCHOR_DEFAULTS, p["anchor"])
        patches.append(p)
    out["patches"] = patches
    out["git_links"] = [_merge(LINK_DEFAULTS, link) for link in out["git_links"]]
    return out


def content_hash(rec: dict[str, Any]) -> str:
    """Same bytes as ``TraceRecord.compute_content_hash`` (default separators)."""
    data = {k: v for k, v in rec.items() if k not in ("content_hash", "trace_id")}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def validate_record(rec: dict[str, Any]) -> str | None:
    """None if ``rec`` is exactly what the pydantic model would produce, else why not."""
    from opentraces_schema import TraceRecord
    from pydantic import ValidationError

    try:
        model = TraceRecord.model_validate(rec)
    except ValidationError as exc:
        first = exc.errors()[0]
        return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
    if model.model_dump(mode="json") != rec:
        return "record is not in the schema's normal form"
    if model.compute_content_hash() != rec.get("content_hash"):
        return "content_hash does not match the record"
    return None
