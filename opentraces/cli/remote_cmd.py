"""``opentraces bucket remote status|diff|push|pull`` and ``opentraces bucket prefetch``."""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable, Iterator

import click

from .. import auth, config
from ..bucket import Bucket
from ..errors import ConfigError, OfflineError
from .output import Env, echo, run

json_opt = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
BASE_ENV_KEYS = ("PATH", "HOME", "SSH_AUTH_SOCK", "TMPDIR")


def transport_for(env: Env, url: str | None = None):
    """The configured remote with this machine's credential (a CI token from OPENTRACES_TOKEN wins)."""
    doc = config.load(env.home)
    url = url or config.get(doc, "bucket.remote")
    if not url:
        raise ConfigError("this bucket has no remote", "run 'opentraces setup bucket --remote URL'")
    cred = auth.load(env.home, env_token=env.environ.get("OPENTRACES_TOKEN"),
                     env_username=env.environ.get("OPENTRACES_USERNAME"))
    return make_transport(env, url, cred, doc)


def make_transport(env: Env, url: str, cred, doc: dict | None = None):
    """A Transport to ``url``; an encrypting one when this machine has a remote key (``bucket.encryption``
    in ``doc``, the loaded config.json)."""
    from ..sync.transport import Transport, local_url

    base = {k: env.environ[k] for k in BASE_ENV_KEYS if k in env.environ}
    fp = config.get(doc if doc is not None else config.load(env.home), "bucket.encryption")
    if not fp:
        return Transport(local_url(url), cred, env.home, base)
    from .. import remotekey
    from ..sync.crypt import EncryptedTransport

    return EncryptedTransport(local_url(url), cred, env.home, base, secret=remotekey.load(env.home, fp),
                              mirror=env.bucket / ".git", state_dir=env.bucket / ".state")


@contextlib.contextmanager
def git_progress(label: str, as_json: bool) -> Iterator[Callable[[str, int, int, int], None] | None]:
    """A rich bar fed by git's own progress lines (objects and bytes); nothing off a TTY or with --json."""
    if as_json or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("objects"),
            TextColumn("{task.fields[size]}")]
    with Progress(*cols, console=Console(stderr=True), transient=True) as prog:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int, size: int) -> None:
            if phase not in tasks:
                tasks[phase] = prog.add_task(f"{label}: {phase.lower()}", total=total, size="")
            shown = f"{size / 1e6:.1f} MB" if size else ""
            prog.update(tasks[phase], completed=done, total=total, size=shown)

        yield update


def fetch_on_demand(env: Env, bucket: Bucket, trace_prefix: str, offline: bool, fn: Callable[[], Any]) -> Any:
    """Run ``fn``; when it needs blobs this bucket has not fetched, fetch that trace's and run it again."""
    try:
        return fn()
    except OfflineError:
        if offline or not config.remote_url(env.home):
            why = "--offline" if offline else "no remote is configured"
            raise OfflineError(f"trace {trace_prefix}'s blobs are not in this bucket ({why})",
                               f"run 'opentraces bucket prefetch {trace_prefix}'") from None
    from ..sync.prefetch import prefetch

    prefetch(bucket, transport_for(env), trace_prefix)
    return fn()


@click.group("remote")
def remote() -> None:
    """The bucket's private Git remote: status, diff, push, pull."""


@remote.command("status")
@json_opt
@click.pass_obj
def status_cmd(env: Env, as_json: bool) -> None:
    """Compare with the remote (one ls-remote); never writes under the bucket."""
    from ..sync.status import status

    def go():
        res = status(Bucket.open(env.bucket, mirror=False), transport_for(env))
        code = 3 if res["state"] in ("unreachable", "unauthorized") else 0
        if code:  # the state is the answer; the reason still goes to stderr, as one line
            click.echo(f"error: {res.get('reason')}", err=True)

        def render(r):
            x = r["remote_status"]
            echo(f"{x['state']}  {x['url']}")
            if x.get("encrypted"):
                echo(f"encrypted  key {x['encrypted']}")
            if x.get("reason"):
                echo(f"reason   {x['reason']}")
            loc, rem = x.get("local") or {}, x.get("remote") or {}
            echo(f"local    digest {loc.get('digest')}  traces {loc.get('traces')}  batches {loc.get('batches')}")
            if rem:
                echo(f"remote   digest {rem.get('digest')}  writers {rem.get('writers')}  blob refs {rem.get('blob_refs')}")
            for side in ("local_ahead_refs", "remote_ahead_refs"):
                for n in x.get(side) or []:
                    echo(f"{side.split('_')[0]:<8} ahead: {n}")

        return {"remote_status": res}, render, code

    run("bucket.remote.status", as_json, go)


