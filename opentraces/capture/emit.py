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
PACK_FORMAT = "opentraces.context.pack.v1"
LAYER_FORMAT = "opentraces.context.layer.v1"


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
    if p.operation == "create":
        head += ["new file mode 100644\n", "--- /dev/null\n", f"+++ b/{gpath}\n"]
    elif p.operation == "delete":
        head += ["deleted file mode 100644\n", f"--- a/{gpath}\n", "+++ /dev/null\n"]
    else:
        head += [f"--- a/{gpath}\n", f"+++ b/{gpath}\n"]
    return "".join(head) + body


def _context_events(parsed: ParsedSession, project: str, trace_id: str, blobs: PendingBlobs,
                    prior: list[dict[str, Any]]) -> tuple[list[dict], dict]:
    """context.layer + context.node events for the steps not recorded yet.

    Every message the model saw gets an id ``mid`` = sha256 of its canonical
    JSON, which names its parent's ``mid`` (a Merkle chain, so a node's id
    pins its whole history). The messages first seen in this capture are
    stored together in ONE context blob, a pack (``opentraces.context.pack.v1``),
    not one file each: each message is stored once, and a capture writes one
    context file per session however long it is. A node event lists the
    messages it makes reachable first, as ``[mid, index in its pack]``.
    """
    events: list[dict] = []
    layer_ids: dict[str, str] = {}
    for ltype in sorted(parsed.layers):
        blob = blobs.add_context(project, {"format": LAYER_FORMAT, "layer_type": ltype, "content": parsed.layers[ltype]})
        layer_ids[ltype] = blob
        events.append(make_event("context.layer", project, trace_id, None, parsed.started_at, {"layer_type": ltype, "blob": blob}))
    stored: set[str] = set()
    known: set[tuple[int, str]] = set()
    for ev in prior:
        if ev["kind"] == "context.node":
            stored.update(m for m, _ in ev["payload"].get("messages", []))
            known.add((ev["step"], ev["payload"]["node_id"]))
    by_uuid = {m.uuid: m for m in parsed.messages}
    mid_of: dict[str, str] = {}  # message uuid -> mid
    obj_of: dict[str, dict] = {}  # mid -> message object

    def mid_for(uuid: str) -> str:
        chain = []
        cur: str | None = uuid
        seen = set()
        while cur is not None and cur in by_uuid and cur not in mid_of and cur not in seen:
            seen.add(cur)
            chain.append(by_uuid[cur])
            cur = None if by_uuid[cur].kind == "compaction_summary" else by_uuid[cur].parent
        parent = mid_of.get(cur) if cur is not None else None
        for m in reversed(chain):
            obj = {"format": MESSAGE_FORMAT, "uuid": m.uuid, "role": m.role, "kind": m.kind, "time": m.time,
                   "sidechain": m.sidechain, "content": m.content, "parent": parent}
            parent = address(canonical_json(obj))
            mid_of[m.uuid] = parent
            obj_of[parent] = obj
        return mid_of[uuid]

    pack: list[dict] = []
    index_in_pack: dict[str, int] = {}
    pending: list[tuple[Any, dict]] = []
    nodes = 0
    for st in parsed.steps:
        if not st.context_leaf or st.context_leaf not in by_uuid:
            continue
        leaf = mid_for(st.context_leaf)
        nodes += 1
        node_id = address(canonical_json({"leaf": leaf, "layers": layer_ids}))
        if (st.index, node_id) in known:
            continue
        new: list[str] = []
        cur: str | None = leaf
        while cur is not None and cur not in stored and cur not in index_in_pack and cur in obj_of:
            new.append(cur)
            cur = obj_of[cur]["parent"]
        for mid in reversed(new):
            index_in_pack[mid] = len(pack)
            pack.append(obj_of[mid])
        branch = "sidechain" if by_uuid[st.context_leaf].sidechain else "main"
        pending.append((st, {"node_id": node_id, "leaf": leaf, "layers": layer_ids, "branch": branch,
                             "messages": [[mid, index_in_pack[mid]] for mid in reversed(new)]}))
    pack_addr = blobs.add_context(project, {"format": PACK_FORMAT, "messages": pack}) if pack else None
    for st, payload in pending:
        payload["pack"] = pack_addr if payload["messages"] else None
        events.append(make_event("context.node", project, trace_id, st.index, st.time, payload))
    summary = {"node_count": nodes, "message_count": len(mid_of), "layer_count": len(layer_ids)}
    return events, summary


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
    prior: list[dict[str, Any]],
) -> tuple[list[dict], PendingBlobs]:
    """Every event this session yields, given the trace's ``prior`` events
    (the caller drops those already stored)."""
    blobs = PendingBlobs()
    slug = project.slug
    prior_sources = [e["payload"] for e in prior if e["kind"] == "source.captured"]
    prior_context = [e for e in prior if e["kind"] == "context.node"]
    events = source_events(parsed.agent, name, data, slug, trace_id, parsed.ended_at, prior_sources, blobs)
    events.append(make_event("trace.started", slug, trace_id, None, parsed.started_at, {
        "agent": parsed.agent, "session_id": parsed.session_id,
    }))
    ctx_events, ctx_summary = _context_events(parsed, slug, trace_id, blobs, prior_context)
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
    where: dict[str, Any] = {}  # what the project's repository says (only when there is one)
    if project.root_commit:
        where["vcs"] = "git"
    if project.repository_url:
        where["repository_url"] = project.repository_url
    events.append(make_event("trace.finished", slug, trace_id, None, parsed.ended_at, {
        **where,
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

