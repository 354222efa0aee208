"""References: read, list, compare-and-swap update and delete, append with retry."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pygit2

from . import faults
from .errors import GitrefError, NotFoundError, ObjectTypeError
from .objects import COMMIT


class InvalidRefNameError(GitrefError, ValueError):
    """A reference name Git would refuse (``git check-ref-format``)."""


class RefConflictError(GitrefError):
    """A compare-and-swap failed: the reference is not at the expected value.

    ``actual`` is what the reference held under the lock (None: absent).
    """

    def __init__(self, name: str, expected: pygit2.Oid | None, actual: pygit2.Oid | None, why: str = ""):
        self.name, self.expected, self.actual = name, expected, actual
        was = "nothing" if actual is None else str(actual)
        wanted = "nothing" if expected is None else str(expected)
        super().__init__(why or f"{name} is at {was}, expected {wanted}")


class RefLockedError(RefConflictError):
    """Another writer holds the reference's lock (``<ref>.lock``); retry later."""

    def __init__(self, name: str, expected: pygit2.Oid | None, detail: str):
        super().__init__(name, expected, None, f"{name} is locked by another writer: {detail}")


class RefUpdateError(GitrefError):
    """A reference could not be written for another reason (a name clash such as
    ``refs/a`` vs ``refs/a/b``, permissions); retrying does not help."""


def _is_lock_contention(exc: Exception) -> bool:
    """Whether libgit2 failed because ``<ref>.lock`` exists (GIT_ELOCKED).

    pygit2 does not expose the error code, so the two messages libgit2 uses
    are matched: "failed to lock file '<ref>.lock' for writing" (lock seen
    before opening) and "failed to create locked file '<ref>.lock': File
    exists" (lost the O_EXCL race).
    """
    msg = str(exc)
    return "failed to lock file" in msg or "failed to create locked file" in msg


def check_ref_name(name: str) -> str:
    """Return ``name`` if it is a full, valid reference name under ``refs/``."""
    if not isinstance(name, str) or not name.startswith("refs/") or not pygit2.reference_is_valid_name(name):
        raise InvalidRefNameError(f"invalid reference name {name!r}")
    return name


def get_ref(repo: pygit2.Repository, name: str) -> pygit2.Oid | None:
    """The object ``name`` points at (symbolic references resolved), or None."""
    ref = repo.references.get(check_ref_name(name))
    if ref is None:
        return None
    try:
        return ref.resolve().target
    except KeyError:  # a symbolic reference to nothing
        return None


def list_refs(repo: pygit2.Repository, prefix: str = "refs/") -> dict[str, pygit2.Oid]:
    """``{name: oid}`` of every direct reference whose name starts with ``prefix``."""
    out = {}
    for ref in repo.references.iterator():
        if ref.name.startswith(prefix) and ref.type == pygit2.enums.ReferenceType.DIRECT:
            out[ref.name] = ref.target
    return dict(sorted(out.items()))


def _ensure_object(repo: pygit2.Repository, oid: pygit2.Oid) -> None:
    if not isinstance(oid, pygit2.Oid):
        raise TypeError(f"expected an Oid, got {type(oid).__name__}")
    if oid not in repo:
        raise NotFoundError(f"object {oid} is not in the repository (flush the writer first)")


def _current(repo: pygit2.Repository, name: str) -> pygit2.Oid | None:
    ref = repo.references.get(name)
    if ref is None:
        return None
    if ref.type != pygit2.enums.ReferenceType.DIRECT:
        raise ObjectTypeError(f"{name} is a symbolic reference")
    return ref.target


