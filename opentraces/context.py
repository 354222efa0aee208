"""What the model saw at a step: walk a context node's message chain.

Each message has an id ``mid`` (sha256 of its canonical JSON, which names its
parent's mid). A ``context.node`` event names its leaf mid and lists the
messages it stored first as ``[mid, index]`` in its pack blob; reading a
step's context follows the parent mids from the leaf, loading each pack
once and checking every message against its mid.
"""

from __future__ import annotations

from typing import Any

from .blobs import read_context
from .bucket import Bucket
from .encoding import address, canonical_json
from .errors import CorruptionError, NotFoundError


def context_at(bucket: Bucket, project: str, trace_id: str, step: int | None) -> dict[str, Any]:
    events = sorted(bucket.trace_events(project, trace_id), key=lambda e: (e["time"], e["event_id"]))
    nodes = {e["step"]: e for e in events if e["kind"] == "context.node"}
    if not nodes:
        raise NotFoundError(f"trace {trace_id} has no context nodes", "capture the session again with this version")
    if step is None:
        step = max(nodes)
    if step not in nodes:
        near = ", ".join(str(s) for s in sorted(nodes)[:20])
        raise NotFoundError(f"step {step} of trace {trace_id} has no context node", f"try one of: {near}")
    where: dict[str, tuple[str, int]] = {}
    for ev in nodes.values():
        for mid, idx in ev["payload"].get("messages", []):
            where.setdefault(mid, (ev["payload"]["pack"], idx))
    node = nodes[step]["payload"]
    packs: dict[str, list] = {}
    messages = []
    mid = node["leaf"]
    while mid:
        if mid not in where:
            raise CorruptionError(f"message {mid} of trace {trace_id} is not listed by any context node",
                                  "run 'opentraces bucket verify --full'")
        pack, idx = where[mid]
        if pack not in packs:
            packs[pack] = read_context(bucket.root, project, pack).get("messages", [])
        try:
            msg = packs[pack][idx]
        except IndexError:
            msg = None
        if msg is None or address(canonical_json(msg)) != mid:
            raise CorruptionError(f"context pack {pack} does not hold message {mid}", "run 'opentraces bucket verify --full'")
        messages.append({k: msg.get(k) for k in ("uuid", "role", "kind", "time", "sidechain", "content")})
        mid = msg.get("parent")
    messages.reverse()
    layers = {t: read_context(bucket.root, project, a).get("content") for t, a in (node.get("layers") or {}).items()}
    return {"trace_id": trace_id, "step": step, "node_id": node["node_id"], "branch": node.get("branch"),
            "layers": layers, "messages": messages}
