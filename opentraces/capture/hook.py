"""The Claude Code hook: one transcript captured per ``Stop``/``SessionEnd`` event.

Claude Code runs ``opentraces capture claude-code --hook`` with a JSON
payload on stdin (``session_id``, ``transcript_path``, ``cwd``,
``hook_event_name``). The hook captures that one transcript through
``capture_paths`` (incremental: a turn adds only its new events) and must
never get in the agent's way, so:

- it never raises: every failure becomes one line in
  ``<logs>/hook-errors.log`` (UTC time, session id, reason), which
  ``bucket status`` counts as ``hook_failures``;
- it is bounded in time: reading stdin has its own budget, the writer-lock
  wait is bounded inside the deadline, and a SIGALRM safety net stops the
  capture at the deadline (the bucket's write order makes an interrupted
  capture equivalent to a crash: old state or committed batches, never
  half a batch). A session that missed a capture is picked up whole by the
  next hook or by ``opentraces capture claude-code --all``.

Project attribution: the transcript's own recorded ``cwd`` (as a manual
capture of the same file would use, so hook and sweep never file one session
under two projects), else the payload's ``cwd``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson

from .. import agentfiles
from ..hookinput import STDIN_BUDGET_S, HookInputError, parse_payload, read_stdin
from ..bucket import Bucket
from ..errors import LockedError, OpentracesError
from ..ids import check_component
from ..lock import WriterLock
from .agents import agent_module
from .run import capture_paths

DEFAULT_DEADLINE_S = 20.0  # from the command's start; Claude Code's own timeout for us is 30 s
LOCK_RESERVE_S = 5.0  # time kept for the capture itself after waiting for the lock
LOG_NAME = "hook-errors.log"
MAX_REASON = 600
_LOCK_ACQUIRE = WriterLock.acquire.__code__


class HookDeadline(BaseException):
    """Raised by the SIGALRM safety net; a BaseException so no ``except Exception`` swallows it."""


@dataclass
class HookOutcome:
    ok: bool
    reason: str | None = None
    session_id: str | None = None
    event: str | None = None
    transcript: str | None = None
    trace_id: str | None = None
    project: str | None = None
    new_events: int = 0
    unchanged: bool = False
    elapsed_s: float = 0.0
    logged: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------- log
def log_failure(logs_dir: os.PathLike | str, session_id: str | None, reason: str) -> bool:
    """Append ``<UTC time>\\t<session id>\\t<reason>`` to the hook error log; False if that failed too."""
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    line = f"{now}\t{_clean(session_id or '-', 200)}\t{_clean(reason, MAX_REASON)}\n".encode("utf-8", "replace")
    try:
        Path(logs_dir).mkdir(parents=True, exist_ok=True)
        fd = os.open(Path(logs_dir) / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)  # one write of one short line: concurrent hooks do not interleave
        finally:
            os.close(fd)
        return True
    except OSError:
        return False


def _clean(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------ the hook
def run_hook(stdin: bytes, bucket: Bucket, logs_dir: os.PathLike | str, *, deadline_s: float,
             security: Any = None, agent: str = "claude-code", sessions: Path | None = None) -> HookOutcome:
    """Capture the session the payload names; never raises; logs any failure.

    ``agent`` ``codex``: the payload is Codex's ``notify`` argument and the
    rollout is found by its ``thread-id`` under ``sessions`` (Codex's folder)."""
    start = time.monotonic()
    out = HookOutcome(ok=False)
    try:
        with _alarm(deadline_s):
            if deadline_s <= 0:
                raise HookDeadline
            _capture(stdin, bucket, out, start, deadline_s, security, agent, sessions)
    except HookDeadline:
        out.ok = False
        out.reason = (f"timed out after {max(deadline_s, 0):g}s; the session will be captured by the next hook "
                      f"or 'opentraces capture {agent} --all'")
    except KeyboardInterrupt:
        out.ok = False
        out.reason = "interrupted"
    out.elapsed_s = round(time.monotonic() - start, 6)
    if not out.ok:
        out.logged = log_failure(logs_dir, out.session_id, out.reason or "unknown failure")
    return out


def hook_main(stdin_fd: int, bucket: Bucket, logs_dir: os.PathLike | str,
              *, deadline_s: float = DEFAULT_DEADLINE_S, security: Any = None) -> HookOutcome:
    """Read the payload from ``stdin_fd`` (bounded) and run the hook within ``deadline_s`` overall."""
    start = time.monotonic()
    try:
        data = read_stdin(stdin_fd, min(STDIN_BUDGET_S, max(deadline_s / 4, 0.5)))
    except (HookInputError, OSError, ValueError) as exc:
        reason = str(exc) if isinstance(exc, HookInputError) else f"cannot read stdin: {type(exc).__name__}: {exc}"
        out = HookOutcome(ok=False, reason=reason, elapsed_s=round(time.monotonic() - start, 6))
        out.logged = log_failure(logs_dir, None, reason)
        return out
    return run_hook(data, bucket, logs_dir, deadline_s=deadline_s - (time.monotonic() - start), security=security)


def _capture(stdin: bytes, bucket: Bucket, out: HookOutcome, start: float, deadline_s: float,
             security: Any = None, agent: str = "claude-code", sessions: Path | None = None) -> None:
    lock_timeout = 0.0
    try:
        payload = parse_payload(stdin)
        codex = agent == "codex"
        sid = payload.get("thread-id" if codex else "session_id")
        out.session_id = sid if isinstance(sid, str) and sid else None
        ev = payload.get("type" if codex else "hook_event_name")
        out.event = ev if isinstance(ev, str) else None
        cwd = payload.get("cwd") if isinstance(payload.get("cwd"), str) and payload.get("cwd") else None
        path = find_rollout(sessions, out.session_id) if codex else _transcript_path(payload, cwd)
        out.transcript = str(path)
        project_dir = None if _records_cwd(path) else cwd
        remaining = deadline_s - (time.monotonic() - start)
        lock_timeout = max(0.0, remaining - min(LOCK_RESERVE_S, 0.3 * deadline_s))
        report = capture_paths(bucket, agent_module(agent), [path],
                               project_dir=project_dir, lock_timeout=lock_timeout, security=security)
        if report.skipped:
            out.reason = f"transcript {path} not captured: {report.skipped[0]['reason']}"
            return
        if report.captured:
            item = report.captured[0]
            out.trace_id, out.project, out.new_events = item["trace_id"], item["project"], item["new_events"]
        else:
            out.unchanged = True
        out.ok = True
    except HookInputError as exc:
        out.reason = str(exc)
    except LockedError:
        out.reason = (f"bucket {bucket.root} locked by another writer past {lock_timeout:.3g}s; "
                      "the session will be captured by the next hook")
    except OpentracesError as exc:
        out.reason = str(exc)
    except Exception as exc:  # noqa: BLE001 -- the hook must never fail Claude Code
        out.reason = f"unexpected {type(exc).__name__}: {exc}"


def _transcript_path(payload: dict[str, Any], cwd: str | None) -> Path:
    raw = payload.get("transcript_path")
    if not isinstance(raw, str) or not raw:
        raise HookInputError("hook payload has no transcript_path")
    path = Path(os.path.expanduser(raw))
    if not path.is_absolute() and cwd:
        path = Path(cwd) / path
    if not path.exists():
        raise HookInputError(f"transcript not found: {path}")
    if not path.is_file():
        raise HookInputError(f"transcript is not a file: {path}")
    return path


def find_rollout(sessions: Path | None, thread_id: str | None) -> Path:
    """The rollout file of a Codex thread (``opentraces.agentfiles.find_rollout``), or HookInputError."""
    if not thread_id:
        raise HookInputError("notify payload has no thread-id")
    try:
        check_component(thread_id, "thread id")
    except OpentracesError as exc:
        raise HookInputError(str(exc)) from None
    if not agentfiles.safe_thread_id(thread_id):
        raise HookInputError(f"thread id {thread_id!r} is not a Codex thread id")
    if sessions is None or not sessions.is_dir():
        raise HookInputError(f"Codex sessions folder not found: {sessions}")
    found = agentfiles.find_rollout(sessions, thread_id)
    if found is None:
        raise HookInputError(f"no rollout for thread {thread_id} under {sessions}")
    return found


def _records_cwd(path: Path, max_lines: int = 200) -> bool:
    """Whether the transcript names its own cwd (first rows only; cheap)."""
    try:
        with open(path, "rb") as f:
            for i, line in enumerate(f):
                if i >= max_lines:
                    break
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(row, dict) and isinstance(row.get("cwd"), str) and row["cwd"]:
                    return True
    except OSError:
        pass
    return False


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Raise HookDeadline in the main thread after ``seconds`` (no-op elsewhere or if SIGALRM is taken)."""
    usable = (hasattr(signal, "SIGALRM") and seconds > 0
              and threading.current_thread() is threading.main_thread()
              and signal.getitimer(signal.ITIMER_REAL)[0] == 0)
    if not usable:
        yield
        return

    def fire(signum, frame):  # noqa: ARG001
        if frame is not None and frame.f_code is _LOCK_ACQUIRE:
            # never between a taken flock and its bookkeeping (that would leak a held lock);
            # acquire's own timeout is inside the deadline, so this waits only briefly
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            return
        raise HookDeadline

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            signal.signal(signal.SIGALRM, previous)
