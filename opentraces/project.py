"""Project identity: ``<name>-<8 hex>`` from the repository's root commit.

For a Git repository on this machine the identity is its root commit (the
last commit reached by following first parents from HEAD), so every clone
agrees without a marker file. Otherwise it is the absolute path.

The readable ``<name>`` a capture *claims* is the repository name of the
``origin`` remote (``git@host:team/app.git`` -> ``app``), which clones share,
else the checkout folder's name. Which claim a bucket uses for folders and
refs is decided by ``opentraces.projects`` (one rule over the events).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pygit2

from .ids import project_slug
from .repourl import canonical_url


@dataclass(frozen=True)
class Project:
    slug: str
    root: str  # absolute folder the project's paths are relative to
    root_commit: str | None  # hex of the Git root commit, when a repository
    repository_url: str | None = None  # the origin remote, canonical (``opentraces.repourl``)


def root_commit_of(repo: pygit2.Repository) -> str | None:
    try:
        head = repo.head.target
    except (pygit2.GitError, KeyError):
        return None
    commit = repo[head]
    while commit.parent_ids:
        commit = repo[commit.parent_ids[0]]
    return str(commit.id)


def _origin_url(repo: pygit2.Repository) -> str:
    try:
        return repo.remotes["origin"].url or ""
    except (KeyError, ValueError, pygit2.GitError):
        return ""


def _claimed_name(url: str, root: Path) -> str:
    """The origin remote's repository name, else the folder's name."""
    name = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    if name.endswith(".git"):
        name = name[:-4]
    return name if name and name not in (".", "..") else root.name


def resolve_project(folder: str | os.PathLike) -> Project:
    """Identify the project that ``folder`` belongs to (need not exist here)."""
    path = Path(os.path.abspath(folder))
    if path.is_dir():
        git_dir = pygit2.discover_repository(str(path))
        if git_dir:
            try:
                repo = pygit2.Repository(git_dir)
            except pygit2.GitError:
                repo = None
            if repo is not None and repo.workdir:
                root = Path(repo.workdir.rstrip("/"))
                rc = root_commit_of(repo)
                if rc:
                    url = _origin_url(repo)
                    return Project(project_slug(_claimed_name(url, root), f"git:{rc}"), str(root), rc,
                                   canonical_url(url))
                return Project(project_slug(root.name, f"path:{root}"), str(root), None)
    return Project(project_slug(path.name, f"path:{path}"), str(path), None)


def relative_path(path: str, root: str) -> str:
    """``path`` relative to ``root`` when inside it, else unchanged (normalized)."""
    if not os.path.isabs(path):
        return os.path.normpath(path)
    norm = os.path.normpath(path)
    root_norm = os.path.normpath(root)
    if norm == root_norm:
        return "."
    if norm.startswith(root_norm.rstrip("/") + "/"):
        return norm[len(root_norm.rstrip("/")) + 1 :]
    return norm
