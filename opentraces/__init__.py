"""opentraces: capture agent sessions into a portable, Git-native bucket.

The names below load on first use (PEP 562), so a process that needs only
a light part of the package (the hook's fast path) does not pay for pygit2.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Bucket": ".bucket", "CommitResult": ".writer", "Writer": ".writer", "writing": ".writer",
    "ConfigError": ".errors", "CorruptionError": ".errors", "ExitStatus": ".errors", "LockedError": ".errors",
    "NotFoundError": ".errors", "OfflineError": ".errors", "OpentracesError": ".errors", "RefusedError": ".errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'opentraces' has no attribute {name!r}")
