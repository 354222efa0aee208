"""Guarded reference updates: a ref moves only to a value that keeps what it held.

``guarded_update`` is the one way derived references are rewritten: a
fast-forward (the old tip is an ancestor of the new) is always allowed; any
other move is allowed only when ``lost(repo, old, new)`` names nothing, and
it is applied as a compare-and-swap on the old value. What counts as
"held" is the caller's business (event ids in commit trailers, paths in a
tree); two helpers build the usual rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pygit2
from pygit2.enums import SortMode

from .errors import GitrefError
from .refs import RefConflictError, _current, update_ref

Lost = Callable[[pygit2.Repository, pygit2.Oid, pygit2.Oid], Iterable[str]]


class WouldLoseError(GitrefError):
    """Moving ``name`` from ``old`` to ``new`` would drop what ``lost`` lists."""

    def __init__(self, name: str, old: pygit2.Oid, new: pygit2.Oid, lost: list[str]):
        self.name, self.old, self.new, self.lost = name, old, new, lost
        shown = ", ".join(lost[:3]) + (f" and {len(lost) - 3} more" if len(lost) > 3 else "")
        super().__init__(f"{name}: moving {str(old)[:12]} to {str(new)[:12]} would drop {len(lost)} item(s): {shown}")


def is_ancestor(repo: pygit2.Repository, ancestor: pygit2.Oid, descendant: pygit2.Oid) -> bool:
    return ancestor == descendant or repo.descendant_of(descendant, ancestor)


def only_in(repo: pygit2.Repository, tip: pygit2.Oid, hide: pygit2.Oid | None) -> Iterable[pygit2.Commit]:
    """Commits reachable from ``tip`` but not from ``hide`` (git rev-list tip ^hide)."""
    walker = repo.walk(tip, SortMode.TOPOLOGICAL)
    if hide is not None:
        walker.hide(hide)
    return walker


def lost_commit_keys(keys: Callable[[pygit2.Commit], Iterable[str]]) -> Lost:
    """A rule: every key some commit of the old history holds is held by the new history.

    Only the commits on one side are read (``old ^new`` and ``new ^old``),
    so the cost follows the difference, not the length of the histories.
    """

    def lost(repo: pygit2.Repository, old: pygit2.Oid, new: pygit2.Oid) -> list[str]:
        gone: set[str] = set()
        for c in only_in(repo, old, new):
            gone.update(keys(c))
        if not gone:
            return []
        for c in only_in(repo, new, old):
            gone.difference_update(keys(c))
            if not gone:
                return []
        return sorted(gone)

    return lost


def lost_tree_paths(repo: pygit2.Repository, old: pygit2.Oid, new: pygit2.Oid) -> list[str]:
    """A rule: every file path of the old tip's tree is in the new tip's tree (any content)."""
    diff = repo.diff(repo[old].peel(pygit2.Tree), repo[new].peel(pygit2.Tree))
    return sorted(d.delta.old_file.path for d in diff if d.delta.status == pygit2.enums.DeltaStatus.DELETED)


def plan_update(repo: pygit2.Repository, name: str, new: pygit2.Oid, old: pygit2.Oid | None, *,
                lost: Lost, allow_behind: bool = True) -> tuple[str, pygit2.Oid | None]:
    """How to move ``name`` from ``old`` to ``new`` without losing what ``old`` held: the one rule,
    for local refs (``guarded_update``) and remote ones (``remote.push_ref``, a sync's push).

    Returns (state, lease): ``unchanged``; ``created`` or ``fast-forward`` (no
    lease needed); ``behind`` (``new`` is an ancestor of ``old``: nothing to
    move; only with ``allow_behind``, else it is judged like any rewrite);
    ``replaced`` (a rewrite ``lost`` found harmless; lease = ``old``). Raises
    WouldLoseError when ``lost`` names something. ``old`` must be in ``repo``.
    """
    if old == new:
        return "unchanged", None
    if old is None:
        return "created", None
    if is_ancestor(repo, old, new):
        return "fast-forward", None
    if allow_behind and is_ancestor(repo, new, old):
        return "behind", None
    gone = list(lost(repo, old, new))
    if gone:
        raise WouldLoseError(name, old, new, gone)
    return "replaced", old


def guarded_update(
    repo: pygit2.Repository,
    name: str,
    new: pygit2.Oid,
    expected_old: pygit2.Oid | None,
    *,
    lost: Lost,
    message: str | None = None,
) -> str:
    """Move ``name`` from ``expected_old`` to ``new``; returns what happened.

    ``unchanged``, ``created``, ``fast-forward`` or ``replaced`` (``plan_update``
    decides; a move back is judged like any rewrite), then a compare-and-swap on
    ``expected_old`` (RefConflictError if the ref moved meanwhile). Nothing is
    ever forced.
    """
    state, _lease = plan_update(repo, name, new, expected_old, lost=lost, allow_behind=False)
    if state == "unchanged":
        actual = _current(repo, name)
        if actual != new:
            raise RefConflictError(name, expected_old, actual)
        return state
    update_ref(repo, name, new, expected_old, force=False, message=message)
    return state
