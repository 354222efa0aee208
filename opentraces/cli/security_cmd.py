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
            config_mod.save(env.home, doc)
            for t in changes["disabled"]:
                click.echo(f"warning: turned off security.{t}.enabled (machine-global: capture-time filtering "
                           "reads the same flag)", err=True)

        def render(r):
            s = r["security"]
            echo(f"policy  {s['policy']}  (scope: {s['scope']})")
            for t, on in s["tools"].items():
                echo(f"  {'on ' if on else 'off'}  {t}")

        return {"security": pol.describe(doc), "changes": changes}, render, 0

    run("bucket.security", as_json, go)


@click.group("config")
def config_group() -> None:
    """Machine-global settings in $OPENTRACES_HOME/config.json (never inside the bucket)."""


_KEYS = {f"security.{t}.enabled" for t in pol.TOOLS} | {"bucket.remote"}


def _check_key(key: str) -> str:
    if key not in _KEYS:
        raise RefusedError(f"unknown key {key!r}", "keys: bucket.remote, security.<tool>.enabled")
    return key


@config_group.command("get")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def get_cmd(env: Env, key: str, as_json: bool) -> None:
    """Print one setting."""

    def go():
        value = config_mod.get(config_mod.load(env.home), _check_key(key))
        if key.startswith("security."):
            value = bool(value)
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
        if key.startswith("security."):
            if value.lower() not in ("true", "false"):
                raise RefusedError(f"{key} takes true or false, not {value!r}", f"run 'opentraces config set {key} true'")
            tool = key.split(".")[1]
            changes = pol.set_flags(doc, {tool: value.lower() == "true"})
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
