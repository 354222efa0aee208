"""``opentraces`` entry point: the command groups and global options."""

from __future__ import annotations

import click

from .output import Env


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--bucket", "bucket", type=click.Path(), default=None,
              help="Bucket folder (default: $OPENTRACES_HOME/bucket, i.e. ~/.opentraces/bucket).")
@click.version_option(package_name="opentraces-bucket", prog_name="opentraces")
@click.pass_context
def cli(ctx: click.Context, bucket: str | None) -> None:
    """Git-native, local-first store for the evidence AI coding agents leave behind."""
    ctx.obj = Env.from_process(bucket)


def _register() -> None:
    from . import bucket_cmd, capture_cmd, trace_cmd

    cli.add_command(bucket_cmd.bucket)
    cli.add_command(capture_cmd.capture)
    cli.add_command(trace_cmd.trace)
    cli.add_command(trace_cmd.ctx)
    for extra in ("trail_cmd", "setup_cmd"):
        try:
            mod = __import__(f"opentraces.cli.{extra}", fromlist=["register"])
        except ModuleNotFoundError:
            continue
        mod.register(cli)


_register()


def main() -> None:
    cli(prog_name="opentraces")
