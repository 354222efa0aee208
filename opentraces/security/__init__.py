"""Bucket security: redaction tools and the policies that switch them (DESIGN.md §7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def capture_filter_for(home: Path, environ: dict[str, str] | None = None, user_home: Path | None = None) -> Any:
    """The capture filter of this machine's policy, or None when no tool is on. With policy ``off``
    this reads config.json only: the hook does not pay for loading the tools it will not run."""
    from .. import config as config_mod
    from .policy import enabled

    doc = config_mod.load(home)
    if not any(enabled(doc).values()):
        return None
    from .tools import capture_filter

    return capture_filter(home, environ, user_home, doc)
