"""``opentraces trace list|get`` and ``opentraces ctx``."""

from __future__ import annotations

import click

from ..bucket import Bucket
from ..context import context_at
from .output import Env, echo, run


@click.group()
def trace() -> None:
    """Read traces from the bucket."""


@trace.command("list")
@click.option("--project", default=None, help="Only this project slug (prefix).")
@click.option("--agent", default=None, help="Only this agent (claude-code, codex-cli, pi).")
@click.option("--since", default=None, help="Only traces started at or after this time (ISO 8601).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_cmd(env: Env, project, agent, since, limit, offset, as_json) -> None:
    def go():
        rows = Bucket.open(env.bucket).rows()
        if project:
            rows = [r for r in rows if r["project"].startswith(project)]
        if agent:
            rows = [r for r in rows if r["agent"] == agent]
        if since:
            rows = [r for r in rows if (r.get("started") or "") >= since]
        rows.sort(key=lambda r: (r.get("started") or "", r["trace_id"]), reverse=True)
        page = rows[offset: offset + limit]
        return {"traces": page, "total": len(rows), "offset": offset}, _render_list, 0

    run("trace.list", as_json, go)


def _render_list(res: dict) -> None:
    for r in res["traces"]:
        echo(f"{r['trace_id'][:12]}  {(r.get('started') or '')[:19]:<19}  {r['agent']:<11} {r['steps']:>4} steps "
             f"{r['patches']:>3} patches  {r['project']:<24} {r['title']}")
    shown = len(res["traces"])
    if res["total"] > res["offset"] + shown:
        echo(f"... {res['total'] - res['offset'] - shown} more (use --offset)")


@trace.command("get")
@click.argument("trace_id")
@click.option("--offline", is_flag=True, help="Accepted for symmetry: trace get reads no blobs.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def get_cmd(env: Env, trace_id: str, offline: bool, as_json: bool) -> None:
    """Show one trace (a short prefix of the id is enough)."""

    def go():
        b = Bucket.open(env.bucket)
        row = b.find_trace(trace_id)
        rec = b.trace_record(row["project"], row["trace_id"])
        return {"trace": rec, "project": row["project"]}, _render_get, 0

    run("trace.get", as_json, go)


def _render_get(res: dict) -> None:
    t = res["trace"]
    a = t["agent"]
    echo(f"trace    {t['trace_id']}  ({res['project']})")
    echo(f"session  {t['session_id']}  {a['name']} {a.get('version') or ''} {a.get('model') or ''}")
    echo(f"time     {t.get('timestamp_start')} .. {t.get('timestamp_end')}")
    echo(f"task     {(t['task'].get('description') or '').strip()[:300]}")
    m = t["metrics"]
    echo(f"steps    {m['total_steps']}  tokens in {m['total_input_tokens']} out {m['total_output_tokens']} "
         f"cache read {m['total_cache_read_tokens']}")
    tools: dict[str, int] = {}
    for s in t["steps"]:
        for c in s.get("tool_calls") or []:
            tools[c["tool_name"]] = tools.get(c["tool_name"], 0) + 1
    if tools:
        echo("tools    " + ", ".join(f"{k}×{v}" for k, v in sorted(tools.items(), key=lambda kv: -kv[1])))
    for p in t.get("patches") or []:
        anc = p.get("anchor") or {}
        where = f"-> {anc['commit_sha'][:12]} ({anc.get('evidence_tier')})" if anc.get("found") else "(not anchored)"
        echo(f"patch    step {p.get('step_index')}  {p['file_path']}  {where}")


@click.command("ctx")
@click.argument("trace_id")
@click.option("--step", type=int, default=None, help="Step index (default: the last step with context).")
@click.option("--offline", is_flag=True, help="Never fetch missing blobs from the remote (exit 4 instead).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def ctx(env: Env, trace_id: str, step: int | None, offline: bool, as_json: bool) -> None:
    """What the model saw at a step, loaded from context blobs (fetched from the remote when missing)."""

    def go():
        from .remote_cmd import fetch_on_demand

        b = Bucket.open(env.bucket)
        row = b.find_trace(trace_id)
        view = fetch_on_demand(env, b, row["trace_id"], offline,
                               lambda: context_at(b, row["project"], row["trace_id"], step))
        return {"context": view}, _render_ctx, 0

    run("ctx", as_json, go)


def _render_ctx(res: dict) -> None:
    v = res["context"]
    echo(f"trace {v['trace_id']} step {v['step']}: {len(v['messages'])} message(s) seen (node {v['node_id'][:19]})")
    for ltype, content in sorted((v.get("layers") or {}).items()):
        echo(f"--- layer {ltype}: {str(content)[:200]}")
    for m in v["messages"]:
        text = _text_of(m.get("content"))
        tag = f"{m['role']}/{m['kind']}" + (" [sidechain]" if m.get("sidechain") else "")
        echo(f"--- {tag} {m.get('time') or ''}")
        echo(text[:2000])


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for b in content:
            if isinstance(b, dict):
                if b.get("type") == "text":
                    parts.append(b.get("text", ""))
                elif b.get("type") == "tool_use":
                    parts.append(f"[tool_use {b.get('name')}] {str(b.get('input'))[:500]}")
                elif b.get("type") == "tool_result":
                    parts.append(f"[tool_result] {_text_of(b.get('content'))}")
                elif b.get("type") == "thinking":
                    parts.append(f"[thinking] {b.get('thinking', '')}")
                else:
                    parts.append(str(b)[:500])
            else:
                parts.append(str(b))
        return "\n".join(parts)
    return "" if content is None else str(content)
