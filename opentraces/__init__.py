"""opentraces: capture agent sessions into a portable, Git-native bucket."""

from .bucket import Bucket
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
from .writer import CommitResult, Writer, writing

__all__ = [
    "Bucket", "CommitResult", "ConfigError", "CorruptionError", "ExitStatus", "LockedError",
    "NotFoundError", "OfflineError", "OpentracesError", "RefusedError", "Writer", "writing",
]
