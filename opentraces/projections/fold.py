"""Fold a trace's events into its TraceRecord (``trace.json``).

Order-independent: for facts captured more than once as a session grew,
the version with the highest ``rev`` wins (ties broken by event id), so the
fold gives the same record whatever order events arrived in.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Iterable

from ..repourl import canonical_url, repository_name
from .cost import trace_cost
from .models import schema_model
from .schema import content_hash, normalize_record
from .snippets import step_snippets

TIER_LINK = {
    "exact_blob_hash": "tool_emitted",
    "exact_range_hash": "tool_emitted",
    "git_clean_range_hash": "tool_emitted",
    "patch_id": "tool_emitted",
    "formatter_divergent": "tool_emitted_with_divergence",
    "overlapping_hunk": "overlapping",
    "orphan": "orphan",
}


def _latest(cands: list[dict]) -> dict | None:
    if not cands:
        return None
    return max(cands, key=lambda e: (e["payload"].get("rev", 0), e["time"], e["event_id"]))


def _seconds(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    try:
        ta = _dt.datetime.fromisoformat(a.replace("Z", "+00:00"))
        tb = _dt.datetime.fromisoformat(b.replace("Z", "+00:00"))
    except ValueError:
        return None
    return round((tb - ta).total_seconds(), 3)


def _security(filtered: list[dict], cleared: list[dict]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """TraceRecord ``security`` and ``metadata.security`` from the trace's security events.

    The latest ``security.filtered`` event (its session time, then id) says
    what filtered the trace; a flag stays raised until a ``security.cleared``
    event covers every reason kind of that latest risk."""
    if not filtered:
        return {"scanned": False, "flags_reviewed": 0, "redactions_applied": 0, "classifier_version": None}, None
    last = max(filtered, key=lambda e: (e["time"], e["event_id"]))["payload"]
    risk = last.get("classifier")
    cleared_kinds: set[str] = set()
    for ev in cleared:
        cleared_kinds.update(ev["payload"].get("kinds") or [])
    flagged = bool(risk and risk.get("flagged"))
    is_cleared = flagged and set(risk.get("kinds") or []) <= cleared_kinds and bool(cleared)
    meta = {"policy": last.get("policy"), "tools": last.get("tools") or [], "version": last.get("version"),
            "redactions": last.get("redactions") or {}}
    if risk is not None:
        meta["risk"] = {"score": risk.get("score"), "reasons": risk.get("reasons") or [],
                        "kinds": risk.get("kinds") or [], "flagged": flagged, "cleared": is_cleared}
    sec = {"scanned": True, "flags_reviewed": len(cleared), "redactions_applied": sum((last.get("redactions") or {}).values()),
           "classifier_version": (risk or {}).get("version")}
    return sec, meta


def fold_trace(trace_id: str, events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Return the TraceRecord (as JSON-ready dict) for one trace."""
    started: list[dict] = []
    finished: list[dict] = []
    steps: dict[int, list[dict]] = {}
    nodes: dict[int, dict] = {}
    patches: dict[str, dict] = {}
    anchors: dict[str, list[dict]] = {}
    filtered: list[dict] = []
    cleared: list[dict] = []
    for ev in events:
        kind = ev["kind"]
        if kind == "trace.started":
            started.append(ev)
        elif kind == "trace.finished":
            finished.append(ev)
        elif kind == "trace.step":
            steps.setdefault(ev["step"], []).append(ev)
        elif kind == "context.node":
            cur = nodes.get(ev["step"])
            if cur is None or (ev["time"], ev["event_id"]) > (cur["time"], cur["event_id"]):
                nodes[ev["step"]] = ev
        elif kind == "trail.patch":
            patches[ev["payload"]["patch_id"]] = ev
        elif kind == "trail.anchor":
            anchors.setdefault(ev["payload"]["patch_id"], []).append(ev)
        elif kind == "security.filtered":
            filtered.append(ev)
        elif kind == "security.cleared":
            cleared.append(ev)
    st = _latest(started)
    fin = _latest(finished)
    if st is None:
        raise ValueError(f"trace {trace_id} has no trace.started event")
    sp = st["payload"]
    fp = fin["payload"] if fin else {}

    step_records = []
    for idx in sorted(steps):
        rec = dict(_latest(steps[idx])["payload"]["record"])
        if rec.get("model"):
            rec["model"] = schema_model(rec["model"])
        node = nodes.get(idx)
        rec["context_node_id"] = node["payload"]["node_id"] if node is not None else None
        rec["snippets"] = step_snippets(rec)
        step_records.append(rec)

    tin = sum(s.get("token_usage", {}).get("input_tokens", 0) for s in step_records)
    tout = sum(s.get("token_usage", {}).get("output_tokens", 0) for s in step_records)
    tcr = sum(s.get("token_usage", {}).get("cache_read_tokens", 0) for s in step_records)
    tcw = sum(s.get("token_usage", {}).get("cache_write_tokens", 0) for s in step_records)
    start_time = st["time"]
    end_time = fin["time"] if fin else None
    hit = tcr / (tin + tcr + tcw) if (tin + tcr + tcw) else None
    model = schema_model(fp.get("model"))
    fmeta = fp.get("metadata") or {}
    cost, cost_meta = trace_cost(step_records, model, fmeta.get("recorded_cost"))

    patch_rows = []
    found_anchors = []
    for pev in sorted(patches.values(), key=lambda e: (e["payload"]["seq"], e["event_id"])):
        pp = pev["payload"]
        anchor = None
        superseded: list[str] = []
        cands = sorted(anchors.get(pp["patch_id"], []), key=lambda e: (e["time"], e["event_id"]))
        if cands:
            best = min(cands, key=lambda e: (e["payload"].get("rank", 100), e["time"], e["event_id"]))
            bp = best["payload"]
            anchor = {
                "last_searched_at": best["time"],
                "found": True,
                "commit_sha": bp.get("commit"),
                "path": bp.get("path"),
                "blob_sha": bp.get("blob"),
                "evidence_tier": bp.get("evidence"),
                "evidence_firmness": bp.get("firmness", "firm_observed"),
            }
            superseded = [e["payload"]["commit"] for e in reversed(cands) if e["payload"].get("commit") != bp.get("commit")]
            found_anchors.append((best["time"], bp))
        patch_rows.append({
            "patch_id": pp["patch_id"],
            "file_path": pp["path"],
            "step_index": pev["step"],
            "tool_call_id": pp.get("tool_call_id"),
            "capture_method": ["transcript"],
            "anchor": anchor,
            "superseded_by": superseded,
            "limitations": [] if pp.get("before_known", True) and pp.get("after_known", True) else ["content_partial"],
        })
    outcome: dict[str, Any] = {
        "success": fp.get("success"),
        "terminal_state": fp.get("terminal_state"),
    }
    git_links = []
    if found_anchors:
        latest = max(found_anchors, key=lambda t: t[0])[1]
        outcome["committed"] = True
        outcome["commit_sha"] = latest.get("commit")
        seen = set()
        for _, bp in sorted(found_anchors, key=lambda t: t[0]):
            if bp.get("commit") in seen:
                continue
            seen.add(bp.get("commit"))
            git_links.append({"vcs_type": "git", "revision": bp.get("commit"), "branch": None,
                              "tier": TIER_LINK.get(bp.get("evidence"), "tool_emitted")})

    metadata = dict(fp.get("metadata") or {})
    if fp.get("cwd") is not None:
        metadata["cwd"] = fp["cwd"]
    if cost_meta is not None:
        metadata["cost"] = cost_meta
    repo_url = canonical_url(fmeta.get("repository_url")) or fp.get("repository_url")
    hooked = (fmeta.get("hooks") or {}).get("tool_calls") or {}
    for row in patch_rows:
        row["capture_method"] += [f"hook_{e.lower()}" for e in ("PreToolUse", "PostToolUse")
                                  if e in hooked.get(row["tool_call_id"], ())]
    security, sec_meta = _security(filtered, cleared)
    if sec_meta is not None:
        metadata["security"] = sec_meta
    record = {
        "trace_id": trace_id,
        "session_id": sp["session_id"],
        "timestamp_start": start_time,
        "timestamp_end": end_time,
        "execution_context": "devtime",
        "task": {"description": fp.get("task"), "source": "user_prompt" if fp.get("task") else None,
                 "repository": repository_name(repo_url), "repository_url": repo_url,
                 "base_commit": fp.get("git_commit")},
        "agent": {"name": sp["agent"], "version": fp.get("agent_version"), "model": model},
        "environment": {"vcs": {"type": "git" if (fp.get("git_branch") or fp.get("git_commit") or fp.get("vcs") == "git")
                                else "none",
                                "branch": fp.get("git_branch"), "base_commit": fp.get("git_commit")}},
        "steps": step_records,
        "outcome": outcome,
        "metrics": {
            "total_steps": len(step_records),
            "total_input_tokens": tin,
            "total_output_tokens": tout,
            "total_cache_read_tokens": tcr,
            "total_cache_creation_tokens": tcw,
            "total_duration_s": _seconds(start_time, end_time),
            "cache_hit_rate": round(hit, 6) if hit is not None else None,
            "estimated_cost_usd": cost,
        },
        "lifecycle": "final" if found_anchors else "provisional",
        "patches": patch_rows,
        "git_links": git_links,
        "context_tree_summary": dict(fp.get("context") or {}),
        "metadata": metadata,
        "security": security,
    }
    out = normalize_record(record)
    out["content_hash"] = content_hash(out)
    return out
