"""``opentraces capture <agent> [PATH...] [--all] [--project DIR]``."""

from __future__ import annotations

import os

from pathlib import Path

import click

from ..bucket import Bucket
from ..capture import AGENTS, agent_module, capture_paths
from ..errors import RefusedError
from .output import Env, echo, run
from .progress import progress_bar


def session_files_under(folder: Path) -> list[Path]:
    """Every ``*.jsonl`` under ``folder`` that is not a folder (FIFOs and the like included, so
    capture can count them as skipped), plus every subfolder it could not read (counted too)."""
    out: list[Path] = []
    unreadable: list[Path] = []
    for dirpath, dirs, files in os.walk(folder, onerror=lambda exc: unreadable.append(Path(exc.filename))):
        dirs.sort()
        out += [Path(dirpath) / f for f in sorted(files) if f.endswith(".jsonl")]
    return sorted(out) + sorted(unreadable)


def _paths_for(mod, env: Env, paths: tuple[str, ...], sweep: bool) -> list[Path]:
    out: list[Path] = []
    if sweep:
        out += mod.discover(mod.default_root(env.user_home, env.environ))
    for p in paths:
        path = Path(p)
        if path.is_dir():  # a folder named explicitly: every session file in it
            out += session_files_under(path)
        elif path.exists():
            out.append(path)
        else:
            raise RefusedError(f"{p} does not exist", "pass a session file or folder, or use --all")
    if not out and not sweep:
        raise RefusedError("no session files given", "pass PATH... or --all")
    return out


def _render(res: dict) -> None:
    c = res["capture"]
    for item in c["captured"]:
        echo(f"captured {item['trace_id'][:12]}  {item['project']:<28} +{item['new_events']} events  {item['path']}")
    for s in c["skipped"]:
        echo(f"skipped  {s['path']}: {s['reason']}")
    echo(f"{len(c['captured'])} captured, {len(c['unchanged'])} unchanged, {len(c['skipped'])} skipped; "
         f"{c['events']} new events in {len(c['batches'])} batch(es)"
         + (f"; {c['lines_skipped']} unreadable line(s) skipped" if c["lines_skipped"] else ""))


def _capture(env: Env, agents: list[str], paths: tuple[str, ...], sweep: bool, project: str | None, as_json: bool) -> None:
    def go():
        from ..security import capture_filter_for

        bucket = Bucket.open(env.bucket)
        security = capture_filter_for(env.home, env.environ, env.user_home)
        merged: dict = {}
        for name in agents:
            mod = agent_module(name)
            files = _paths_for(mod, env, paths, sweep)
            with progress_bar(f"capturing {name}", as_json) as cb:
                rep = capture_paths(bucket, mod, files, project_dir=project, progress=cb, security=security).as_dict()
            for k, v in rep.items():
                merged[k] = merged.get(k, 0 if isinstance(v, int) else []) + v
        return {"capture": merged}, _render, 0

    run("capture", as_json, go)


@click.group(invoke_without_command=True)
@click.option("--all", "sweep", is_flag=True, help="Capture every session of every known agent.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def capture(ctx: click.Context, sweep: bool, as_json: bool) -> None:
    """Capture agent sessions into the bucket (incremental and idempotent)."""
    if ctx.invoked_subcommand is None:
        if not sweep:
            raise click.UsageError("name an agent (" + ", ".join(AGENTS) + ") or pass --all")
        _capture(ctx.obj, list(AGENTS), (), True, None, as_json)


def _agent_command(name: str) -> click.Command:
    @click.command(name, help=f"Capture {name} sessions (files or folders; --all: the agent's default folder).")
    @click.argument("paths", nargs=-1, type=click.Path())
    @click.option("--all", "sweep", is_flag=True, help="Read every session under the agent's default folder.")
    @click.option("--project", type=click.Path(file_okay=False), default=None,
                  help="Project folder to attribute the sessions to (default: each session's cwd).")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def cmd(env: Env, paths, sweep, project, as_json, hook=False, hook_timeout=None, notify=False, chain=None):
        if hook:  # run by Claude Code: payload on stdin, nothing on stdout, always exit 0
            from .setup_cmd import hook_cli

            hook_cli(env, hook_timeout)
        if notify:  # run by Codex after a turn: payload is the last argument, always exit 0
            from .setup_cmd import hook_cli

            hook_cli(env, hook_timeout, agent="codex", payload=(paths[-1] if paths else "").encode(), chain=chain)
        _capture(env, [name], paths, sweep, project, as_json)

    if name == "claude-code":  # set up by 'opentraces setup claude-code'
        click.option("--hook", is_flag=True, help="Run as Claude Code's Stop/SessionEnd hook (payload on stdin).")(cmd)
        click.option("--hook-timeout", type=float, default=None, hidden=True)(cmd)
    if name == "codex":  # set up by 'opentraces setup codex'
        click.option("--notify", is_flag=True, help="Run as Codex's notify program (payload: the last argument).")(cmd)
        click.option("--chain", default=None, hidden=True, help="The user's own notify program (JSON argv), run first.")(cmd)
        click.option("--hook-timeout", type=float, default=None, hidden=True)(cmd)
    return cmd


for _name in AGENTS:
    capture.add_command(_agent_command(_name))
