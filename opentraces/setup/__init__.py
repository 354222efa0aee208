"""Install opentraces into coding agents (automatic capture)."""

from .claude_settings import (
    HOOK_EVENTS,
    HOOK_MARKER,
    SCHEMA,
    SetupResult,
    hook_command,
    install,
    settings_path,
    uninstall,
)

__all__ = ["HOOK_EVENTS", "HOOK_MARKER", "SCHEMA", "SetupResult", "hook_command", "install", "settings_path",
           "uninstall"]
