"""The capture cursor (``.state/capture-cursors.json``): what capture last read of each session file.

Per file (absolute path): ``size``, ``mtime_ns``, ``project``, ``trace`` and,
under a security policy, ``redaction``. A file whose size and mtime match
its cursor, and whose trace folder holds ``trace.json``, is unchanged:
capture skips it, and so does the hook's fast path (``opentraces.cli.fast``),
which is why this module imports nothing heavy. A cursor is written only
after the capture it describes committed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from . import layout, statefiles
from .errors import RefusedError


def read(root: Path) -> dict[str, Any]:
    """The cursors of the bucket at ``root`` ({} when there are none or the file is damaged)."""
    try:
        doc = orjson.loads((Path(root) / layout.STATE / statefiles.CURSORS).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def unchanged(root: Path, cur: Any, st: os.stat_result) -> bool:
    """Whether the file ``st`` describes is the one cursor ``cur`` recorded, still projected."""
    if not isinstance(cur, dict) or cur.get("size") != st.st_size or cur.get("mtime_ns") != st.st_mtime_ns:
        return False
    try:
        rel = layout.trace_dir(cur.get("project"), cur.get("trace"))
    except RefusedError:
        return False
    return (Path(root) / rel / layout.TRACE_JSON).exists()
