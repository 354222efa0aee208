"""The agent registry: one entry per agent module, in one place.

Each module exposes ``AGENT``, ``parse(data, name)``, ``default_root(home,
env)`` and ``discover(root)``. Adding an agent is one new module and one
line here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import RefusedError

AGENTS = {
    "claude-code": "opentraces.capture.claude_code",
    "codex": "opentraces.capture.codex",
    "pi": "opentraces.capture.pi",
}


def agent_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(AGENTS[name])
    except KeyError:
        raise RefusedError(f"unknown agent {name!r}", f"use one of: {', '.join(AGENTS)}") from None
