"""Durable file writes: temp file in the same folder, fsync, rename, fsync dir.

Canonical files (batches, blobs) are always fsynced. Projections are written
with ``sync=False``: still atomic against a process crash (the rename shows
the old or the new file), and after a power loss ``catch_up``/``repair``
regenerate them from canonical state, so paying an fsync each is not needed.

Temp files are named ``.<name>.<random>.tmp`` so ``bucket prune`` can find
the ones a crash left behind.
"""

from __future__ import annotations

import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gitref import faults

TMP_SUFFIX = ".tmp"


class OutsideError(OSError):
    """A path inside the bucket resolves outside it (a symlink): never written through or deleted."""


def check_inside(root: Path, path: Path) -> Path:
    """``path`` if its existing part resolves inside ``root``; OutsideError for a symlink that leads out."""
    real_root = os.path.realpath(root)
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        if probe.is_symlink():  # a dangling link: where it points is not ours either
            raise OutsideError(f"{path} is a symbolic link; the bucket never writes through one")
        probe = probe.parent
    real = os.path.realpath(probe)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise OutsideError(f"{path} leads outside the bucket ({real}); the bucket never writes through a symbolic link")
    return path


def tmp_path_for(path: Path, *, owned: bool = False) -> Path:
    """A fresh temp name next to ``path``; ``owned`` puts the writing process id in it, so
    ``sweep_dead_temps`` can tell a dead writer's leftover from a live writer's file."""
    tag = f"{os.getpid()}-{secrets.token_hex(4)}" if owned else secrets.token_hex(6)
    return path.with_name(f".{path.name}.{tag}{TMP_SUFFIX}")


def sweep_dead_temps(path: Path) -> int:
    """Remove temp files of ``path`` that a process no longer alive left (killed mid-write)."""
    n = 0
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return 0
    for name in names:
        if not (name.startswith(prefix) and name.endswith(TMP_SUFFIX)):
            continue
        pid, sep, _ = name[len(prefix):-len(TMP_SUFFIX)].partition("-")
        if not sep or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # alive: its write is in progress
        except ProcessLookupError:
            pass
        except OSError:
            continue
        _unlink_quiet(path.parent / name)
        n += 1
    return n


def is_tmp_name(name: str) -> bool:
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_tmp(path: Path, data: bytes, sync: bool, mode: int = 0o644, owned: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path, owned=owned)
    faults.point(f"create {path.name}")
    fd = None
    try:  # an alarm may land anywhere, even between open() and the assignment: unlink regardless
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        os.fchmod(fd, mode)  # the umask must not widen or narrow what was asked
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if sync:
            os.fsync(fd)
    except BaseException:
        if fd is not None:
            os.close(fd)
        _unlink_quiet(tmp)
        raise
    os.close(fd)
    return tmp


def _unlink_quiet(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_write(path: Path, data: bytes, *, sync: bool = True, mode: int = 0o644, owned: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically (readers see old or new).

    ``mode`` is the new file's permission bits, set before any byte is
    written (0o600 for credentials and config: never readable by others,
    not even for an instant)."""
    tmp = _write_tmp(path, data, sync, mode, owned)
    try:
        faults.point(f"rename {path.name}")
        os.replace(tmp, path)
    except BaseException:
        _unlink_quiet(tmp)
        raise
    if sync:
        fsync_dir(path.parent)


def write_if_changed(path: Path, data: bytes, *, sync: bool = True) -> bool:
    """Atomically write ``data`` unless the file already holds exactly it."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, data, sync=sync)
    return True


def write_many_new(items: list[tuple[Path, bytes]]) -> int:
    """Durably create content-addressed files that do not exist yet.

    Files are written to temp names, fsynced together (threads overlap the
    journal commits), renamed into place, then their folders fsynced once
    each. Returns how many files were created.
    """
    todo = [(p, d) for p, d in items if not p.exists()]
    if not todo:
        return 0
    tmps: list[tuple[Path, Path]] = []
    try:
        for p, d in todo:  # a full disk half-way must not leave the first temps behind
            tmps.append((_write_tmp(p, d, sync=False), p))
        _fsync_paths([t for t, _ in tmps])
        for tmp, path in tmps:
            faults.point(f"rename {path.name}")
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in tmps:
            _unlink_quiet(tmp)
        raise
    for folder in {p.parent for _, p in tmps}:
        fsync_dir(folder)
    return len(tmps)


def _fsync_one(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_paths(paths: list[Path]) -> None:
    if len(paths) <= 2:
        for p in paths:
            _fsync_one(p)
        return
    with ThreadPoolExecutor(max_workers=min(16, len(paths))) as pool:
        list(pool.map(_fsync_one, paths))
