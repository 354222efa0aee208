"""``opentraces trail anchor|show``: Git anchors of patches, and a trace's patches."""

from __future__ import annotations

import os

import click
import pygit2

from ..anchors import REPOS, anchor_all, anchor_project, load_repos
from ..bucket import Bucket
from ..errors import RefusedError
from ..project import resolve_project
from .output import Env, echo, run


@click.group()
def trail() -> None:
    """Trace Trails: what changed, and which commit accepted it."""


@trail.command("anchor")
@click.option("--project", "project_dir", type=click.Path(file_okay=False), default=None,
              help="Repository folder of the project to anchor (default: every known project on this machine).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def anchor_cmd(env: Env, project_dir: str | None, as_json: bool) -> None:
    """Find the commits that accepted captured patches (incremental; safe to re-run)."""

    def go():
        bucket = Bucket.open(env.bucket)
        if project_dir is not None:
            if not os.path.isdir(project_dir):
                raise RefusedError(f"{project_dir} is not a folder", "pass --project with the repository folder")
            project = resolve_project(project_dir)
            if not project.root_commit:
                raise RefusedError(f"{project_dir} is not a Git repository with commits",
                                   "pass --project with a Git repository folder")
        else:
            project = None
        if not bucket.exists():
            return _totals([]), _render_anchor, 0
        from ..writer import writing

        with writing(bucket) as writer:
            if project is None:
                reports = anchor_all(writer)
            else:
                repos = load_repos(bucket)
                if repos.get(project.slug) != project.root:
                    repos[project.slug] = project.root
                    bucket.write_state(REPOS, repos)
                try:
                    reports = [anchor_project(writer, project.slug, project.root)]
                except pygit2.GitError as exc:
                    raise RefusedError(f"cannot read the repository at {project.root} ({exc})",
                                       "check it with 'git fsck'") from None
        return _totals(reports), _render_anchor, 0

    run("trail.anchor", as_json, go)


def _totals(reports: list[dict]) -> dict:
    keys = ("patches_checked", "anchors_added", "commits_walked")
    return {"projects": reports, **{k: sum(r.get(k, 0) for r in reports) for k in keys}}


def _render_anchor(res: dict) -> None:
    for r in res["projects"]:
        if r.get("error"):
            echo(f"{r['project']:<28} skipped: {r['error']}")
            continue
        echo(f"{r['project']:<28} {r['patches_checked']} patch(es) checked, {r['anchors_added']} anchor(s) added, "
             f"{r['commits_walked']} commit(s) walked, {r.get('patches_pending', 0)} still unanchored")
    if not res["projects"]:
        echo("no project with a repository on this machine; run 'opentraces trail anchor --project DIR'")
    else:
        echo(f"{res['anchors_added']} anchor(s) added; {res['patches_checked']} patch(es) checked; "
             f"{res['commits_walked']} commit(s) walked")


@trail.command("show")
@click.argument("trace_id")
@click.option("--offline", is_flag=True, help="Accepted for symmetry: trail show reads no blobs (diffs are in the events).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show_cmd(env: Env, trace_id: str, offline: bool, as_json: bool) -> None:
    """A trace's patches in order, with their diffs and the commits that accepted them."""

    def go():
        b = Bucket.open(env.bucket)
        row = b.find_trace(trace_id)
        events = b.trace_events(row["project"], row["trace_id"])
        anchors: dict[str, list[dict]] = {}
        for e in events:
            if e["kind"] == "trail.anchor":
                anchors.setdefault(e["payload"].get("patch_id"), []).append(e)
        patches = []
        for e in sorted((e for e in events if e["kind"] == "trail.patch"),
                        key=lambda e: (e["payload"].get("seq", 0), e["time"], e["event_id"])):
            p = e["payload"]
            found = sorted(anchors.get(p["patch_id"], []),
                           key=lambda a: (a["payload"].get("rank", 100), a["time"], a["event_id"]))
            patches.append({
                "patch_id": p["patch_id"], "seq": p.get("seq"), "step": e.get("step"), "time": e["time"],
                "path": p.get("path"), "tool": p.get("tool"), "tool_call_id": p.get("tool_call_id"),
                "operation": p.get("operation"), "before": p.get("before"), "after": p.get("after"),
                "content_known": bool(p.get("before_known", True)) and bool(p.get("after_known", True)),
                "diff": p.get("diff") or "",
                "anchors": [{
                    "commit": a["payload"].get("commit"), "path": a["payload"].get("path"),
                    "blob": a["payload"].get("blob"), "evidence": a["payload"].get("evidence"),
                    "firmness": a["payload"].get("firmness"), "rank": a["payload"].get("rank"),
                    "time": a["time"],
                } for a in found],
            })
        return {"trace_id": row["trace_id"], "project": row["project"], "patches": patches}, _render_show, 0

    run("trail.show", as_json, go)


def _render_show(res: dict) -> None:
    ps = res["patches"]
    anchored = sum(1 for p in ps if p["anchors"])
    echo(f"trace {res['trace_id']}  ({res['project']}): {len(ps)} patch(es), {anchored} anchored")
    for p in ps:
        echo("")
        echo(f"patch {p['seq']}  step {p['step']}  {p['time']}  {p.get('tool') or '?'} {p.get('operation') or ''}  "
             f"{p['path']}" + ("" if p["content_known"] else "  [content partial]"))
        if p["anchors"]:
            for a in p["anchors"]:
                echo(f"  anchor {(a['commit'] or '?')[:12]}  {a['evidence']} ({a['firmness']})  {a['time']}")
        else:
            echo("  not anchored (run 'opentraces trail anchor' after committing)")
        diff = p["diff"]
        if diff:
            click.echo(diff if diff.endswith("\n") else diff + "\n", nl=False)
        else:
            echo("  (no diff recorded)")


def register(cli: click.Group) -> None:
    cli.add_command(trail)
