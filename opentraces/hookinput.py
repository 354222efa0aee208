"""A hook's payload on stdin: read bounded, parsed strictly (standard library and orjson only).

Shared by the Claude Code hook (``opentraces.capture.hook``) and the entry
point's fast path (``opentraces.cli.fast``), which reads the payload before
anything heavy is imported.
"""

from __future__ import annotations

import os
import select
import time
from typing import Any

import orjson

STDIN_BUDGET_S = 5.0  # Claude Code writes the payload and closes stdin at once
MAX_STDIN = 4 * 1024 * 1024


class HookInputError(Exception):
    """The hook payload (stdin) is unusable."""


def read_stdin(fd: int, budget_s: float = STDIN_BUDGET_S) -> bytes:
    """All of ``fd`` up to EOF, or HookInputError when it does not close within ``budget_s``."""
    if os.isatty(fd):
        raise HookInputError("stdin is a terminal, not a hook payload (Claude Code pipes the payload in)")
    deadline = time.monotonic() + budget_s
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HookInputError(f"stdin was not closed within {budget_s:g}s")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_STDIN:
            raise HookInputError(f"stdin is larger than {MAX_STDIN} bytes, not a hook payload")
        chunks.append(chunk)


def parse_payload(stdin: bytes) -> dict[str, Any]:
    if not stdin.strip():
        raise HookInputError("empty stdin (no hook payload)")
    try:
        payload = orjson.loads(stdin)
    except orjson.JSONDecodeError as exc:
        raise HookInputError(f"stdin is not valid JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise HookInputError(f"hook payload is a JSON {type(payload).__name__}, not an object")
    return payload
