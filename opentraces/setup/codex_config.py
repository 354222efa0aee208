"""Codex CLI's config file: set and remove opentraces' ``notify`` program.

Codex reads ``$CODEX_HOME/config.toml`` (else ``~/.codex/config.toml``) and,
after every turn, runs the top-level ``notify`` program with one more
argument: a JSON object (``type: agent-turn-complete``, ``thread-id``,
``cwd``...). Ours is ``<opentraces> [--bucket B] capture codex --notify``;
the thread id names the rollout file it captures.

``notify`` holds one program. When the user already has one, ours takes its
place and carries it (``--chain '<its argv as JSON>'``): every turn still
runs the user's program with the same payload, first, detached.

The edit is textual, so the rest of the file keeps its bytes (comments,
order, formatting): our ``notify = [...]`` replaces the top-level
``notify`` assignment, or goes on the file's first line. Every edit is
checked by parsing the result (``tomllib``): the document must equal the
old one with only ``notify`` changed, else nothing is written. A file that
is not valid TOML is refused and left untouched.

Reversibility as for ``setup claude-code``: the original bytes (or the
fact that the file did not exist) are kept under ``$OPENTRACES_HOME/setup/``;
``uninstall`` puts them back exactly when the file is still as setup left
it, else it removes only our assignment (restoring the user's own program
when we had carried one).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import RefusedError
from .claude_settings import SetupResult, _console_script, _read, _target, _unlink, write_atomic

NOTIFY_MARKER = ["capture", "codex", "--notify"]
CHAIN_FLAG = "--chain"
_BACKUP_SCHEMA = "opentraces.setup.codex.backup.v1"
_KEY = re.compile(r"^[ \t]*(?:notify|\"notify\"|'notify')[ \t]*=")
_TABLE = re.compile(r"^[ \t]*\[")


def config_path(home: os.PathLike | str, environ: Mapping[str, str]) -> Path:
    """``$CODEX_HOME/config.toml`` when set, else ``<home>/.codex/config.toml``."""
    base = environ.get("CODEX_HOME") or ""
    if base:
        if base == "~" or base.startswith("~/"):
            return Path(os.path.abspath(Path(home) / base[2:] / "config.toml"))
        return Path(os.path.abspath(Path(base) / "config.toml"))
    return Path(os.path.abspath(Path(home) / ".codex" / "config.toml"))


def backup_path(state_dir: os.PathLike | str, config: os.PathLike | str) -> Path:
    key = hashlib.sha256(os.path.abspath(config).encode()).hexdigest()[:16]
    return Path(state_dir) / f"codex-config.{key}.json"


def notify_argv(environ: Mapping[str, str], *, bucket: os.PathLike | str | None = None,
                which: Callable[[str], str | None] | None = None, executable: str = sys.executable) -> list[str]:
    """The program Codex runs after each turn (no shell: ``OPENTRACES_HOME`` is pinned through ``env``)."""
    import shutil

    script = _console_script(which or shutil.which, executable)
    argv = [script] if script else [executable, "-m", "opentraces.cli"]
    home = environ.get("OPENTRACES_HOME")
    if home:
        argv = ["/usr/bin/env", "OPENTRACES_HOME=" + os.path.abspath(os.path.expanduser(home))] + argv
    if bucket is not None:
        argv += ["--bucket", os.path.abspath(bucket)]
    return argv + NOTIFY_MARKER


def is_ours(value: Any) -> bool:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return False
    n = len(NOTIFY_MARKER)
    return any(value[i:i + n] == NOTIFY_MARKER for i in range(len(value) - n + 1))


def chained(value: list[str]) -> list[str] | None:
    """The user's program our ``notify`` carries, if any."""
    if CHAIN_FLAG in value:
        i = value.index(CHAIN_FLAG)
        try:
            prev = json.loads(value[i + 1])
        except (IndexError, ValueError):
            return None
        if isinstance(prev, list) and prev and all(isinstance(v, str) for v in prev):
            return prev
    return None


# ------------------------------------------------------- text editing
def parse_config(data: bytes, path: os.PathLike | str) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RefusedError(f"{path} is not valid TOML ({' '.join(str(exc).split())}); fix it, then run "
                           "'opentraces setup codex' again (nothing was changed)") from None


def _value_end(text: str, start: int) -> int:
    """Where the TOML value that starts at ``start`` ends (its line's end, brackets and strings followed)."""
    depth = 0
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            triple = text.startswith(c * 3, i)
            q = c * 3 if triple else c
            j = i + len(q)
            while j < n and not text.startswith(q, j):
                if c == '"' and text[j] == "\\":
                    j += 1
                elif not triple and text[j] == "\n":
                    break
                j += 1
            i = j + len(q)
            continue
        if c == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        elif c == "\n" and depth <= 0:
            return i + 1
        i += 1
    return n


