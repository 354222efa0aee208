"""The bucket's single writer lock (``.state/lock``, an flock).

Readers never take it. A process that dies releases it (the kernel drops
flocks with the file descriptor), so a crash never leaves the bucket locked.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from .errors import LockedError


class WriterLock:
    def __init__(self, path: Path, timeout: float = 30.0):
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> "WriterLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockedError(
                        f"the bucket is locked by another writer (waited {self.timeout:g}s)",
                        "retry when the other capture or repair has finished",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "WriterLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class ReaderLock:
    """A shared lock on ``.state/lock`` for readers that need one consistent state (``verify --full``):
    it waits for a writer in progress and keeps the next one out until released. Opened read-only and
    never created, so a read command still writes nothing; no lock file means no writer ever ran."""

    def __init__(self, path: Path, timeout: float = 30.0):
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> "ReaderLock":
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return self
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockedError(f"a writer kept the bucket busy for {self.timeout:g}s",
                                      "run the command again when the capture or repair has finished") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
