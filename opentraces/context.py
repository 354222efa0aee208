"""What the model saw at a step: walk a context node's message chain.

A context node names its leaf message blob; each message blob names its
parent blob, so the history is stored once and read back by following the
chain (DESIGN.md §4: storage linear in the session's message bytes).
"""

from __future__ import annotations

from typing import Any

from .blobs import read_context
from .bucket import Bucket
from .errors import NotFoundError


def context_at(bucket: Bucket, project: str, trace_id: str, step: int | None) -> dict[str, Any]:
    nodes = {e["step"]: e for e in sorted(bucket.trace_events(project, trace_id), key=lambda e: (e["time"], e["event_id"]))
             if e["kind"] == "context.node"}
    if not nodes:
        raise NotFoundError(f"trace {trace_id} has no context nodes", "capture the session again with this version")
    if step is None:
        step = max(nodes)
    if step not in nodes:
        near = ", ".join(str(s) for s in sorted(nodes)[:20])
        raise NotFoundError(f"step {step} of trace {trace_id} has no context node", f"try one of: {near}")
    node = nodes[step]["payload"]
    messages = []
    addr = node["leaf"]
    while addr:
        msg = read_context(bucket.root, project, addr)
        messages.append({k: msg.get(k) for k in ("uuid", "role", "kind", "time", "sidechain", "content")})
        addr = msg.get("parent")
    messages.reverse()
    layers = {t: read_context(bucket.root, project, a).get("content") for t, a in (node.get("layers") or {}).items()}
    return {"trace_id": trace_id, "step": step, "node_id": node["node_id"], "branch": node.get("branch"),
            "layers": layers, "messages": messages}
