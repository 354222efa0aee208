"""Error types of the opentraces domain, each carrying its exit status.

DESIGN.md §8: 0 ok; 1 checks found problems; 2 usage error or refused;
3 configuration, auth or remote unreachable; 4 data needed but not present
offline; 5 corruption that stops the command; 6 the disk is full or a write
failed (the one code DESIGN.md left free; nothing committed is lost); 7
bucket locked.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0
    PROBLEMS = 1
    USAGE = 2
    CONFIG = 3
    OFFLINE = 4
    CORRUPT = 5
    STORAGE = 6
    LOCKED = 7


class OpentracesError(Exception):
    """Base of every error the library raises on purpose.

    ``hint`` is the next step for the user (a command to run).
    """

    exit_status = ExitStatus.USAGE

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # one line: message plus next step
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class RefusedError(OpentracesError):
    """The command will not do this (bad input, wrong target, unsafe)."""

    exit_status = ExitStatus.USAGE


class NotFoundError(OpentracesError, KeyError):
    """A named thing (trace, project, step) does not exist."""

    exit_status = ExitStatus.USAGE

    def __str__(self) -> str:
        return OpentracesError.__str__(self)


class ConfigError(OpentracesError):
    exit_status = ExitStatus.CONFIG


class OfflineError(OpentracesError):
    exit_status = ExitStatus.OFFLINE


class CorruptionError(OpentracesError):
    exit_status = ExitStatus.CORRUPT


class LockedError(OpentracesError):
    exit_status = ExitStatus.LOCKED


class StorageError(OpentracesError):
    """The disk is full or a write failed; what was committed before stays committed."""

    exit_status = ExitStatus.STORAGE
