"""The console entry point, with a fast path for hooks whose session has not changed.

An agent runs our hook after every turn (Claude Code's ``Stop``, Codex's
``notify``); most of the time the session file has not changed since the
last capture (a ``SessionEnd`` right after a ``Stop``, a turn of another
session). Answering that takes the capture cursor (size and mtime per file,
``.state/capture-cursors.json``) and one ``stat``: this module does it with
the standard library and orjson only, before click, pygit2 or the bucket
are imported, and exits 0. Anything else (a changed session, another
command, an unusual argument list, any doubt) goes to the full CLI with the
payload it already read.

A stale answer is impossible: a cursor is written only after the capture
it describes committed, and the check also asks that the trace's
``trace.json`` exists, as the capture itself does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from .. import agentfiles, cursors
from ..hookinput import HookInputError, parse_payload, read_stdin

PAYLOAD: bytes | None = None  # the Claude Code hook payload this process already read from stdin
STDIN_ERROR: str | None = None  # why reading it failed (the full path logs it)


def run_chained(chain: str, payload: bytes) -> str | None:
    """Start the user's own notify program (JSON argv) with ``payload``, detached; why not, if it failed."""
    import json
    import subprocess

    try:
        argv = json.loads(chain)
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            raise ValueError("not a list of strings")
        subprocess.Popen([*argv, payload.decode("utf-8", "replace")], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except (ValueError, OSError) as exc:
        return f"chained notify program did not start: {exc}"
    return None


def _hook_args(argv: list[str]) -> tuple[str | None, str, list[str]] | None:
    """(bucket, agent, the rest) when ``argv`` is a hook invocation we may answer."""
    bucket = None
    if argv[:1] == ["--bucket"] and len(argv) >= 2:
        bucket, argv = argv[1], argv[2:]
    if argv[:3] == ["capture", "claude-code", "--hook"] and len(argv) == 3:
        return bucket, "claude-code", []
    if argv[:3] == ["capture", "codex", "--notify"] and len(argv) in (4, 6) and (len(argv) == 4 or argv[3] == "--chain"):
        return bucket, "codex", argv[3:]
    return None


def _session(agent: str, doc: dict[str, Any], home: Path) -> Path | None:
    """The session file a hook payload names (Codex: found by its thread id, recent folders only)."""
    if agent == "claude-code":
        raw = doc.get("transcript_path")
        path = Path(os.path.expanduser(raw)) if isinstance(raw, str) and raw else None
        return path if path is not None and path.is_absolute() else None
    tid = doc.get("thread-id")
    if not agentfiles.safe_thread_id(tid):
        return None
    return agentfiles.find_rollout(agentfiles.codex_sessions(home, os.environ), tid, deep=False)


def _unchanged(bucket: Path, session: Path) -> bool:
    try:
        st = os.stat(session)
    except OSError:
        return False
    return cursors.unchanged(bucket, cursors.read(bucket).get(os.path.abspath(session)), st)


def main() -> None:
    global PAYLOAD, STDIN_ERROR
    hook = _hook_args(sys.argv[1:])
    if hook is not None and not os.environ.get("OPENTRACES_FAULT"):
        bucket_arg, agent, rest = hook
        user_home = Path(os.environ.get("HOME") or os.path.expanduser("~"))
        bucket = Path(bucket_arg) if bucket_arg else Path(os.environ.get("OPENTRACES_HOME") or user_home / ".opentraces") / "bucket"
        payload: bytes | None = rest[-1].encode() if rest else b""
        if agent == "claude-code":
            try:
                payload = PAYLOAD = read_stdin(0)
            except (HookInputError, OSError, ValueError) as exc:
                payload, STDIN_ERROR = None, str(exc)
        try:
            session = _session(agent, parse_payload(payload), user_home) if payload is not None else None
        except HookInputError:
            session = None
        if session is not None and _unchanged(bucket, session):
            # the user's own notify program still runs; if it cannot start, the full path tries
            # again and logs why
            if len(rest) != 3 or run_chained(rest[1], payload) is None:
                sys.exit(0)
    from .main import main as full

    full()