@remote.command("diff")
@json_opt
@click.pass_obj
def diff_cmd(env: Env, as_json: bool) -> None:
    """Traces, batches and blob sets each side has that the other lacks (read-only)."""
    from ..sync.status import diff

    def go():
        res = diff(Bucket.open(env.bucket, mirror=False), transport_for(env))
        code = 3 if res["state"] in ("unreachable", "unauthorized") else 0
        if code:
            click.echo(f"error: {res.get('reason')}", err=True)

        def render(r):
            x = r["remote_diff"]
            echo(f"state {x['state']}")
            for what in ("traces", "batches", "blob_sets"):
                for side, items in (x.get(what) or {}).items():
                    for item in items:
                        echo(f"{what:<8} {side:<12} {item}")

        return {"remote_diff": res}, render, code

    run("bucket.remote.diff", as_json, go)


@remote.command("push")
@json_opt
@click.pass_obj
def push_cmd(env: Env, as_json: bool) -> None:
    """Send what the remote lacks: blobs, events, trails, then the bucket ref (pulls first if needed)."""
    from ..sync.push import push

    from .security_cmd import push_gate

    def go():
        bucket = Bucket.open(env.bucket)
        gate = push_gate(env)
        state = gate(bucket)  # before the remote is even looked up: a refused push sends nothing
        with git_progress("push", as_json) as cb:
            res = push(bucket, transport_for(env), progress=cb)
        res["security_gate"] = state
        return {"push": res}, lambda r: echo(
            f"{r['push']['state']}: {len(r['push']['refs'])} ref(s), {r['push']['sent']['objects']} objects "
            f"({r['push']['sent']['bytes'] / 1e3:.0f} kB)"
            + ("; security policy off: nothing was filtered" if r["push"]["security_gate"] == "off" else "")), 0

    run("bucket.remote.push", as_json, go)


@remote.command("pull")
@click.option("--eager", is_flag=True, help="Also fetch every context and raw blob now (default: lazily, when read).")
@click.option("--adopt-refilter", is_flag=True,
              help="Take a re-filter another machine pushed: replace this bucket's copies of the re-filtered traces.")
@json_opt
@click.pass_obj
def pull_cmd(env: Env, eager: bool, adopt_refilter: bool, as_json: bool) -> None:
    """Fetch, verify and merge the remote's events; blobs stay remote until read (or --eager)."""
    from ..sync.pull import pull

    def go():
        with git_progress("pull", as_json) as cb:
            res = pull(Bucket.open(env.bucket), transport_for(env), eager=eager, progress=cb,
                       adopt_refilter=adopt_refilter)
        return {"pull": res}, lambda r: echo(
            f"{r['pull']['state']}: {r['pull']['batches']} batch(es), {len(r['pull']['traces'])} trace(s)"), 0

    run("bucket.remote.pull", as_json, go)


@click.command("prefetch")
@click.argument("trace_id")
@json_opt
@click.pass_obj
def prefetch_cmd(env: Env, trace_id: str, as_json: bool) -> None:
    """Fetch one trace's blobs (its blob ref only) so trace get, ctx and replay work offline."""
    from ..sync.prefetch import prefetch

    def go():
        with git_progress("prefetch", as_json) as cb:
            res = prefetch(Bucket.open(env.bucket), transport_for(env), trace_id, progress=cb)
        return {"prefetch": res}, lambda r: echo(
            f"{r['prefetch']['state']}: {r['prefetch']['files_written']} blob file(s) for trace {r['prefetch']['trace_id']}"), 0

    run("bucket.prefetch", as_json, go)