def _locked_swap(
    repo: pygit2.Repository,
    name: str,
    new: pygit2.Oid | None,
    expected_old: pygit2.Oid | None,
    message: str | None,
) -> None:
    """Lock ``name``, compare with ``expected_old``, then set ``new`` (None: delete)."""
    try:
        with pygit2.ReferenceTransaction(repo) as txn:
            try:
                txn.lock_ref(name)
            except pygit2.GitError as exc:
                if _is_lock_contention(exc):
                    raise RefLockedError(name, expected_old, str(exc)) from exc
                raise RefUpdateError(f"cannot lock {name}: {exc}") from exc
            actual = _current(repo, name)
            if actual != expected_old:
                raise RefConflictError(name, expected_old, actual)
            faults.point(f"ref {name}")
            if new is None:
                txn.remove(name)
            else:
                # No signature: pygit2 1.21 cannot pass one here (TypeError in
                # cffi); reflogs are off in bare repositories anyway.
                txn.set_target(name, new, message=message or "gitref: update")
    except pygit2.GitError as exc:  # raised by the commit on leaving the block
        if _is_lock_contention(exc):  # e.g. packed-refs.lock, taken to delete
            raise RefLockedError(name, expected_old, str(exc)) from exc
        raise RefUpdateError(f"updating {name} failed: {exc}") from exc


def update_ref(
    repo: pygit2.Repository,
    name: str,
    new: pygit2.Oid,
    expected_old: pygit2.Oid | None,
    *,
    force: bool,
    message: str | None = None,
) -> None:
    """Point ``name`` at ``new``, which must already be in ``repo``.

    ``force=False``: compare-and-swap. The reference's lock file is taken,
    its value read under the lock and compared with ``expected_old`` (None:
    the reference must not exist); a mismatch raises RefConflictError and
    leaves it untouched, a lock held by another writer raises RefLockedError.
    ``force=True``: set unconditionally, ``expected_old`` is ignored.
    """
    check_ref_name(name)
    _ensure_object(repo, new)
    if force:
        try:
            repo.create_reference_direct(name, new, True, message=message or "gitref: force update")
        except (pygit2.GitError, OSError) as exc:  # pygit2's C layer raises OSError for file errors
            if _is_lock_contention(exc):
                raise RefLockedError(name, expected_old, str(exc)) from exc
            raise RefUpdateError(f"updating {name} failed: {exc}") from exc
        return
    _locked_swap(repo, name, new, expected_old, message)


def delete_ref(repo: pygit2.Repository, name: str, expected_old: pygit2.Oid | None) -> None:
    """Delete ``name`` if it points at ``expected_old`` (under its lock), else RefConflictError.

    ``expected_old=None`` only succeeds if the reference is already absent.
    """
    check_ref_name(name)
    if expected_old is None:
        actual = _current(repo, name)
        if actual is not None:
            raise RefConflictError(name, None, actual)
        return
    _locked_swap(repo, name, None, expected_old, None)


def append_commit(
    repo: pygit2.Repository,
    ref: str,
    build: Callable[[pygit2.Oid | None], pygit2.Oid],
    retries: int = 5,
    *,
    message: str | None = None,
) -> pygit2.Oid:
    """Advance ``ref`` to ``build(current tip)``, retrying when another writer wins.

    ``build`` receives the tip (None if the ref is absent), must write a
    commit (and flush it into ``repo``) and return its id; it is called
    again on the new tip after each RefConflictError/RefLockedError, up to
    ``retries`` more times with a short random back-off, then the last
    conflict is raised. A deterministic ``build`` makes retries cheap: the
    same parent gives the same commit, and its flush writes nothing.
    """
    check_ref_name(ref)
    attempt = 0
    while True:
        tip = _current(repo, ref)
        new = build(tip)
        _ensure_object(repo, new)
        if repo[new].type != COMMIT:
            raise ObjectTypeError(f"build returned {new}, which is not a commit")
        try:
            update_ref(repo, ref, new, tip, force=False, message=message or "gitref: append")
            return new
        except RefConflictError:
            if attempt >= retries:
                raise
            attempt += 1
            time.sleep(random.uniform(0.001, 0.004) * attempt)
