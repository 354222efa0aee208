"""Turn a ParsedSession plus the session file's bytes into events and blobs.

Pure: the same bytes, project and prior source events give the same events
on every machine. Only facts from the session go into events (its own
timestamps, never the capture time).
"""

from __future__ import annotations

from typing import Any

import pygit2

from ..blobs import PendingBlobs
from ..encoding import address, canonical_json
from ..events import make_event
from ..project import Project, relative_path
from .session import ParsedSession, PatchRecord

CHUNK_SIZE = 8 * 1024 * 1024  # raw source chunks stay far below Git host object limits
MESSAGE_FORMAT = "opentraces.context.message.v1"


def _source_start(data: bytes, prior: list[dict[str, Any]]) -> int:
    """Where the new part of the file starts: the end of the longest prior
    range whose prefix hash still matches the file (an appended session),
    else 0 (a new or rewritten file is captured whole)."""
    for p in sorted(prior, key=lambda p: p.get("end", 0), reverse=True):
        end = p.get("end", 0)
        if 0 < end <= len(data) and p.get("prefix_sha256") == address(data[:end]):
            return end
    return 0


def source_events(
    agent: str, name: str, data: bytes, project: str, trace_id: str, time: str,
    prior: list[dict[str, Any]], blobs: PendingBlobs,
) -> list[dict]:
    start = _source_start(data, prior)
    if start == len(data) and prior:
        return []
    part = data[start:] if start else data
    chunks = []
    for off in range(0, len(part), CHUNK_SIZE) or [0]:
        piece = part[off : off + CHUNK_SIZE]
        chunks.append({"blob": blobs.add_raw(project, piece), "size": len(piece)})
    payload = {
        "agent": agent,
        "name": name,
        "start": start,
        "end": len(data),
        "size": len(part),
        "sha256": (part_sha := address(part)),
        "prefix_sha256": part_sha if start == 0 else address(data),
        "chunks": chunks,
    }
    return [make_event("source.captured", project, trace_id, None, time, payload)]


def patch_diff(p: PatchRecord, rel: str) -> str:
    """A unified diff ``git apply`` accepts at the project root."""
    gpath = rel.lstrip("/")
    if p.before_known and p.after_known:
        patch = pygit2.Patch.create_from(p.before, p.after, gpath, gpath)
        return patch.text or ""
    text = p.hunk_diff or ""
    if not text:
        return ""
    if not text.endswith("\n"):
        text += "\n"
    body = text
    if text.startswith("diff --git ") or text.startswith("--- "):
        lines = text.splitlines(keepends=True)
        if any(ln.startswith(("rename from", "copy from")) for ln in lines[:6]):
            return text  # a move: the parser's own header names both paths
        cut = next((i for i, ln in enumerate(lines) if ln.startswith("@@")), len(lines))
        body = "".join(lines[cut:])  # re-head the hunks with the project-relative path
    head = [f"diff --git a/{gpath} b/{gpath}\n"]
    if True:
        if p.operation == "create":
            head += ["new file mode 100644\n", "--- /dev/null\n", f"+++ b/{gpath}\n"]
        elif p.operation == "delete":
            head += ["deleted file mode 100644\n", f"--- a/{gpath}\n", "+++ /dev/null\n"]
        else:
            head += [f"--- a/{gpath}\n", f"+++ b/{gpath}\n"]
    return "".join(head) + body


