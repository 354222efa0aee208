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

import orjson

CURSORS = "capture-cursors.json"  # opentraces.statefiles.CURSORS
STATE = ".state"  # opentraces.layout.STATE
PAYLOAD: bytes | None = None  # the Claude Code hook payload this process already read from stdin


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


def _unchanged(bucket: Path, session: Path) -> bool:
    try:
        cur = orjson.loads((bucket / STATE / CURSORS).read_bytes()).get(os.path.abspath(session))
        st = os.stat(session)
    except (OSError, ValueError, AttributeError):
        return False
    if not isinstance(cur, dict) or cur.get("size") != st.st_size or cur.get("mtime_ns") != st.st_mtime_ns:
        return False
    project, trace = cur.get("project"), cur.get("trace")
    if not all(isinstance(v, str) and v and "/" not in v and not v.startswith(".") for v in (project, trace)):
        return False
    return (bucket / "traces" / "v1" / project / trace / "trace.json").is_file()


def _claude_session(payload: bytes) -> Path | None:
    doc = orjson.loads(payload)
    raw = doc.get("transcript_path") if isinstance(doc, dict) else None
    if not isinstance(raw, str) or not raw:
        return None
    path = Path(os.path.expanduser(raw))
    return path if path.is_absolute() else None


def _codex_session(payload: bytes) -> Path | None:
    from ..agentfiles import codex_sessions, find_rollout, safe_thread_id

    doc = orjson.loads(payload)
    tid = doc.get("thread-id") if isinstance(doc, dict) else None
    if not safe_thread_id(tid):
        return None
    home = Path(os.environ.get("HOME") or os.path.expanduser("~"))
    return find_rollout(codex_sessions(home, os.environ), tid, deep=False)


def _read_stdin() -> bytes | None:
    try:
        if os.isatty(0):
            return None
        import select

        chunks, size = [], 0
        while True:
            ready, _, _ = select.select([0], [], [], 5.0)
            if not ready:
                return None
            chunk = os.read(0, 65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > 4 * 1024 * 1024:
                return None
            chunks.append(chunk)
    except (OSError, ValueError):
        return None


def main() -> None:
    hook = _hook_args(sys.argv[1:])
    if hook is not None and not os.environ.get("OPENTRACES_FAULT"):
        bucket_arg, agent, rest = hook
        home = Path(os.environ.get("OPENTRACES_HOME") or Path(os.environ.get("HOME") or os.path.expanduser("~")) / ".opentraces")
        bucket = Path(bucket_arg) if bucket_arg else home / "bucket"
        payload = (rest[-1].encode() if rest else b"") if agent == "codex" else _read_stdin()
        if payload is not None:
            try:
                session = _claude_session(payload) if agent == "claude-code" else _codex_session(payload)
            except (ValueError, TypeError):
                session = None
            if session is not None and _unchanged(bucket, session):
                # the user's own notify program still runs; if it cannot start, the full path says why
                if not (agent == "codex" and len(rest) == 3 and run_chained(rest[1], payload) is not None):
                    sys.exit(0)
                rest = []
            if agent == "claude-code":
                global PAYLOAD
                PAYLOAD = payload
            elif not rest and "--chain" in sys.argv:  # the chained program ran already
                i = sys.argv.index("--chain")
                del sys.argv[i:i + 2]
    from .main import main as full

    full()
