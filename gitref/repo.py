"""Opening and creating repositories, and locating their object directory."""

from __future__ import annotations

import os
from pathlib import Path

import pygit2
from pygit2.enums import RepositoryOpenFlag

from .errors import GitrefError, NotFoundError

PathLike = str | os.PathLike[str]


class NotARepositoryError(GitrefError):
    """A path exists but is not a Git repository."""


def open_repo(path: PathLike) -> pygit2.Repository:
    """Open the repository at exactly ``path`` (no search in parent folders).

    Raises NotFoundError if nothing is there, NotARepositoryError if the
    path exists but holds no repository.
    """
    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"no repository at {p}")
    try:
        return pygit2.Repository(str(p), RepositoryOpenFlag.NO_SEARCH)
    except pygit2.GitError as exc:
        raise NotARepositoryError(f"{p} is not a Git repository: {exc}") from exc


def open_or_init_bare(path: PathLike) -> pygit2.Repository:
    """Open the repository at ``path``, or create a bare one there.

    A missing path or an empty folder becomes a new bare repository; an
    existing repository (bare or not) is opened as is; a non-empty folder
    that is not a repository raises NotARepositoryError, so we never spray
    Git files into someone's data.
    """
    p = Path(path)
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        return open_repo(p)
    p.mkdir(parents=True, exist_ok=True)
    return pygit2.init_repository(str(p), bare=True, initial_head="main")


def set_head(repo: pygit2.Repository, target: str) -> bool:
    """Make ``HEAD`` a symbolic reference to ``target`` (e.g. ``refs/heads/main``).

    HEAD names which branch a clone checks out; it holds no data, so it is
    rewritten when it names something else. Returns True if it changed.
    """
    try:
        current = repo.references.get("HEAD")
        if current is not None and current.type == pygit2.enums.ReferenceType.SYMBOLIC and current.target == target:
            return False
    except pygit2.GitError:
        pass
    repo.references.create("HEAD", target, force=True)
    return True


def objects_dir(repo: pygit2.Repository) -> Path:
    """The ``objects`` folder of ``repo``, following a worktree's ``commondir``."""
    gitdir = Path(repo.path)
    common = gitdir / "commondir"
    if common.is_file():
        gitdir = (gitdir / common.read_text().strip()).resolve()
    return gitdir / "objects"


def pack_dir(repo: pygit2.Repository) -> Path:
    """The ``objects/pack`` folder of ``repo``."""
    return objects_dir(repo) / "pack"
