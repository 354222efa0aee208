"""``opentraces setup claude-code [--uninstall]`` and the process side of the hook.

The hook itself (``opentraces capture claude-code --hook``) is wired in
capture_cmd.py; ``hook_cli`` here is its process glue: stdout silenced at the
file-descriptor level, a hard watchdog, exit 0 whatever happens. The logic
lives in ``opentraces.capture.hook``.
"""

from __future__ import annotations

import os
import sys
import threading

import click

from ..bucket import Bucket
from ..setup import claude_settings as cs
from . import fast
from .output import Env, echo, run

WATCHDOG_GRACE_S = 3.0


@click.group()
def setup() -> None:
    """Install automatic capture into coding agents."""


@setup.command("claude-code")
@click.option("--uninstall", is_flag=True, help="Remove opentraces' hooks (restores the original file if unchanged).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.pass_obj
def claude_code_cmd(env: Env, uninstall: bool, as_json: bool) -> None:
    """Capture every Claude Code session automatically (Stop and SessionEnd hooks)."""

    def go():
        path = cs.settings_path(env.user_home, env.environ)
        state = env.home / "setup"
        if uninstall:
            res = cs.uninstall(path, state)
        else:
            explicit = os.path.abspath(env.bucket) != os.path.abspath(env.home / "bucket")
            res = cs.install(path, state, cs.hook_command(env.environ, bucket=env.bucket if explicit else None))
        return res.as_dict(), lambda r: _render(r, res.command), 0

    run("setup.claude-code", as_json, go)


_MESSAGES = {
    "installed": "added the capture hooks (Stop, SessionEnd) to {path}",
    "updated": "updated the capture hooks (Stop, SessionEnd) in {path}",
    "unchanged": "the capture hooks are already in {path}; nothing changed",
    "removed": "removed the capture hooks from {path} (your other changes kept)",
    "restored": "removed the capture hooks; {path} is back to its original bytes",
    "deleted": "removed the capture hooks; deleted {path} (it did not exist before setup)",
    "not-installed": "no opentraces hooks in {path}; nothing changed",
    "absent": "{path} does not exist; nothing changed",
}


def _render(res: dict, command: str | None) -> None:
    echo(_MESSAGES.get(res["action"], "{path}: " + res["action"]).format(path=res["settings_path"]))
    if command and res["action"] in ("installed", "updated", "unchanged"):
        echo(f"hook     {command}")
        echo("failures are logged to $OPENTRACES_HOME/logs/hook-errors.log and counted by 'opentraces bucket status'")


def register(cli: click.Group) -> None:
    cli.add_command(setup)


# ---------------------------------------------------------------- the hook
def hook_cli(env: Env, timeout: float | None, *, agent: str = "claude-code", payload: bytes | None = None,
             chain: str | None = None) -> None:
    """Run the Claude Code hook (payload on stdin) or Codex's notify program (``payload``):
    nothing on stdout, bounded in time, always exit 0."""
    from ..capture import hook

    deadline = hook.DEFAULT_DEADLINE_S if timeout is None else timeout
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001
        pass
    saved = _silence_stdout()
    watchdog = threading.Timer(max(deadline, 0) + WATCHDOG_GRACE_S, _hard_exit, args=(env, deadline))
    watchdog.daemon = True
    watchdog.start()
    try:
        from ..security import capture_filter_for

        if chain:  # the user's own notify program, which ours took the place of: same payload, first
            failed = fast.run_chained(chain, payload or b"")
            if failed:
                hook.log_failure(env.logs, None, failed)
        bucket = Bucket(env.bucket)
        security = capture_filter_for(env.home, env.environ, env.user_home)  # a broken config: no capture, logged
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):  # in-process runner: stdin is not a file
            fd = None
        if agent == "codex":
            from ..capture import codex

            hook.run_hook(payload or b"", bucket, env.logs, deadline_s=deadline, security=security, agent="codex",
                          sessions=codex.default_root(env.user_home, env.environ))
        elif fast.STDIN_ERROR is not None:  # the entry point read stdin already, and failed
            hook.log_failure(env.logs, None, fast.STDIN_ERROR)
        elif fast.PAYLOAD is not None:
            hook.run_hook(fast.PAYLOAD, bucket, env.logs, deadline_s=deadline, security=security)
        elif fd is None:
            hook.run_hook(sys.stdin.buffer.read(), bucket, env.logs, deadline_s=deadline, security=security)
        else:
            hook.hook_main(fd, bucket, env.logs, deadline_s=deadline, security=security)
    except BaseException as exc:  # noqa: BLE001 -- never fail Claude Code, never a traceback
        hook.log_failure(env.logs, None, f"unexpected {type(exc).__name__}: {exc}")
    finally:
        watchdog.cancel()
        _restore_stdout(saved)
    sys.exit(0)


