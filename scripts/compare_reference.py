"""Side by side: the same sessions captured by opentraces (us) and by the reference (PyPI 0.4.13).

For every session shipped in ``fixtures/`` and ``../shared/fixtures/real-sessions/``
both implementations capture it (the reference in its own virtual
environment, see ``scripts/make_reference_home.py``), then each field a user
reads is checked against the raw session file itself. Per field it prints
on how many sessions each implementation has a value, and on how many that
value is right against the raw file ("-" where the raw file has nothing to
check against).

    python scripts/compare_reference.py [--json]

Truth is read from the raw rows with small, agent-specific readers below,
independent of both parsers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import make_reference_home as mrh  # noqa: E402

from opentraces.bucket import Bucket  # noqa: E402
from opentraces.capture import capture_paths, claude_code, codex, pi  # noqa: E402
from opentraces.repourl import canonical_url  # noqa: E402

MODULES = {"claude-code": claude_code, "codex-cli": codex, "pi": pi}


# --------------------------------------------------------------------------
# truth from the raw rows


def rows(path: Path) -> list[dict]:
    out = []
    for line in path.read_bytes().splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [b.get("text") for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
        return "\n".join(parts) if parts else None
    return None


def truth(agent: str, path: Path) -> dict[str, Any]:
    """What the raw file says, per field (absent key: nothing to check)."""
    rs = rows(path)
    t: dict[str, Any] = {"durations": {}, "outputs": {}}
    tin = tout = 0
    if agent == "claude-code":
        usage: dict[str, dict] = {}
        for r in rs:
            msg = r.get("message") if isinstance(r.get("message"), dict) else {}
            if r.get("type") == "user" and "task" not in t and not r.get("isMeta") and not r.get("isSidechain"):
                text = _text(msg.get("content"))
                if text and not text.lstrip().startswith("<") and not any(
                        isinstance(b, dict) and b.get("type") == "tool_result" for b in msg.get("content") or []):
                    t["task"] = text
            if r.get("type") == "assistant" and msg.get("usage") and msg.get("id"):
                usage[msg["id"]] = msg["usage"]
                t.setdefault("model", msg.get("model"))
            for b in msg.get("content") or [] if isinstance(msg.get("content"), list) else []:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    t["outputs"][b.get("tool_use_id")] = len(_text(b.get("content")) or "")
                    tur = r.get("toolUseResult")
                    if isinstance(tur, dict) and isinstance(tur.get("durationMs"), int):
                        t["durations"][b.get("tool_use_id")] = tur["durationMs"]
            if r.get("subtype") == "compact_boundary" or r.get("isCompactSummary"):
                t["compactions"] = t.get("compactions", 0) + (1 if r.get("subtype") == "compact_boundary" else 0)
        tin = sum(u.get("input_tokens", 0) for u in usage.values())
        tout = sum(u.get("output_tokens", 0) for u in usage.values())
    elif agent == "codex-cli":
        for r in rs:
            p = r.get("payload") if isinstance(r.get("payload"), dict) else {}
            if r.get("type") == "session_meta":
                url = (p.get("git") or {}).get("repository_url")
                if url:
                    t["repository_url"] = canonical_url(url)
            if r.get("type") == "turn_context" and p.get("model"):
                t.setdefault("model", p["model"])
            if r.get("type") == "event_msg" and p.get("type") == "user_message":
                t.setdefault("task", p.get("message"))
            if r.get("type") == "event_msg" and p.get("type") == "token_count" and p.get("info"):
                last = p["info"].get("last_token_usage") or {}
                tin += last.get("input_tokens", 0) - last.get("cached_input_tokens", 0)
                tout += last.get("output_tokens", 0)
            if r.get("type") == "event_msg" and p.get("type") == "exec_command_end" and isinstance(p.get("duration"), dict):
                d = p["duration"]
                t["durations"][p.get("call_id")] = round(d.get("secs", 0) * 1000 + d.get("nanos", 0) / 1e6)
            if r.get("type") == "response_item" and p.get("type") in ("function_call_output", "custom_tool_call_output"):
                out = p.get("output")
                if isinstance(out, str) and out.startswith("{"):
                    try:  # {"output": ..., "metadata": ...}: the tool's output is the inner text
                        inner = json.loads(out)
                        out = inner.get("output", out) if isinstance(inner, dict) else out
                    except ValueError:
                        pass
                t["outputs"][p.get("call_id")] = len(out if isinstance(out, str) else json.dumps(out))
            if r.get("type") == "compacted":
                t["compactions"] = t.get("compactions", 0) + 1
        if "task" not in t:  # rollouts without user_message events: the first user message after a turn began
            started = False
            for r in rs:
                p = r.get("payload") if isinstance(r.get("payload"), dict) else {}
                started = started or r.get("type") == "turn_context"
                if started and r.get("type") == "response_item" and p.get("role") == "user":
                    text = _text(p.get("content"))
                    if text and not text.lstrip().startswith("<"):
                        t["task"] = text
                        break
    elif agent == "pi":
        cost = 0.0
        for r in rs:
            msg = r.get("message") if isinstance(r.get("message"), dict) else {}
            if msg.get("role") == "user" and "task" not in t:
                t["task"] = _text(msg.get("content"))
            if msg.get("role") == "assistant":
                u = msg.get("usage") or {}
                tin += u.get("input", 0)
                tout += u.get("output", 0)
                if isinstance(u.get("cost"), dict):
                    cost += u["cost"].get("total", 0)
                    t["cost"] = round(cost, 6)
                t.setdefault("model", msg.get("model"))
            if msg.get("role") == "toolResult":
                t["outputs"][msg.get("toolCallId")] = len(_text(msg.get("content")) or "")
            if r.get("type") == "compaction":
                t["compactions"] = t.get("compactions", 0) + 1
    t["input_tokens"], t["output_tokens"] = tin, tout
    return t


# --------------------------------------------------------------------------
# the fields compared


def _obs(rec: dict) -> dict[str, int]:
    return {o.get("source_call_id"): len(o.get("content") or "") for s in rec.get("steps") or []
            for o in s.get("observations") or []}


def _durations(rec: dict) -> dict[str, Any]:
    return {c.get("tool_call_id"): c.get("duration_ms") for s in rec.get("steps") or [] for c in s.get("tool_calls") or []}


def _close(a: Any, b: float) -> bool:
    return isinstance(a, (int, float)) and abs(a - b) < 1e-6


def _eq_text(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.strip() == b.strip()


FIELDS: list[tuple[str, Callable[[dict], Any], Callable[[dict, dict], bool | None]]] = [
    ("task.description", lambda r: (r.get("task") or {}).get("description"),
     lambda r, t: _eq_text((r.get("task") or {}).get("description"), t.get("task")) if t.get("task") else None),
    ("agent.model (provider/model)", lambda r: (r.get("agent") or {}).get("model"),
     lambda r, t: ((r.get("agent") or {}).get("model") or "").endswith("/" + str(t["model"]).split("/")[-1])
     if t.get("model") else None),
    ("metrics.total_input_tokens", lambda r: (r.get("metrics") or {}).get("total_input_tokens"),
     lambda r, t: (r.get("metrics") or {}).get("total_input_tokens") == t["input_tokens"]),
    ("metrics.total_output_tokens", lambda r: (r.get("metrics") or {}).get("total_output_tokens"),
     lambda r, t: (r.get("metrics") or {}).get("total_output_tokens") == t["output_tokens"]),
    ("metrics.estimated_cost_usd", lambda r: (r.get("metrics") or {}).get("estimated_cost_usd"),
     lambda r, t: _close((r.get("metrics") or {}).get("estimated_cost_usd"), t["cost"]) if "cost" in t else None),
    ("tool_calls[].duration_ms = recorded", lambda r: [d for d in _durations(r).values() if d is not None] or None,
     lambda r, t: all(_durations(r).get(k) == v for k, v in t["durations"].items()) if t["durations"] else None),
    ("observations[].content complete", lambda r: _obs(r) or None,
     lambda r, t: all(_obs(r).get(k, -1) >= v for k, v in t["outputs"].items() if v) if t["outputs"] else None),
    ("steps[].snippets", lambda r: [s for st in r.get("steps") or [] for s in st.get("snippets") or []] or None,
     lambda r, t: None),
    ("metadata compaction count", lambda r: ((r.get("metadata") or {}).get("compaction") or {}).get("count"),
     lambda r, t: ((r.get("metadata") or {}).get("compaction") or {}).get("count") == t["compactions"]
     if t.get("compactions") else None),
    ("task.repository_url", lambda r: (r.get("task") or {}).get("repository_url"),
     lambda r, t: (r.get("task") or {}).get("repository_url") == t["repository_url"] if t.get("repository_url") else None),
    ("patches (with a diff in the trail)", lambda r: r.get("patches") or None, lambda r, t: None),
]


def compare(sessions: list[tuple[str, Path]], work: Path) -> dict[str, Any]:
    ref_home, results = mrh.build_home(work, [[a, str(p)] for a, p in sessions])
    ref_bucket = ref_home / "bucket"
    ref_by_path = {}
    manifest = json.loads((ref_bucket / "manifest.json").read_text())
    paths = {t["trace_id"]: t["trace_path"] for t in manifest["traces"]}
    for path, action, tid in results:
        if action == "new" and tid in paths:
            ref_by_path[path] = json.loads((ref_bucket / paths[tid]).read_text())
    ours = Bucket(work / "ours")
    our_by_path = {}
    for agent, path in sessions:
        rep = capture_paths(ours, MODULES[agent], [path])
        for c in rep.captured:
            row = ours.find_trace(c["trace_id"])
            our_by_path[str(path)] = ours.trace_record(row["project"], row["trace_id"])
    table = []
    for name, has, right in FIELDS:
        cell = {"field": name, "sessions": len(sessions), "ours_has": 0, "ref_has": 0, "ours_right": 0,
                "ref_right": 0, "checkable": 0}
        for agent, path in sessions:
            t = truth(agent, path)
            o, r = our_by_path.get(str(path)), ref_by_path.get(str(path))
            cell["ours_has"] += bool(o is not None and has(o) not in (None, [], ""))
            cell["ref_has"] += bool(r is not None and has(r) not in (None, [], ""))
            ok_o = right(o, t) if o is not None else False
            if ok_o is None:
                continue
            cell["checkable"] += 1
            cell["ours_right"] += bool(ok_o)
            cell["ref_right"] += bool(r is not None and right(r, t))
        table.append(cell)
    return {"sessions": [str(p) for _, p in sessions], "reference_captured": len(ref_by_path),
            "ours_captured": len(our_by_path), "fields": table}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    sessions = [(agent, p) for agent, files in mrh.SOURCES.items() for p in files]
    work = Path(tempfile.mkdtemp(prefix="ot-compare-"))
    try:
        res = compare(sessions, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        print(json.dumps(res, indent=2))
        return 0
    n = len(sessions)
    print(f"{n} sessions; captured by us: {res['ours_captured']}, by the reference 0.4.13: {res['reference_captured']}")
    print(f"{'field':40} {'has: us':>8} {'ref':>5}   {'right vs raw: us':>17} {'ref':>5}  (of checkable)")
    for c in res["fields"]:
        right = (f"{c['ours_right']:>17} {c['ref_right']:>5}  ({c['checkable']})" if c["checkable"] else f"{'-':>17} {'-':>5}")
        print(f"{c['field']:40} {c['ours_has']:>8} {c['ref_has']:>5}   {right}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
