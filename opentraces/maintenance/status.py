"""``bucket status``: a constant-cost read of the manifest head and local state.

No blob enumeration, no trace rows: the cost does not grow with the bucket.
"""

from __future__ import annotations

import os
from typing import Any

from .. import statefiles
from ..bucket import Bucket


def status(bucket: Bucket, logs_dir: os.PathLike | None = None, ready_tools: list[str] | None = None) -> dict[str, Any]:
    """The bucket's state from the manifest head (constant cost). With ``ready_tools`` (the
    security tools on and ready on this machine) it also says whether the push gate is open."""
    bucket.check()
    out: dict[str, Any] = {"bucket": str(bucket.root), "exists": bucket.exists()}
    head = bucket.manifest_head()  # a damaged manifest.json (a truncated one too) stops status: exit 5
    # failed hooks matter most when nothing was captured yet: count them first
    out["hook_failures"] = _count_lines(os.path.join(logs_dir, "hook-errors.log")) if logs_dir else 0
    if head is None:
        out.update({"state": "empty" if not bucket.exists() or not bucket.batch_names() else "unprojected",
                    "traces": 0, "projects": 0, "events": 0, "batches": 0, "digest": None})
        if bucket.exists() and bucket.batch_names():
            out["state"] = "stale"
            out["reasons"] = ["manifest.json is missing"]
        return out
    summ = head.get("summary", {})
    batches = summ.get("batches", {})
    out.update({
        "state": "ok",
        "digest": head.get("digest"),
        "traces": summ.get("trace_count", 0),
        "projects": summ.get("project_count", 0),
        "by_project": summ.get("projects", {}),
        "by_agent": summ.get("agents", {}),
        "events": summ.get("event_count", 0),
        "patches": summ.get("patch_count", 0),
        "anchored": summ.get("anchored_count", 0),
        "batches": batches.get("batch_count", 0),
        "writers": len(batches.get("writers", {})),
    })
    reasons = []
    last = bucket.read_state(statefiles.LAST_BATCH)
    if last and last.get("name") and last.get("name") not in batches.get("writers", {}).values():
        reasons.append(f"batch {last['name']} is committed but not yet projected")
    if reasons:
        out["state"] = "stale"
        out["reasons"] = reasons
    out["mirror"] = _mirror(bucket, head.get("digest"))
    if ready_tools is not None:
        from ..security.gate import from_summary

        out["push_gate"] = from_summary(summ, ready_tools)
    return out


def _mirror(bucket: Bucket, digest: str | None) -> dict[str, Any]:
    """The Git mirror's state: one ref read and one commit message (constant cost)."""
    from ..gitmirror.state import recorded_state

    return recorded_state(bucket, digest)


def _count_lines(path: os.PathLike) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0
