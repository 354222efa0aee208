"""``opentraces bucket security`` (the seed's inspector and policy switch) and ``opentraces config get|set``."""

from __future__ import annotations

import click

from .. import config as config_mod
from ..errors import RefusedError
from ..security import policy as pol
from .output import Env, echo, run


@click.command("security")
@click.option("--policy", default=None, help="Apply exactly this bundle: off, basic, recommended or strict.")
@click.option("--tool", "tools", multiple=True, help="A tool to switch (repeatable; with --enable or --disable).")
@click.option("--enable", is_flag=True, help="Turn the --tool(s) on.")
@click.option("--disable", is_flag=True, help="Turn the --tool(s) off.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.pass_obj
def security_cmd(env: Env, policy, tools, enable, disable, as_json) -> None:
    """Without flags: the active policy and tools (writes nothing). Flags change the machine-global flags."""

    def go():
        if policy is not None and (tools or enable or disable):
            raise RefusedError("--policy applies a whole bundle; it does not combine with --tool", "use one or the other")
        if tools and enable == disable:
            raise RefusedError("--tool needs exactly one of --enable or --disable", "add --enable or --disable")
        if (enable or disable) and not tools:
            raise RefusedError("--enable/--disable need --tool", "name the tool with --tool")
        if policy is not None and policy not in pol.POLICIES:
            raise RefusedError(f"unknown policy {policy!r}", f"use one of {', '.join(pol.POLICIES)}")
        for t in tools:
            if t not in pol.TOOLS:
                raise RefusedError(f"unknown security tool {t!r}", f"use one of {', '.join(pol.TOOLS)}")
        doc = config_mod.load(env.home)
        changes = {"enabled": [], "disabled": []}
        if policy is not None:
            changes = pol.apply_policy(doc, policy)
        elif tools:
            changes = pol.set_flags(doc, {t: bool(enable) for t in tools})
        if policy is not None or tools:
            _key_if_anonymizing(doc)
            config_mod.save(env.home, doc)
            for t in changes["disabled"]:
                click.echo(f"warning: turned off security.{t}.enabled (machine-global: capture-time filtering "
                           "reads the same flag)", err=True)

        def render(r):
            s = r["security"]
            echo(f"policy  {s['policy']}  (scope: {s['scope']})")
            for t, st in r["tool_states"].items():
                echo(f"  {st['state']:<11} {t:<16} {st['reason']}")

        from ..security.tools import tool_states

        return {"security": pol.describe(doc), "changes": changes,
                "tool_states": tool_states(doc, env.environ)}, render, 0

    run("bucket.security", as_json, go)


def _key_if_anonymizing(doc) -> None:
    """Create the pseudonym key when path_anonymizer is on, so two hooks never race to create it."""
    import secrets

    from ..security.tools import KEY_PATH

    if config_mod.get(doc, "security.path_anonymizer.enabled") and config_mod.get(doc, KEY_PATH) is None:
        config_mod.put(doc, KEY_PATH, secrets.token_hex(32))


@click.group("config")
def config_group() -> None:
    """Machine-global settings in $OPENTRACES_HOME/config.json (never inside the bucket)."""


_FLAGS = {f"security.{t}.enabled" for t in pol.TOOLS}
_TERMS = "security.business_logic.terms"  # comma-separated words business_logic redacts
_MODEL = "security.privacy_filter.model"  # an installed spaCy pipeline or its folder
_KEYS = _FLAGS | {"bucket.remote", _TERMS, _MODEL}


def _check_key(key: str) -> str:
    if key not in _KEYS:
        raise RefusedError(f"unknown key {key!r}", f"keys: bucket.remote, security.<tool>.enabled, {_TERMS}, {_MODEL}")
    return key


@config_group.command("get")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def get_cmd(env: Env, key: str, as_json: bool) -> None:
    """Print one setting."""

    def go():
        value = config_mod.get(config_mod.load(env.home), _check_key(key))
        if key in _FLAGS:
            value = bool(value)
        elif key == _TERMS:
            value = ",".join(value or [])
        return {"key": key, "value": value}, lambda r: echo("" if r["value"] is None else str(r["value"]).lower()
                                                           if isinstance(r["value"], bool) else str(r["value"])), 0

    run("config.get", as_json, go)


@config_group.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def set_cmd(env: Env, key: str, value: str, as_json: bool) -> None:
    """Change one setting (security flags take true or false)."""

    def go():
        _check_key(key)
        doc = config_mod.load(env.home)
        if key == _TERMS:
            stored = [t.strip() for t in value.split(",") if t.strip()]
            config_mod.put(doc, key, stored)
            changes = {"enabled": [], "disabled": []}
        elif key == _MODEL:
            stored = value.strip() or None
            config_mod.put(doc, key, stored)
            changes = {"enabled": [], "disabled": []}
        elif key in _FLAGS:
            if value.lower() not in ("true", "false"):
                raise RefusedError(f"{key} takes true or false, not {value!r}", f"run 'opentraces config set {key} true'")
            tool = key.split(".")[1]
            changes = pol.set_flags(doc, {tool: value.lower() == "true"})
            _key_if_anonymizing(doc)
            stored: object = value.lower() == "true"
        else:
            stored = config_mod.check_remote_url(value)
            config_mod.put(doc, key, stored)
            changes = {"enabled": [], "disabled": []}
        config_mod.save(env.home, doc)
        for t in changes["disabled"]:
            click.echo(f"warning: turned off security.{t}.enabled (machine-global)", err=True)
        return {"key": key, "value": stored, "changes": changes}, lambda r: echo(f"{r['key']} = {r['value']}"), 0

    run("config.set", as_json, go)


@click.command("review")
@click.argument("trace_ids", nargs=-1)
@click.option("--clear", "do_clear", is_flag=True, help="Let these flagged traces be pushed (recorded as an event).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def review_cmd(env: Env, trace_ids, do_clear, as_json) -> None:
    """Traces the classifier flagged (score and reasons, never the text); --clear TRACE... releases them."""
    import datetime as _dt

    from ..bucket import Bucket
    from ..security import review
    from ..writer import writing

    def go():
        bucket = Bucket.open(env.bucket)
        if do_clear:
            if not trace_ids:
                raise RefusedError("--clear needs the trace ids to clear", "list them with 'opentraces bucket review'")
            with writing(bucket) as w:
                done = review.clear(w, bucket, list(trace_ids), _dt.datetime.now(_dt.timezone.utc))
            return {"cleared": done}, lambda r: echo(f"cleared {len(r['cleared'])} trace(s); the push gate lets them through"), 0
        items = review.flagged(bucket)
        if trace_ids:
            items = [i for i in items if any(i["trace_id"].startswith(t) for t in trace_ids)]

        def render(r):
            if not r["flagged"]:
                echo("no flagged traces")
            for i in r["flagged"]:
                echo(f"{i['trace_id']}  score {i['score']}  {i['project']}  {i['title'] or ''}")
                for reason in i["reasons"]:
                    echo(f"    {reason}")
            if r["flagged"]:
                echo("clear after review: opentraces bucket review --clear TRACE_ID...")

        return {"flagged": items}, render, 0

    run("bucket.review", as_json, go)


def push_gate(env: Env):
    """The gate ``bucket remote push`` runs before any network traffic (issue #9)."""
    from ..security import gate as gate_mod
    from ..security.tools import ready_tools

    ready = ready_tools(config_mod.load(env.home), env.environ)

    def check(bucket) -> str:
        """Raise GateClosedError, or return the gate's state (open | off)."""
        from ..security.refilter import pending

        if pending(bucket):
            raise RefusedError("push refused, nothing sent: a re-filter did not finish",
                               "run 'opentraces bucket refilter' to finish it")
        g = gate_mod.evaluate(bucket.rows(), ready)
        if g.state == "closed":
            raise gate_mod.GateClosedError(g)
        return g.state

    return check


@click.command("refilter")
@click.option("--trace", "trace_ids", multiple=True, help="Only this trace (repeatable; default: every unfiltered or stale one).")
@click.option("--dry-run", is_flag=True, help="List the traces it would filter again; change nothing.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def refilter_cmd(env: Env, trace_ids, dry_run, as_json) -> None:
    """Filter traces again under the current policy; rewrites their events, blobs and the mirror's history."""
    from ..bucket import Bucket
    from ..security.refilter import refilter
    from ..security.tools import capture_filter
    from ..writer import writing

    def go():
        bucket = Bucket.open(env.bucket)
        filt = capture_filter(env.home, env.environ, env.user_home)
        if filt is None:
            raise RefusedError("the security policy is off: there is nothing to filter with",
                               "choose one first: 'opentraces bucket security --policy recommended'")
        with writing(bucket) as w:
            res = refilter(w, filt, list(trace_ids) or None, dry_run=dry_run)

        def render(r):
            r = r["refilter"]
            verb = "would re-filter" if r["dry_run"] else "re-filtered"
            echo(f"{verb} {len(r['traces'])} trace(s) under policy {r['policy']} (security version {r['version']})")
            if not r["dry_run"] and r["traces"]:
                echo(f"  {r['events_dropped']} old event(s) dropped, {r['events_written']} written, "
                     f"{r['batches_rewritten']} batch(es) re-chained; record {r.get('record')}")

        return {"refilter": res}, render, 0

    run("bucket.refilter", as_json, go)


def _setup_tool_command(tool: str) -> click.Command:
    @click.command(tool)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def cmd(env: Env, as_json: bool) -> None:
        def go():
            from ..errors import ConfigError
            from ..security.tools import ensure_key, tool_states

            doc = config_mod.load(env.home)
            probe = dict(doc)
            config_mod.put(probe, f"security.{tool}.enabled", True)
            state = tool_states(probe, env.environ)[tool]
            if state["state"] != "enabled":
                raise ConfigError(f"{tool} is {state['state']}: {state['reason']}",
                                  f"fix that, then run 'opentraces setup {tool}' again (nothing was changed)")
            changes = pol.set_flags(doc, {tool: True})
            if tool == "path_anonymizer":
                ensure_key(env.home, doc)
            config_mod.save(env.home, doc)
            return ({"tool": tool, "state": state, "changes": changes, "security": pol.describe(doc)},
                    lambda r: echo(f"{tool} enabled ({r['state']['reason']}); policy now {r['security']['policy']}"), 0)

        run(f"setup.{tool}", as_json, go)

    cmd.help = f"Check what {tool} needs, then enable it (security.{tool}.enabled)."
    return cmd


SETUP_TOOL_COMMANDS = [_setup_tool_command(t) for t in pol.TOOLS]
