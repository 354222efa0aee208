"""Pack files of a repository: installing new packs, counting, consolidating."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pygit2

from .errors import GitrefError
from .repo import objects_dir, pack_dir

_LOOSE_DIR = re.compile(r"^[0-9a-f]{2}$")
_LOOSE_NAME = re.compile(r"^[0-9a-f]{38}$")
_PACK_SUFFIXES = (".idx", ".pack", ".rev", ".bitmap", ".promisor", ".mtimes")
DEFAULT_MAX_PACKS = 16


class PackError(GitrefError):
    """Writing or consolidating packs failed."""


def write_pack(repo: pygit2.Repository, builder: pygit2.PackBuilder) -> Path | None:
    """Write ``builder``'s objects as one pack into ``repo`` and return the .pack path.

    libgit2 writes into a private temporary folder next to ``objects``;
    the ``.pack`` and then the ``.idx`` are renamed into ``objects/pack``,
    so readers (who find packs by their index) never see a half pack.
    Returns None when the builder holds no object.
    """
    if len(builder) == 0:
        return None
    target = pack_dir(repo)
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gitref-pack-", dir=objects_dir(repo).parent))
    try:
        try:
            builder.write(str(tmp))
        except pygit2.GitError as exc:
            raise PackError(f"writing pack failed: {exc}") from exc
        packs = sorted(tmp.glob("pack-*.pack"))
        if len(packs) != 1:
            raise PackError(f"expected one pack from PackBuilder, found {len(packs)}")
        pack = packs[0]
        idx = pack.with_suffix(".idx")
        final = target / pack.name
        os.replace(pack, final)
        os.replace(idx, target / idx.name)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pack_paths(repo: pygit2.Repository) -> list[Path]:
    """The ``.pack`` files of ``repo`` that have an index (the ones Git reads)."""
    d = pack_dir(repo)
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("pack-*.pack") if p.with_suffix(".idx").exists())


def pack_count(repo: pygit2.Repository) -> int:
    """How many packs ``repo`` has."""
    return len(pack_paths(repo))


def _loose_paths(repo: pygit2.Repository) -> list[Path]:
    out = []
    root = objects_dir(repo)
    if not root.is_dir():
        return out
    for sub in root.iterdir():
        if _LOOSE_DIR.match(sub.name) and sub.is_dir():
            out.extend(f for f in sub.iterdir() if _LOOSE_NAME.match(f.name))
    return out


def loose_object_count(repo: pygit2.Repository) -> int:
    """How many loose objects ``repo`` has (``count`` in ``git count-objects -v``)."""
    return len(_loose_paths(repo))


def packs_size(repo: pygit2.Repository) -> int:
    """Bytes of every pack and index of ``repo``."""
    return sum(p.stat().st_size + p.with_suffix(".idx").stat().st_size for p in pack_paths(repo))


def _git_env(exe: str) -> dict[str, str]:
    return {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C", "PATH": os.path.dirname(exe)}


def _run_git(repo: pygit2.Repository, exe: str, *args: str) -> None:
    gitdir = objects_dir(repo).parent
    cmd = [exe, "-c", "repack.writeBitmaps=false", "-c", "gc.auto=0", f"--git-dir={gitdir}", *args]
    done = subprocess.run(cmd, env=_git_env(exe), capture_output=True, check=False)
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()
        raise PackError(f"git {args[0]} failed ({done.returncode}): {err}")


def pack_refs(repo: pygit2.Repository, *, git: str = "git") -> None:
    """``git pack-refs --all --prune``: one packed-refs file instead of a file per ref."""
    exe = shutil.which(git)
    if exe:
        _run_git(repo, exe, "pack-refs", "--all", "--prune")


def prune_repack(repo: pygit2.Repository, *, git: str = "git") -> int:
    """Repack every reachable object into one pack with delta compression, drop
    everything unreachable, and pack the refs; returns the new pack bytes.

    ``git repack -a -d`` (reachable objects only, old packs deleted) then
    ``git pack-refs --all --prune``. Call it only while no other process can be
    staging objects for a ref it has not set yet (the caller's writer lock).
    """
    exe = shutil.which(git)
    if not exe:
        raise PackError("git is not installed; cannot prune the repository")
    _run_git(repo, exe, "repack", "-a", "-d", "-q", "--window=10", "--depth=50")
    _run_git(repo, exe, "pack-refs", "--all", "--prune")
    for tmp in objects_dir(repo).glob("pack/tmp_*"):  # left by an interrupted repack
        tmp.unlink(missing_ok=True)
    return packs_size(repo)


def drop_unreachable(repo: pygit2.Repository, *, git: str = "git") -> int:
    """Make every unreachable object go now: reflogs expired, ``repack -a -d``, loose objects
    pruned (``prune --expire=now``). For a deliberate history rewrite (a redaction), when the
    old objects must not stay on disk; returns the new pack bytes."""
    exe = shutil.which(git)
    if not exe:
        raise PackError("git is not installed; cannot drop unreachable objects")
    _run_git(repo, exe, "reflog", "expire", "--expire=now", "--all")
    prune_repack(repo, git=git)
    _run_git(repo, exe, "prune", "--expire=now")
    return packs_size(repo)


def consolidate_packs(
    repo: pygit2.Repository,
    max_packs: int = DEFAULT_MAX_PACKS,
    *,
    git: str | None = "git",
) -> bool:
    """Repack everything into one pack when ``repo`` has more than ``max_packs``.

    Returns True if it repacked. Every object survives: reachable or not,
    packed or loose (nothing is pruned; pruning is ``git gc``'s business).

    With ``git`` (a name on PATH or a path) available this runs
    ``git repack -d -q --geometric=2``: Git's own repack is the reference
    implementation, is safe against concurrent writers (it deletes only the
    packs it read). Geometric repacking rolls the small packs up into one
    until the sizes form a geometric progression, so its cost follows the
    recent packs, not the whole repository (a full ``-a`` repack every few
    captures grew with the bucket). It packs every object of the packs it
    rolls up, reachable or not, so data staged before its ref was set is
    never lost; this writer never leaves loose objects. Delta search is on
    (Git's default window): successive versions of a tree or of a file's
    before/after snapshot delta well, and the roll-ups are small. Pruning
    is ``prune_repack``. Git runs with system and global
    config ignored, so the result does not depend on the user's setup.
    Without Git (``git=None`` or not found) a PackBuilder over every object
    in the odb writes the pack, then the packs and loose objects listed
    before it started are removed.
    """
    if pack_count(repo) <= max_packs:
        return False
    exe = shutil.which(git) if git else None
    if exe:
        _git_repack(repo, exe)
    else:
        _builder_repack(repo)
    return True


def _git_repack(repo: pygit2.Repository, exe: str) -> None:
    gitdir = objects_dir(repo).parent
    env = {
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
        "PATH": os.path.dirname(exe),
    }
    cmd = [
        exe, "-c", "repack.writeBitmaps=false", "-c", "gc.auto=0",
        f"--git-dir={gitdir}", "repack", "-d", "-q", "--geometric=2",
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()
        raise PackError(f"git repack failed ({done.returncode}): {err}")


def _builder_repack(repo: pygit2.Repository) -> None:
    old_packs = pack_paths(repo)
    old_loose = _loose_paths(repo)
    builder = pygit2.PackBuilder(repo)
    for oid in repo.odb:
        builder.add(oid)
    new = write_pack(repo, builder)
    for pack in old_packs:
        if pack == new or pack.with_suffix(".keep").exists():
            continue
        for suffix in _PACK_SUFFIXES:  # the index first: the pack vanishes for readers
            pack.with_suffix(suffix).unlink(missing_ok=True)
    for loose in old_loose:
        loose.unlink(missing_ok=True)