def notify_span(text: str) -> tuple[int, int] | None:
    """(start, end) of the top-level ``notify = ...`` assignment, lines included."""
    pos = 0
    for line in text.splitlines(keepends=True):
        if _TABLE.match(line):
            return None
        if _KEY.match(line):
            return pos, _value_end(text, pos + line.index("=") + 1)
        pos += len(line)
    return None


def _line(argv: list[str]) -> str:
    return "notify = [" + ", ".join(json.dumps(a, ensure_ascii=False) for a in argv) + "]\n"


def _with_notify(text: str, argv: list[str] | None) -> str:
    """``text`` with its top-level notify set to ``argv`` (removed when None)."""
    span = notify_span(text)
    new = _line(argv) if argv is not None else ""
    if span is not None:
        return text[: span[0]] + new + text[span[1]:]
    return new + text


def _checked(text: str, old: dict[str, Any], argv: list[str] | None, path: Path) -> bytes:
    want = {k: v for k, v in old.items() if k != "notify"}
    if argv is not None:
        want["notify"] = argv
    try:
        got = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        got = None
    if got != want:
        raise RefusedError(f"cannot edit the notify setting of {path} safely (an unusual layout); "
                           "set notify by hand as 'opentraces setup codex --json' shows (nothing was changed)")
    return text.encode("utf-8")


# ------------------------------------------------------------ backups
def _save_backup(path: Path, config: Path, original: bytes | None, installed: bytes) -> None:
    doc = {"schema": _BACKUP_SCHEMA, "config_path": str(config), "existed": original is not None,
           "original": base64.b64encode(original).decode() if original is not None else None,
           "installed_sha256": hashlib.sha256(installed).hexdigest()}
    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode(), mode=0o600)


def _load_backup(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("schema") != _BACKUP_SCHEMA:
            return None
        return {"existed": bool(doc["existed"]), "installed_sha256": doc["installed_sha256"],
                "original": base64.b64decode(doc["original"]) if doc["existed"] else None}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


# ------------------------------------------------------------ the verbs
def install(config: os.PathLike | str, state_dir: os.PathLike | str, argv: list[str]) -> SetupResult:
    """Make ``argv`` Codex's notify program, carrying the user's own (idempotent)."""
    config = Path(os.path.abspath(config))
    target = _target(config)
    data = _read(target)
    doc = parse_config(data, config) if data is not None else {}
    current = doc.get("notify")
    if is_ours(current):
        prev = chained(current)
        want = argv + ([CHAIN_FLAG, json.dumps(prev)] if prev else [])
        if current == want:
            return SetupResult(config, False, "unchanged", " ".join(want))
        new = _checked(_with_notify(data.decode("utf-8"), want), doc, want, config)
        write_atomic(target, new)
        return SetupResult(config, True, "updated", " ".join(want))
    if current is not None and not (isinstance(current, list) and current and all(isinstance(v, str) for v in current)):
        raise RefusedError(f"{config}: notify is not a list of strings; fix it, then run 'opentraces setup codex' "
                           "again (nothing was changed)")
    want = argv + ([CHAIN_FLAG, json.dumps(current)] if current else [])
    new = _checked(_with_notify((data or b"").decode("utf-8"), want), doc, want, config)
    _save_backup(backup_path(state_dir, config), config, data, new)
    write_atomic(target, new)
    return SetupResult(config, True, "installed", " ".join(want))


def uninstall(config: os.PathLike | str, state_dir: os.PathLike | str) -> SetupResult:
    """Remove our notify program; the original bytes when the file is as setup left it."""
    config = Path(os.path.abspath(config))
    target = _target(config)
    bpath = backup_path(state_dir, config)
    data = _read(target)
    if data is None:
        _unlink(bpath)
        return SetupResult(config, False, "absent")
    doc = parse_config(data, config)
    current = doc.get("notify")
    if not is_ours(current):
        _unlink(bpath)
        return SetupResult(config, False, "not-installed")
    backup = _load_backup(bpath)
    if backup is not None and hashlib.sha256(data).hexdigest() == backup["installed_sha256"]:
        if backup["existed"]:
            write_atomic(target, backup["original"])
            action = "restored"
        else:
            os.unlink(target)
            action = "deleted"
    else:
        prev = chained(current)
        write_atomic(target, _checked(_with_notify(data.decode("utf-8"), prev), doc, prev, config))
        action = "removed"
    _unlink(bpath)
    return SetupResult(config, True, action)
