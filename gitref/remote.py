"""Moving one reference on a remote with the same guarantees as locally.

libgit2's push has no compare-and-swap and its local transport skips
receive-pack (hooks, atomic checks), so remote moves use the ``git`` CLI:

* a fast-forward or a creation is a plain push (no ``+``); the server
  refuses it if the ref moved meanwhile;
* any other move is checked first: the remote's current value is fetched
  into a private staging ref, ``lost(repo, old, new)`` must name nothing,
  and the push carries ``--force-with-lease=<ref>:<old>`` so the server
  applies it only if the ref still holds ``old`` (compare-and-swap).

Every push is ``--porcelain``; the per-ref status line is parsed and a
rejection raises RemoteRefRejected with the server's reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

import pygit2

from .errors import GitrefError
from .guard import Lost, WouldLoseError, is_ancestor
from .refs import check_ref_name, delete_ref, get_ref
from .repo import objects_dir

STAGING_PREFIX = "refs/gitref-staging/"


class RemoteError(GitrefError):
    """The remote could not be reached or read (the message is git's)."""


class RemoteRefRejected(GitrefError):
    """The remote refused to move a reference (``reason`` is the server's)."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason
        super().__init__(f"the remote rejected {name}: {reason}")


@dataclass(frozen=True)
class PushResult:
    name: str
    old: pygit2.Oid | None
    new: pygit2.Oid
    state: str  # unchanged, created, fast-forward, replaced


def _git(repo: pygit2.Repository, *args: str, env: dict[str, str] | None = None,
         git: str = "git") -> subprocess.CompletedProcess:
    exe = shutil.which(git)
    if not exe:
        raise RemoteError("git is not installed")
    base = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C",
            "PATH": os.path.dirname(exe) + os.pathsep + os.defpath, "GIT_TERMINAL_PROMPT": "0"}
    if env:
        base.update(env)
    gitdir = str(objects_dir(repo).parent)
    return subprocess.run([exe, f"--git-dir={gitdir}", "-c", "gc.auto=0", *args], env=base,
                          capture_output=True, text=True, check=False)


def remote_refs(repo: pygit2.Repository, url: str, pattern: str | None = None, *,
                env: dict[str, str] | None = None) -> dict[str, pygit2.Oid]:
    """``git ls-remote url [pattern]`` as ``{name: oid}`` (peeled tags left out)."""
    done = _git(repo, "ls-remote", url, *([pattern] if pattern else []), env=env)
    if done.returncode != 0:
        raise RemoteError(done.stderr.strip() or f"git ls-remote failed ({done.returncode})")
    out = {}
    for line in done.stdout.splitlines():
        oid, _, name = line.partition("\t")
        if name and not name.endswith("^{}"):
            out[name] = pygit2.Oid(hex=oid)
    return out


def _fetch_to_staging(repo: pygit2.Repository, url: str, name: str, env) -> str:
    staging = STAGING_PREFIX + name[len("refs/"):]
    current = get_ref(repo, staging)
    if current is not None:
        delete_ref(repo, staging, current)
    done = _git(repo, "fetch", "--no-tags", "--no-write-fetch-head", "-q", url, f"{name}:{staging}", env=env)
    if done.returncode != 0:
        raise RemoteError(done.stderr.strip() or f"git fetch of {name} failed")
    return staging


def _push(repo: pygit2.Repository, url: str, refspec: str, name: str, lease: str | None, env) -> None:
    args = ["push", "--porcelain"]
    if lease:
        args.append(f"--force-with-lease={name}:{lease}")
    done = _git(repo, *args, url, refspec, env=env)
    status = None
    for line in done.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1].endswith(":" + name):
            status = (parts[0], parts[2])
    if status is None:
        raise RemoteError(done.stderr.strip() or f"git push of {name} failed ({done.returncode})")
    flag, summary = status
    if flag == "!":
        reason = summary
        for line in done.stderr.splitlines():  # a hook's or the server's own words
            if line.startswith("remote:") and line[7:].strip():
                reason = f"{summary}: {line[7:].strip()}"
                break
        raise RemoteRefRejected(name, reason)


def push_ref(repo: pygit2.Repository, url: str, name: str, *, lost: Lost,
             env: dict[str, str] | None = None) -> PushResult:
    """Make ``name`` on the remote equal the local ``name``, never losing what the remote held.

    A creation or fast-forward is a plain push. A rewrite is pushed only when
    ``lost`` names nothing in the remote's value, and with a lease on that
    value (compare-and-swap on the server); otherwise WouldLoseError.
    """
    check_ref_name(name)
    new = get_ref(repo, name)
    if new is None:
        raise GitrefError(f"{name} does not exist locally")
    old = remote_refs(repo, url, name, env=env).get(name)
    if old == new:
        return PushResult(name, old, new, "unchanged")
    if old is None:
        _push(repo, url, f"{new}:{name}", name, None, env)
        return PushResult(name, None, new, "created")
    staging = None
    if old not in repo:
        staging = _fetch_to_staging(repo, url, name, env)
    try:
        if is_ancestor(repo, old, new):
            _push(repo, url, f"{new}:{name}", name, None, env)
            return PushResult(name, old, new, "fast-forward")
        gone = list(lost(repo, old, new))
        if gone:
            raise WouldLoseError(name, old, new, gone)
        _push(repo, url, f"{new}:{name}", name, str(old), env)
        return PushResult(name, old, new, "replaced")
    finally:
        if staging is not None:
            current = get_ref(repo, staging)
            if current is not None:
                delete_ref(repo, staging, current)