def _silence_stdout() -> int | None:
    """Point fd 1 at /dev/null (C-level writes too); returns the saved fd."""
    try:
        saved = os.dup(1)
    except OSError:
        return None
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    return saved


def _restore_stdout(saved: int | None) -> None:
    if saved is None:
        return
    try:
        sys.stdout.flush()
    except Exception:  # noqa: BLE001
        pass
    os.dup2(saved, 1)
    os.close(saved)


def _hard_exit(env: Env, deadline: float) -> None:
    """Last resort when the main thread is stuck where SIGALRM cannot reach (a blocked system call)."""
    from ..capture import hook

    hook.log_failure(env.logs, None, f"hook killed by its watchdog after {deadline + WATCHDOG_GRACE_S:g}s")
    os._exit(0)


@setup.command("codex")
@click.option("--uninstall", is_flag=True, help="Remove opentraces' notify program (restores the original file if unchanged).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.pass_obj
def codex_cmd(env: Env, uninstall: bool, as_json: bool) -> None:
    """Capture every Codex CLI turn automatically (Codex's notify program)."""
    from ..setup import codex_config as cc

    def go():
        path = cc.config_path(env.user_home, env.environ)
        state = env.home / "setup"
        if uninstall:
            res = cc.uninstall(path, state)
        else:
            explicit = os.path.abspath(env.bucket) != os.path.abspath(env.home / "bucket")
            res = cc.install(path, state, cc.notify_argv(env.environ, bucket=env.bucket if explicit else None))
        doc = {"config_path": str(res.settings_path), "changed": res.changed, "action": res.action,
               "notify": res.command}
        return doc, lambda r: _render_codex(r), 0

    run("setup.codex", as_json, go)


_CODEX_MESSAGES = {
    "installed": "set Codex's notify program in {path}",
    "updated": "updated Codex's notify program in {path}",
    "unchanged": "Codex's notify program is already set in {path}; nothing changed",
    "removed": "removed opentraces' notify program from {path} (your other changes kept)",
    "restored": "removed opentraces' notify program; {path} is back to its original bytes",
    "deleted": "removed opentraces' notify program; deleted {path} (it did not exist before setup)",
    "not-installed": "no opentraces notify program in {path}; nothing changed",
    "absent": "{path} does not exist; nothing changed",
}


def _render_codex(res: dict) -> None:
    echo(_CODEX_MESSAGES.get(res["action"], "{path}: " + res["action"]).format(path=res["config_path"]))
    if res.get("notify") and res["action"] in ("installed", "updated", "unchanged"):
        echo(f"notify   {res['notify']}")
        echo("failures are logged to $OPENTRACES_HOME/logs/hook-errors.log and counted by 'opentraces bucket status'")


@setup.command("bucket")
@click.option("--remote", "remote_url", default=None, help="The bucket's private Git remote (checked before it is saved).")
@click.option("--policy", type=click.Choice(["recommended", "basic", "strict", "off"]), default=None,
              help="Security policy without the wizard (default: recommended).")
@click.option("--enable-security-tool", "enable", multiple=True, help="Turn one redaction tool on (repeatable).")
@click.option("--disable-security-tool", "disable", multiple=True, help="Turn one redaction tool off (repeatable).")
@click.option("--encrypt", is_flag=True, help="End-to-end encrypt the remote (a key made here; docs/SECURITY.md).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout (never prompts).")
@click.pass_obj
def bucket_cmd(env: Env, remote_url, policy, enable, disable, encrypt, as_json) -> None:
    """Set the bucket security policy, then the remote (requires 'opentraces auth login')."""
    from .. import auth, config
    from ..errors import ConfigError
    from ..security import policy as pol

    def go():
        cred = auth.load(env.home, env_token=env.environ.get("OPENTRACES_TOKEN"),
                         env_username=env.environ.get("OPENTRACES_USERNAME"))
        if cred is None:
            raise ConfigError("setup bucket needs a credential for the remote", "run 'opentraces auth login'")
        doc = config.load(env.home)
        interactive = not as_json and sys.stdin.isatty() and sys.stdout.isatty()
        url = remote_url
        if interactive and policy is None and not enable and not disable:
            name, flags = _ask_policy(pol, doc)
            changes = pol.set_flags(doc, flags) if name == "custom" else pol.apply_policy(doc, name)
        else:
            changes = pol.apply_policy(doc, policy or pol.DEFAULT_POLICY, enable=tuple(enable), disable=tuple(disable))
        if interactive and url is None:
            url = click.prompt("remote URL (empty: none yet)", default=config.get(doc, "bucket.remote") or "",
                               show_default=bool(config.get(doc, "bucket.remote")), err=True).strip() or None
        checked = None
        encryption = None
        if encrypt:
            from .. import remotekey

            fp = config.get(doc, "bucket.encryption")
            if not fp:
                _secret, fp = remotekey.create(env.home)
                config.put(doc, "bucket.encryption", fp)
                config.save(env.home, doc)  # before the remote check: it reads the key
            encryption = {"fingerprint": fp, "path": str(remotekey.key_path(env.home, fp)),
                          "warning": "the remote is readable only with this key: if every copy of it is lost, the "
                                     "remote's content is lost too. Keep a copy: 'opentraces key export --out FILE' "
                                     "(passphrase-protected), and import it on your other machines"}
        if url:
            from .remote_cmd import transport_for

            config.check_remote_url(url)
            checked = transport_for(env, url).check()  # exit 3 with the server's reason; nothing saved
            config.put(doc, "bucket.remote", url)
        from .security_cmd import _key_if_anonymizing

        _key_if_anonymizing(doc)
        config.save(env.home, doc)
        for tool in changes["disabled"]:
            click.echo(f"warning: the policy turned off security.{tool}.enabled (machine-global)", err=True)
        out = {"security": pol.describe(doc), "changes": changes, "remote": checked,
               "config": str(config.config_path(env.home)), "encryption": encryption}

        def render(r):
            s = r["security"]
            echo(f"policy   {s['policy']}  ({', '.join(t for t, on in s['tools'].items() if on) or 'no tools'})")
            echo(f"remote   {r['remote']['url'] + ' (reachable)' if r['remote'] else 'none; run opentraces setup bucket --remote URL'}")
            if r.get("encryption"):
                echo(f"encrypt  key {r['encryption']['fingerprint']} ({r['encryption']['path']})")
                echo(f"warning  {r['encryption']['warning']}")

        return out, render, 0

    run("setup.bucket", as_json, go)


def _ask_policy(pol, doc):
    names = ["recommended", "basic", "strict", "off", "custom"]
    for i, n in enumerate(names, 1):
        tools = ", ".join(pol.POLICIES.get(n, ())) or ("choose each tool" if n == "custom" else "nothing")
        click.echo(f"  {i}. {n:<12} {tools}", err=True)
    choice = click.prompt("bucket security policy", type=click.Choice(names + [str(i) for i in range(1, 6)]),
                          default="recommended", err=True)
    name = names[int(choice) - 1] if choice.isdigit() else choice
    if name != "custom":
        return name, None
    current = pol.enabled(doc)
    flags = {t: click.confirm(f"  enable {t}?", default=current[t], err=True) for t in pol.TOOLS}
    return name, flags


def _register_tools() -> None:
    from .security_cmd import SETUP_TOOL_COMMANDS

    for cmd in SETUP_TOOL_COMMANDS:
        setup.add_command(cmd)


_register_tools()
