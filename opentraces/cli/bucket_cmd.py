"""``opentraces bucket ...``: inspect, verify, repair, rebuild, prune."""

from __future__ import annotations

import click

from ..bucket import Bucket
from ..errors import ExitStatus
from ..maintenance.prune import prune
from ..maintenance.repair import SUBSTRATES, rebuild, repair
from ..maintenance.status import status
from ..maintenance.verify import verify
from .output import Env, echo, run
from ..writer import writing
from .progress import progress_bar

json_opt = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")


@click.group()
def bucket() -> None:
    """The local bucket: status, manifest, verify, repair, rebuild, prune, replay."""


@bucket.command("status")
@json_opt
@click.pass_obj
def status_cmd(env: Env, as_json: bool) -> None:
    """Counts and freshness, read from the manifest head only (never writes)."""

    def go():
        from .. import config as config_mod
        from ..security.tools import ready_tools

        res = status(Bucket(env.bucket), env.logs, ready_tools(config_mod.load(env.home), env.environ))
        return {"bucket": res}, _render_status, 0

    run("bucket.status", as_json, go)


def _render_status(res: dict) -> None:
    s = res["bucket"]
    echo(f"bucket   {s['bucket']}")
    echo(f"state    {s['state']}" + (f" ({'; '.join(s['reasons'])})" if s.get("reasons") else ""))
    echo(f"traces   {s['traces']} in {s['projects']} project(s)")
    for agent, n in sorted((s.get("by_agent") or {}).items()):
        echo(f"  {agent:<12} {n}")
    echo(f"events   {s['events']} in {s['batches']} batch(es) from {s.get('writers', 0)} writer(s)")
    if "patches" in s:
        echo(f"patches  {s['patches']} ({s['anchored']} anchored to a commit)")
    if s.get("mirror"):
        m = s["mirror"]
        echo(f"mirror   {m['state']}" + (f" (last update failed: {m['error']}; the next write retries)" if m.get("error") else ""))
    if s.get("push_gate"):
        g = s["push_gate"]
        held = ", ".join(f"{n} {k}" for k, n in g["held"].items() if n)
        echo(f"gate     {g['state']}" + (f" ({held}; 'opentraces bucket review' and 'opentraces bucket refilter')"
                                         if g["state"] == "closed" else
                                         " (policy off: pushes send unfiltered evidence)" if g["state"] == "off" else ""))
    if s.get("hook_failures"):
        echo(f"hooks    {s['hook_failures']} failed capture(s) logged; see $OPENTRACES_HOME/logs/hook-errors.log")
    if s.get("digest"):
        echo(f"digest   {s['digest']}")
    if s["state"] == "stale":
        echo("next     run 'opentraces bucket repair'")


@bucket.command("manifest")
@click.option("--heal", is_flag=True, help="Write the manifest (and projections) from events.")
@json_opt
@click.pass_obj
def manifest_cmd(env: Env, heal: bool, as_json: bool) -> None:
    """Print the manifest; --heal re-materializes it from canonical state."""

    def go():
        b = Bucket.open(env.bucket)
        healed = None
        if heal:
            with writing(b, catch_up=False) as w:
                healed = repair(w)
        m = b.manifest()
        if m is None and not heal:
            # side-effect-free fallback: fold in memory, write nothing
            m = _manifest_in_memory(b)
        out = {"manifest": m, "healed": healed}
        return out, lambda r: echo(_manifest_text(r["manifest"])), 0

    run("bucket.manifest", as_json, go)


def _manifest_in_memory(b: Bucket) -> dict | None:
    import orjson

    from ..projections import index as index_mod
    from ..projections import manifest as manifest_mod
    from ..projections.tracedir import render_trace
    from ..maintenance.scan import scan_batches

    scan = scan_batches(b)
    if not scan.batches:
        return None
    rows = []
    for (project, trace_id), evs in sorted(scan.by_trace.items()):
        tj = render_trace(trace_id, list(evs.values()))["trace.json"]
        rows.append(manifest_mod.trace_row(project, trace_id, orjson.loads(tj), tj, len(evs)))
    index = index_mod.build_index(scan.batches)
    head, _files = manifest_mod.build_manifest(rows, index_mod.summary(index), scan.names.as_json())
    return {**head, "traces": manifest_mod.sort_rows(rows)}


def _manifest_text(m: dict | None) -> str:
    if not m:
        return "no manifest (empty bucket)"
    lines = [f"digest {m['digest']}", f"traces {m['summary']['trace_count']}"]
    for r in m["traces"]:
        lines.append(f"{r['trace_id'][:12]}  {r['project']:<28} {r['agent']:<12} {r['steps']:>4} steps  {r['title']}")
    return "\n".join(lines)


