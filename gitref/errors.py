"""Base error of gitref and the errors raised by more than one module."""

from __future__ import annotations


class GitrefError(Exception):
    """Base of every error gitref raises on purpose."""


class NotFoundError(GitrefError, KeyError):
    """An object, reference or repository that was asked for does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ObjectTypeError(GitrefError, TypeError):
    """An object exists but is not of the type the caller needs."""
