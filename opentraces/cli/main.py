"""``opentraces`` entry point: the command groups and global options."""

from __future__ import annotations

import importlib

import click

from .output import Env


# command name -> (module, attribute): imported only when that command runs,
# so `opentraces bucket status` does not pay for Git, capture or the hook.
COMMANDS = {
    "bucket": ("opentraces.cli.bucket_cmd", "bucket"),
    "capture": ("opentraces.cli.capture_cmd", "capture"),
    "trace": ("opentraces.cli.trace_cmd", "trace"),
    "ctx": ("opentraces.cli.trace_cmd", "ctx"),
    "trail": ("opentraces.cli.trail_cmd", "trail"),
    "setup": ("opentraces.cli.setup_cmd", "setup"),
    "auth": ("opentraces.cli.auth_cmd", "auth_group"),
    "config": ("opentraces.cli.security_cmd", "config_group"),
    "key": ("opentraces.cli.key_cmd", "key_group"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name]
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--bucket", "bucket", type=click.Path(), default=None,
              help="Bucket folder (default: $OPENTRACES_HOME/bucket, i.e. ~/.opentraces/bucket).")
@click.version_option(package_name="opentraces-bucket", prog_name="opentraces")
@click.pass_context
def cli(ctx: click.Context, bucket: str | None) -> None:
    """Git-native, local-first store for the evidence AI coding agents leave behind."""
    ctx.obj = Env.from_process(bucket)
    fault = ctx.obj.environ.get("OPENTRACES_FAULT")  # tests only: "N:enospc|eio|die" or "count:FILE"
    if fault:
        from gitref import faults

        n, _, action = fault.partition(":")
        if n == "count":
            faults.arm(0, "die", log=action)
        else:
            faults.arm(int(n), action)


def main() -> None:
    cli(prog_name="opentraces")
