"""One exit point: results to stdout (text or one JSON object), errors as one line."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click
import orjson

from ..errors import ExitStatus, OpentracesError


@dataclass
class Env:
    """What the process gives the CLI: paths derived from the environment."""

    home: Path  # $OPENTRACES_HOME or ~/.opentraces
    bucket: Path
    user_home: Path
    environ: dict[str, str]

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @classmethod
    def from_process(cls, bucket: str | None) -> "Env":
        environ = dict(os.environ)
        user_home = Path(environ.get("HOME") or os.path.expanduser("~"))
        home = Path(environ.get("OPENTRACES_HOME") or user_home / ".opentraces")
        return cls(home=home, bucket=Path(bucket) if bucket else home / "bucket", user_home=user_home, environ=environ)


def emit_json(doc: dict[str, Any]) -> None:
    try:
        data = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # a path with undecodable bytes (surrogates): show them escaped
        data = orjson.dumps(_printable(doc), option=orjson.OPT_SORT_KEYS)
    sys.stdout.write(data.decode() + "\n")


def _printable(obj: Any) -> Any:
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
            return obj
        except UnicodeEncodeError:
            try:
                return obj.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:
                return obj.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(obj, dict):
        return {_printable(k): _printable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_printable(v) for v in obj]
    return obj


def run(command: str, as_json: bool, fn: Callable[[], tuple[dict[str, Any], Callable[[dict], None] | None, int]]) -> None:
    """Call ``fn`` -> (result, text renderer, exit status); render; exit.

    Library errors become one line on stderr (and a JSON error object with
    ``--json``) and the exit status of DESIGN.md §8. Never a traceback.
    """
    schema = f"opentraces.{command}.v1"
    try:
        result, render, code = fn()
    except OpentracesError as exc:
        _fail(schema, as_json, str(exc), int(exc.exit_status), getattr(exc, "details", None))
    except KeyboardInterrupt:
        _fail(schema, as_json, "interrupted; the bucket is intact (committed batches only)", 130)
    except OSError as exc:
        if exc.errno in (28, 122, 5, 30):  # ENOSPC, EDQUOT, EIO, EROFS
            _fail(schema, as_json, f"the disk is full or failing ({exc.strerror}: {exc.filename or 'bucket'}); "
                  "the bucket keeps every committed batch; free space and run the command again", int(ExitStatus.STORAGE))
        _fail(schema, as_json, f"{exc.strerror or exc}: {exc.filename or ''}".strip(": "), int(ExitStatus.CONFIG))
    except Exception as exc:  # never a traceback; the bucket is only changed by committed batches
        if type(exc).__module__.startswith("gitref"):
            _fail(schema, as_json, f"Git repository problem: {exc}; run 'git fsck' on it", int(ExitStatus.CONFIG))
        _fail(schema, as_json, f"unexpected {type(exc).__name__}: {exc}; the bucket is intact, run 'opentraces bucket verify'", int(ExitStatus.CORRUPT))
    if as_json:
        status = "ok" if code == 0 else "problems"
        emit_json({"status": status, "schema_version": schema, **result})
    elif render is not None:
        render(result)
    sys.exit(code)


def _fail(schema: str, as_json: bool, message: str, code: int, details: dict | None = None) -> None:
    if as_json:
        emit_json({"status": "error", "schema_version": schema, "error": message, "exit_code": code,
                   **(details if isinstance(details, dict) else {})})
    click.echo(_printable(f"error: {message}"), err=True)
    sys.exit(code)


def echo(text: str = "") -> None:
    click.echo(_printable(text))
