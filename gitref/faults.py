"""A test-only switch: make the N-th write of this process fail or the process die.

Every durable write point (a file created, renamed or linked into place, a
pack written, a ref moved) calls ``point(name)``. Nothing happens unless
``arm(n, action)`` was called (by the CLI, when ``OPENTRACES_FAULT`` is set
in a test). ``action``: ``enospc`` or ``eio`` raise the OSError a full or
failing disk raises; ``die`` ends the process at once (``os._exit``), like
kill -9. ``count()`` tells how many write points a run passed.
"""

from __future__ import annotations

import errno
import os

_state = {"armed": 0, "action": "", "seen": 0, "log": None}


def arm(n: int, action: str, log: str | None = None) -> None:
    if action not in ("enospc", "eio", "die"):
        raise ValueError(f"unknown fault action {action!r}")
    _state.update(armed=n, action=action, seen=0, log=log)


def count() -> int:
    return _state["seen"]


def point(name: str) -> None:
    if not _state["armed"] and _state["log"] is None:
        return
    _state["seen"] += 1
    if _state["log"]:
        with open(_state["log"], "a") as f:
            f.write(f"{_state['seen']} {name}\n")
    if _state["armed"] and _state["seen"] == _state["armed"]:
        if _state["action"] == "die":
            os._exit(137)
        code = errno.ENOSPC if _state["action"] == "enospc" else errno.EIO
        raise OSError(code, os.strerror(code), name)