def _context_events(parsed: ParsedSession, project: str, trace_id: str, blobs: PendingBlobs) -> tuple[list[dict], dict[int, str], dict]:
    """context.layer + context.node events; returns (events, step->node id, summary)."""
    events: list[dict] = []
    layer_ids: dict[str, str] = {}
    for ltype in sorted(parsed.layers):
        blob = blobs.add_context(project, {"format": "opentraces.context.layer.v1", "layer_type": ltype, "content": parsed.layers[ltype]})
        layer_ids[ltype] = blob
        events.append(make_event("context.layer", project, trace_id, None, parsed.started_at, {"layer_type": ltype, "blob": blob}))
    by_uuid = {m.uuid: m for m in parsed.messages}
    blob_of: dict[str, str] = {}  # message uuid -> blob address (Merkle chain over parents)
    listed: set[str] = set()  # blobs already cited by an earlier node of this trace
    node_of_step: dict[int, str] = {}
    nodes = 0

    def blob_for(uuid: str) -> str | None:
        if uuid in blob_of:
            return blob_of[uuid]
        chain = []
        cur: str | None = uuid
        seen = set()
        while cur is not None and cur in by_uuid and cur not in blob_of and cur not in seen:
            seen.add(cur)
            chain.append(by_uuid[cur])
            cur = None if by_uuid[cur].kind == "compaction_summary" else by_uuid[cur].parent
        parent_blob = blob_of.get(cur) if cur is not None else None
        for m in reversed(chain):
            blob_of[m.uuid] = blobs.add_context(project, {
                "format": MESSAGE_FORMAT, "uuid": m.uuid, "role": m.role, "kind": m.kind,
                "time": m.time, "sidechain": m.sidechain, "content": m.content, "parent": parent_blob,
            })
            parent_blob = blob_of[m.uuid]
        return blob_of.get(uuid)

    for st in parsed.steps:
        if not st.context_leaf or st.context_leaf not in by_uuid:
            continue
        leaf = blob_for(st.context_leaf)
        # blobs this node makes reachable for the first time, oldest first
        new: list[str] = []
        cur = st.context_leaf
        seen = set()
        while cur is not None and cur in blob_of and blob_of[cur] not in listed and cur not in seen:
            seen.add(cur)
            new.append(blob_of[cur])
            m = by_uuid[cur]
            cur = None if m.kind == "compaction_summary" else m.parent
        new.reverse()
        listed.update(new)
        leaf_msg = by_uuid[st.context_leaf]
        branch = "sidechain" if leaf_msg.sidechain else "main"
        node_id = address(canonical_json({"leaf": leaf, "layers": layer_ids}))
        node_of_step[st.index] = node_id
        nodes += 1
        events.append(make_event("context.node", project, trace_id, st.index, st.time, {
            "node_id": node_id, "leaf": leaf, "messages": new, "layers": layer_ids, "branch": branch,
        }))
    summary = {"node_count": nodes, "message_count": len(blob_of), "layer_count": len(layer_ids)}
    return events, node_of_step, summary


def _project_path(path: str, root: str, cwd: str | None) -> str:
    """``path`` relative to the project root; a session recorded in another
    checkout (its cwd outside ``root``, e.g. capture with --project) maps its
    cwd onto the root."""
    rel = relative_path(path, root)
    if rel.startswith("/") and cwd:
        alt = relative_path(path, cwd)
        if not alt.startswith("/"):
            return alt
    return rel


def session_events(
    parsed: ParsedSession, data: bytes, name: str, project: Project, trace_id: str,
    prior_sources: list[dict[str, Any]],
) -> tuple[list[dict], PendingBlobs]:
    """Every event this session yields (the caller drops those already stored)."""
    blobs = PendingBlobs()
    slug = project.slug
    events = source_events(parsed.agent, name, data, slug, trace_id, parsed.ended_at, prior_sources, blobs)
    events.append(make_event("trace.started", slug, trace_id, None, parsed.started_at, {
        "agent": parsed.agent, "session_id": parsed.session_id,
    }))
    ctx_events, _, ctx_summary = _context_events(parsed, slug, trace_id, blobs)
    for st in parsed.steps:
        events.append(make_event("trace.step", slug, trace_id, st.index, st.time, {"record": st.record, "rev": st.rev}))
    events.extend(ctx_events)
    for p in parsed.patches:
        rel = _project_path(p.path, project.root, parsed.cwd)
        before = blobs.add_raw(slug, p.before) if p.before_known and p.before is not None else None
        after = blobs.add_raw(slug, p.after) if p.after_known and p.after is not None else None
        diff = patch_diff(p, rel)
        patch_id = address(canonical_json({"trace_id": trace_id, "seq": p.seq, "path": rel, "diff": diff}))
        events.append(make_event("trail.patch", slug, trace_id, p.step, p.time, {
            "patch_id": patch_id, "seq": p.seq, "path": rel, "tool": p.tool_name,
            "tool_call_id": p.tool_call_id, "operation": p.operation,
            "before": before, "after": after,
            "before_known": p.before_known, "after_known": p.after_known, "diff": diff,
        }))
    cwd_rel = None
    if parsed.cwd:
        cwd_rel = relative_path(parsed.cwd, project.root)
    events.append(make_event("trace.finished", slug, trace_id, None, parsed.ended_at, {
        "rev": parsed.records,
        "agent_version": parsed.agent_version,
        "model": parsed.model,
        "task": parsed.task,
        "git_branch": parsed.git_branch,
        "git_commit": parsed.git_commit,
        "cwd": cwd_rel,
        "success": parsed.success,
        "terminal_state": parsed.terminal_state,
        "metadata": parsed.metadata,
        "context": ctx_summary,
        "skipped_lines": len(parsed.skipped),
    }))
    return events, blobs

