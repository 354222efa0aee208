"""``opentraces key export|import|show``: the encrypted remote's key, moved between machines."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .. import config, remotekey
from ..errors import ConfigError, RefusedError
from ..fsio import atomic_write
from .output import Env, echo, run

json_opt = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
PASSPHRASE_ENV = "OPENTRACES_KEY_PASSPHRASE"


def _passphrase(env: Env, confirm: bool) -> str:
    given = env.environ.get(PASSPHRASE_ENV)
    if given:
        return given
    if not sys.stdin.isatty():
        raise RefusedError("no passphrase", f"run it in a terminal, or set {PASSPHRASE_ENV}")
    return click.prompt("passphrase", hide_input=True, confirmation_prompt=confirm, err=True)


def _current(env: Env) -> str:
    fp = config.get(config.load(env.home), "bucket.encryption")
    if not fp:
        raise ConfigError("this machine has no remote key", "run 'opentraces setup bucket --encrypt', or import one")
    return fp


@click.group("key")
def key_group() -> None:
    """The key of an end-to-end encrypted remote (docs/SECURITY.md)."""


@key_group.command("show")
@json_opt
@click.pass_obj
def show_cmd(env: Env, as_json: bool) -> None:
    """The fingerprint of this machine's remote key and where it is kept."""

    def go():
        fp = _current(env)
        remotekey.load(env.home, fp)
        doc = {"fingerprint": fp, "path": str(remotekey.key_path(env.home, fp))}
        return doc, lambda r: echo(f"key {r['fingerprint']}  {r['path']}"), 0

    run("key.show", as_json, go)


@key_group.command("export")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="File to write (0600).")
@json_opt
@click.pass_obj
def export_cmd(env: Env, out: str, as_json: bool) -> None:
    """Write the key sealed with a passphrase (scrypt + AES-256-GCM), to carry to another machine."""

    def go():
        fp = _current(env)
        data = remotekey.export(remotekey.load(env.home, fp), _passphrase(env, confirm=True))
        atomic_write(Path(os.path.abspath(out)), data, mode=0o600)
        doc = {"fingerprint": fp, "file": os.path.abspath(out)}
        return doc, lambda r: echo(f"key {r['fingerprint']} written to {r['file']}; "
                                   "import it with 'opentraces key import FILE'"), 0

    run("key.export", as_json, go)


@key_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@json_opt
@click.pass_obj
def import_cmd(env: Env, path: str, as_json: bool) -> None:
    """Take a key file 'opentraces key export' wrote; the bucket's remote is then read with it."""

    def go():
        secret = remotekey.unseal(Path(path).read_bytes(), _passphrase(env, confirm=False))
        fp = remotekey.store(env.home, secret)
        doc = config.load(env.home)
        config.put(doc, "bucket.encryption", fp)
        config.save(env.home, doc)
        out = {"fingerprint": fp, "path": str(remotekey.key_path(env.home, fp))}
        return out, lambda r: echo(f"key {r['fingerprint']} imported ({r['path']}, 0600)"), 0

    run("key.import", as_json, go)
