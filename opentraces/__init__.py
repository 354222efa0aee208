"""opentraces: capture agent sessions into a portable, Git-native bucket."""

from .bucket import Bucket, CommitResult
from .errors import (
    ConfigError,
    CorruptionError,
    ExitStatus,
    LockedError,
    NotFoundError,
    OfflineError,
    OpentracesError,
    RefusedError,
)

__all__ = [
    "Bucket", "CommitResult", "ConfigError", "CorruptionError", "ExitStatus", "LockedError",
    "NotFoundError", "OfflineError", "OpentracesError", "RefusedError",
]