@bucket.command("verify")
@click.option("--sample", type=click.IntRange(min=0), default=None, help="Check N blobs and traces (deterministic).")
@click.option("--full", is_flag=True, help="Check every blob, batch and projection.")
@json_opt
@click.pass_obj
def verify_cmd(env: Env, sample: int | None, full: bool, as_json: bool) -> None:
    """Recompute hashes and re-fold projections; exit 1 on problems."""
    if full and sample is not None:
        raise click.UsageError("use either --sample N or --full")

    def go():
        b = Bucket.open(env.bucket)
        with progress_bar("verifying", as_json) as cb:
            res = verify(b, sample=None if full else (100 if sample is None else sample), progress=cb)
        return {"verify": res}, _render_verify, 0 if res["ok"] else int(ExitStatus.PROBLEMS)

    run("bucket.verify", as_json, go)


def _render_verify(res: dict) -> None:
    v = res["verify"]
    echo(f"checked {v['batches_checked']} batches, {v['events_checked']} events, "
         f"{v['blobs_checked']}/{v['blobs_total']} blobs, {v['traces_checked']} traces")
    for p in v["problems"]:
        echo(f"{p['kind']:<20} {p['path']}  {p['detail']}")
    echo("ok" if v["ok"] else f"{len(v['problems'])} problem(s); run 'opentraces bucket repair' for projections")


@bucket.command("repair")
@json_opt
@click.pass_obj
def repair_cmd(env: Env, as_json: bool) -> None:
    """Re-project every trace, the index and the manifest from events + blobs."""

    def go():
        b = Bucket.open(env.bucket)
        with writing(b, catch_up=False) as w, progress_bar("repairing", as_json) as cb:
            res = repair(w, progress=cb)
        return {"repair": res}, lambda r: echo(
            f"{r['repair']['traces']} traces re-projected, {r['repair']['files_written']} file(s) written"), 0

    run("bucket.repair", as_json, go)


@bucket.group("trust")
def trust_group() -> None:
    """Signed batches: the writer keys this bucket trusts (docs/SECURITY.md)."""


def _trust(env: Env, as_json: bool, what: str, fn) -> None:
    def go():
        from .. import trust

        res = fn(trust, Bucket.open(env.bucket))
        return {"trust": res}, _render_trust, 0

    run(f"bucket.trust.{what}", as_json, go)


def _render_trust(r: dict) -> None:
    t = r["trust"]
    echo("enforced: pulls refuse batches no trusted key signed" if t["enforced"]
         else "not enforced: no root key pinned ('opentraces bucket trust init' on the first machine)")
    for k in t["keys"]:
        tags = [x for x, on in (("root", k["root"]), ("trusted", k["trusted"]), ("this writer", k["this_writer"])) if on]
        by = f"  endorsed by {', '.join(k['endorsed_by'])}" if k["endorsed_by"] else ""
        note = f"  ({k['note']})" if k["note"] else ""
        echo(f"{k['fingerprint']}  {', '.join(tags) or 'not trusted'}{note}{by}")
        echo(f"  {k['key']}")


@trust_group.command("list")
@json_opt
@click.pass_obj
def trust_list(env: Env, as_json: bool) -> None:
    """This writer's key, the pinned roots and every endorsed key."""
    _trust(env, as_json, "list", lambda t, b: t.summary(b))


@trust_group.command("init")
@click.option("--note", default="", help="A name for this machine's key (e.g. 'laptop').")
@json_opt
@click.pass_obj
def trust_init(env: Env, note: str, as_json: bool) -> None:
    """Make this writer's key the bucket's root: from now on pulls refuse untrusted batches."""
    _trust(env, as_json, "init", lambda t, b: t.init(b, note))


@trust_group.command("add")
@click.argument("key")
@click.option("--note", default="", help="A name for that key (e.g. 'ci-runner').")
@json_opt
@click.pass_obj
def trust_add(env: Env, key: str, note: str, as_json: bool) -> None:
    """Vouch for another writer's key (its 'bucket trust list' shows it); push to share it."""
    _trust(env, as_json, "add", lambda t, b: t.add(b, key, note))


@trust_group.command("pin")
@click.argument("key")
@json_opt
@click.pass_obj
def trust_pin(env: Env, key: str, as_json: bool) -> None:
    """Pin a root key before the first pull (instead of trusting the remote's root on first use)."""
    _trust(env, as_json, "pin", lambda t, b: t.pin(b, key))


@bucket.command("import")
@click.option("--from", "source", required=True, type=click.Path(file_okay=False),
              help="An opentraces 0.4.x home (e.g. ~/.opentraces) or its bucket folder; only read.")
@json_opt
@click.pass_obj
def import_cmd(env: Env, source: str, as_json: bool) -> None:
    """Bring every trace of an opentraces 0.4.x (PyPI) home into the bucket."""

    def go():
        from ..importing import import_reference
        from ..security import capture_filter_for

        b = Bucket.open(env.bucket)
        security = capture_filter_for(env.home, env.environ, env.user_home)
        with progress_bar("importing", as_json) as cb:
            res = import_reference(b, source, security=security, progress=cb).as_dict()
        return {"import": res}, _render_import, 0

    run("bucket.import", as_json, go)


