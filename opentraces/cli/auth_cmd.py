"""``opentraces auth login | status | logout``: the credential for the bucket's remote.

The token is never printed, logged or written anywhere but
``$OPENTRACES_HOME/credentials.json`` (0600). ``OPENTRACES_TOKEN`` (and
``OPENTRACES_USERNAME``) supply one without a file, for CI.
"""

from __future__ import annotations

import sys

import click

from .. import auth, config
from ..errors import RefusedError
from .output import Env, echo, run

json_opt = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")


@click.group("auth")
def auth_group() -> None:
    """Credentials for the bucket's private Git remote."""


@auth_group.command("login")
@click.option("--token", default=None, help="HTTPS token (prompted without echo when no other option is given).")
@click.option("--username", default=None, help="User name for HTTPS Basic auth (default: opentraces).")
@click.option("--ssh-key", "ssh_key", default=None, type=click.Path(dir_okay=False), help="SSH private key file.")
@click.option("--ssh-agent", "ssh_agent", is_flag=True, help="Use the running SSH agent.")
@click.option("--remote", "remote_url", default=None, help="Check access to this remote now (exit 3 if refused).")
@json_opt
@click.pass_obj
def login_cmd(env: Env, token, username, ssh_key, ssh_agent, remote_url, as_json) -> None:
    """Store a credential (mode 0600); with --remote, check it against the server first."""

    def go():
        tok = token
        if tok is None and ssh_key is None and not ssh_agent:
            if as_json or not sys.stdin.isatty():
                raise RefusedError("no credential given", "pass --token, --ssh-key or --ssh-agent")
            tok = click.prompt("token", hide_input=True, err=True)
        cred = auth.make(token=tok, username=username, ssh_key=ssh_key, ssh_agent=ssh_agent)
        checked = None
        url = remote_url or config.remote_url(env.home)
        if remote_url is not None:
            config.check_remote_url(remote_url)
        if url:
            from .remote_cmd import make_transport

            checked = make_transport(env, url, cred).check()  # raises: exit 3, nothing saved
        path = auth.save(env.home, cred)
        return {"auth": {**cred.describe(), "path": str(path)}, "remote": checked}, lambda r: echo(
            f"logged in ({r['auth']['kind']}); credential in {r['auth']['path']}"
            + (f"; {r['remote']['url']} reachable" if r.get("remote") else "")), 0

    run("auth.login", as_json, go)


@auth_group.command("status")
@json_opt
@click.pass_obj
def status_cmd(env: Env, as_json: bool) -> None:
    """Which credential is in use (never the secret) and whether the remote accepts it."""

    def go():
        cred = auth.load(env.home, env_token=env.environ.get("OPENTRACES_TOKEN"),
                         env_username=env.environ.get("OPENTRACES_USERNAME"))
        out = {"auth": cred.describe() if cred else None, "logged_in": cred is not None, "remote": None}
        url = config.remote_url(env.home)
        if cred and url:
            from ..sync.transport import UnauthorizedError, UnreachableError
            from .remote_cmd import transport_for

            try:
                out["remote"] = transport_for(env).check()
            except (UnauthorizedError, UnreachableError) as exc:
                out["remote"] = {"url": url, "reachable": False, "state": exc.state, "reason": str(exc)}

        def render(r):
            if not r["logged_in"]:
                echo("not logged in; run 'opentraces auth login'")
                return
            a = r["auth"]
            echo(f"logged in: {a['kind']} ({a['source']})" + (f", user {a['username']}" if a.get("username") else ""))
            if r["remote"]:
                echo(f"remote {r['remote']['url']}: " + ("reachable" if r["remote"]["reachable"] else r["remote"]["state"]))

        code = 3 if out["remote"] and not out["remote"]["reachable"] else 0
        return out, render, code

    run("auth.status", as_json, go)


@auth_group.command("logout")
@json_opt
@click.pass_obj
def logout_cmd(env: Env, as_json: bool) -> None:
    """Delete the stored credential."""

    def go():
        removed = auth.delete(env.home)
        return {"removed": removed}, lambda r: echo("logged out" if r["removed"] else "no credential was stored"), 0

    run("auth.logout", as_json, go)
