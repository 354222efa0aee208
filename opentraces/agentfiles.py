"""Where agents keep their session files: the light part (standard library only).

Used by the capture parsers and by the hook's fast path (``opentraces.cli.fast``),
which must answer before anything heavy is imported.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping


def default_root(home: Path, env: Mapping[str, str], var: str, folder: str, leaf: str) -> Path:
    """``$var/leaf`` when ``var`` is set (``~`` is ``home``), else ``home/folder/leaf``."""
    base = env.get(var) or ""
    if base:
        if base == "~" or base.startswith("~/"):
            return Path(home) / base[2:] / leaf
        return Path(base) / leaf
    return Path(home) / folder / leaf


def codex_sessions(home: Path, env: Mapping[str, str]) -> Path:
    """``$CODEX_HOME/sessions`` when set, else ``<home>/.codex/sessions``."""
    return default_root(home, env, "CODEX_HOME", ".codex", "sessions")


def safe_thread_id(thread_id: object) -> bool:
    """A Codex thread id we may put in a file name pattern (no path, no glob characters)."""
    return (isinstance(thread_id, str) and bool(thread_id) and not thread_id.startswith(".")
            and not any(c in thread_id for c in "/\\*?[]\x00") and len(thread_id) <= 200)


def find_rollout(sessions: Path, thread_id: str, *, deep: bool = True) -> Path | None:
    """The rollout file of a Codex thread: ``<sessions>/YYYY/MM/DD/rollout-<time>-<thread id>.jsonl``.

    Today's and yesterday's folders first (UTC and local: the turn just
    ended), then, when ``deep``, the whole tree. ``thread_id`` must pass
    ``safe_thread_id``."""
    pattern = f"rollout-*-{thread_id}.jsonl"
    now = time.time()
    days: list[Path] = []
    for t in (now, now - 86400):
        for stamp in (time.gmtime(t), time.localtime(t)):
            day = sessions / time.strftime("%Y/%m/%d", stamp)
            if day not in days:
                days.append(day)
    for day in days:
        found = sorted(day.glob(pattern)) if day.is_dir() else []
        if found:
            return found[-1]
    if deep:
        found = sorted(sessions.rglob(pattern)) if sessions.is_dir() else []
        if found:
            return found[-1]
    return None