def _render_import(r: dict) -> None:
    res = r["import"]
    for t in res["traces"]:
        how = t.get("how", "?")
        ours = (t.get("trace_id") or "-")[:12]
        why = f"  ({t['reason']})" if t.get("reason") and how != "recaptured" else ""
        echo(f"{how:10} {str(t.get('reference_trace_id'))[:12]:12} -> {ours:12} {t.get('agent') or '-':11} "
             f"+{t.get('new_events', 0)} events{why}")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(res["counts"].items())) or "nothing"
    echo(f"{len(res['traces'])} traces from {res['source']}: {counts}; {res['new_events']} new events")


@bucket.command("rebuild")
@click.option("--substrate", type=click.Choice(SUBSTRATES), default="all", show_default=True)
@json_opt
@click.pass_obj
def rebuild_cmd(env: Env, substrate: str, as_json: bool) -> None:
    """Refresh one derived substrate (or all) from canonical state."""

    def go():
        b = Bucket.open(env.bucket)
        with writing(b, catch_up=False) as w, progress_bar("rebuilding", as_json) as cb:
            res = rebuild(w, substrate, progress=cb)
        return {"rebuild": res}, lambda r: echo(
            f"{substrate}: {r['rebuild']['traces']} traces, {r['rebuild']['files_written']} file(s) written"), 0

    run("bucket.rebuild", as_json, go)


@bucket.command("prune")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@json_opt
@click.pass_obj
def prune_cmd(env: Env, dry_run: bool, as_json: bool) -> None:
    """Delete unreachable blobs and stale temp files (never events or trace.json)."""

    def go():
        b = Bucket.open(env.bucket)
        with writing(b, catch_up=False) as w:
            res = prune(w, dry_run=dry_run)

        def render(r):
            p = r["prune"]
            for rel in p["blobs"] + p["tempfiles"]:
                echo(("would delete " if dry_run else "deleted ") + rel)
            echo(f"{len(p['blobs'])} blob(s), {len(p['tempfiles'])} temp file(s)" + (" (dry run)" if dry_run else ""))

        return {"prune": res}, render, 0

    run("bucket.prune", as_json, go)


def _replay_fetching(env: Env, b: Bucket, repo: str, project: str | None, force: bool, offline: bool) -> dict:
    """Replay; a snapshot blob this bucket has not fetched is fetched (that trace's blobs) and replay runs again."""
    from .. import config
    from ..errors import OfflineError
    from ..gitmirror.replay import replay
    from ..sync.prefetch import prefetch
    from .remote_cmd import transport_for

    fetched: set[str] = set()
    while True:
        try:
            return replay(b, repo, project=project, force=force)
        except OfflineError as exc:
            trace = getattr(exc, "trace_id", None)
            if trace is None or trace in fetched or offline or not config.remote_url(env.home):
                why = "--offline" if offline else ("no remote is configured" if trace not in fetched else "the remote lacks it")
                raise OfflineError(f"a file snapshot of trace {trace} is not in this bucket ({why})",
                                   f"run 'opentraces bucket prefetch {trace}'") from None
            prefetch(b, transport_for(env), trace)
            fetched.add(trace)


@bucket.command("replay")
@click.option("--repo", "repo", required=True, type=click.Path(file_okay=False), help="A clone of the project.")
@click.option("--project", default=None, help="Project slug (default: the one matching the clone's root commit).")
@click.option("--force", is_flag=True, help="Replace a trail that holds events this bucket lacks (the old one is backed up).")
@click.option("--offline", is_flag=True, help="Never fetch missing blobs from the remote (exit 4 instead).")
@json_opt
@click.pass_obj
def replay_cmd(env: Env, repo: str, project: str | None, force: bool, offline: bool, as_json: bool) -> None:
    """Write the project's Trace Trail into a clone as refs/opentraces/local/events/v1."""

    def go():
        b = Bucket.open(env.bucket)
        res = _replay_fetching(env, b, repo, project, force, offline)

        def render(r):
            x = r["replay"]
            echo(f"{x['state']}: {x['ref']} -> {x['head'][:12]} ({x['events']} trail events, project {x['project']})")
            if x["notes_written"]:
                echo(f"notes: {x['notes_written']} commit(s) annotated in refs/notes/opentraces")
            if x["backup_ref"]:
                echo(f"old value kept as {x['backup_ref']}")

        return {"replay": res}, render, 0

    run("bucket.replay", as_json, go)


def _register_remote() -> None:
    from .remote_cmd import prefetch_cmd, remote
    from .security_cmd import refilter_cmd, review_cmd, security_cmd

    bucket.add_command(remote)
    bucket.add_command(prefetch_cmd)
    bucket.add_command(security_cmd)
    bucket.add_command(review_cmd)
    bucket.add_command(refilter_cmd)


_register_remote()
