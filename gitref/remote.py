"""Talking to a remote with the ``git`` CLI: list, fetch, push with per-ref results and leases.

libgit2's push has no compare-and-swap and its local transport skips
receive-pack (hooks, atomic checks), so remotes are driven with ``git``:

* ``ls_remote``: the remote's refs, one round trip;
* ``fetch``: explicit refspecs (never a glob into a live name), progress
  reported through a callback;
* ``push``: several refs at once, each a plain update (no ``+``: the server
  refuses a non-fast-forward) or a rewrite with ``--force-with-lease=<ref>:<old>``
  (the server swaps only if the ref still holds ``old``); ``--porcelain``
  output is parsed into one result per ref, a rejection never passes silently;
* ``push_ref``: one ref under a superset rule (``guard.Lost``): growth is a
  plain push, a rewrite is checked against the remote's value first.

The caller supplies the environment (credentials go there, never into URLs
or arguments): this module reads nothing from the process environment.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from typing import Callable

import pygit2

from .errors import GitrefError
from .guard import Lost, plan_update
from .refs import check_ref_name, delete_ref, get_ref
from .repo import objects_dir

STAGING_PREFIX = "refs/gitref-staging/"
PUSH_CHUNK = 2000  # refs per git push
Progress = Callable[[str, int, int, int], None]  # (phase, done, total, bytes)
_PROGRESS = re.compile(r"^(?P<phase>[A-Za-z ]+):\s+(?:\d+%\s+)?\((?P<done>\d+)/(?P<total>\d+)\)(?:,\s+(?P<size>[\d.]+)\s+(?P<unit>[KMG]i?B|bytes))?")
_UNITS = {"bytes": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


class RemoteError(GitrefError):
    """The remote could not be reached or read; ``detail`` is git's own last words."""

    def __init__(self, message: str, detail: str = ""):
        self.detail = detail
        super().__init__(message)


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


@dataclass(frozen=True)
class RefStatus:
    name: str
    ok: bool
    summary: str  # git's summary: "[new reference]", "abc..def", "[rejected]", "[up to date]"
    reason: str  # the server's or git's reason when rejected


@dataclass
class Transfer:
    """What git reported moving: objects and bytes (from its progress lines)."""

    objects: int = 0
    bytes: int = 0


def _exe(git: str = "git") -> str:
    exe = shutil.which(git)
    if not exe:
        raise RemoteError("git is not installed")
    return exe


def run_git(repo: pygit2.Repository | None, args: list[str], env: dict[str, str], *,
            progress: Progress | None = None, transfer: Transfer | None = None,
            input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run ``git [--git-dir=repo] args`` with exactly ``env`` (plus fixed safety settings).

    stderr is read as it comes when ``progress`` or ``transfer`` is given:
    git's progress lines ("Receiving objects:  40% (4/10), 1.2 MiB") are
    parsed and passed on.
    """
    exe = _exe()
    full_env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C",
                "GIT_TERMINAL_PROMPT": "0", "PATH": os.path.dirname(exe) + os.pathsep + os.defpath, **env}
    pre = [f"--git-dir={objects_dir(repo).parent}"] if repo is not None else []
    cmd = [exe, *pre, "-c", "gc.auto=0", *args]
    if progress is None and transfer is None:
        return subprocess.run(cmd, env=full_env, capture_output=True, check=False, input=input)
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL)
    out_chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True)
    reader.start()  # stdout drains on its own: a full pipe must never block git while we read stderr
    if input is not None:
        proc.stdin.write(input)
        proc.stdin.close()
    err = bytearray()
    buf = b""
    while True:
        chunk = proc.stderr.read1(4096) if hasattr(proc.stderr, "read1") else proc.stderr.read(4096)
        if not chunk:
            break
        err += chunk
        buf += chunk
        *lines, buf = re.split(rb"[\r\n]", buf)
        for line in lines:
            _progress_line(line.decode("utf-8", "replace"), progress, transfer)
    reader.join()
    proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, b"".join(out_chunks), bytes(err))


def _progress_line(line: str, progress: Progress | None, transfer: Transfer | None) -> None:
    line = line.removeprefix("remote: ").strip()
    m = _PROGRESS.match(line)
    if not m:
        return
    phase, done, total = m["phase"].strip(), int(m["done"]), int(m["total"])
    size = int(float(m["size"]) * _UNITS.get(m["unit"], 1)) if m["size"] else 0
    if transfer is not None and phase in ("Writing objects", "Receiving objects"):
        transfer.objects = max(transfer.objects, done)
        transfer.bytes = max(transfer.bytes, size)
    if progress is not None:
        progress(phase, done, total, size)


def _last_words(done: subprocess.CompletedProcess) -> str:
    text = done.stderr.decode("utf-8", "replace") if isinstance(done.stderr, bytes) else (done.stderr or "")
    lines = [ln.strip() for ln in re.split(r"[\r\n]", text) if ln.strip() and not _PROGRESS.match(ln.removeprefix("remote: ").strip())]
    return " | ".join(lines[-3:])


def ls_remote(url: str, env: dict[str, str], patterns: list[str] | None = None) -> dict[str, pygit2.Oid]:
    """The remote's refs as ``{name: oid}`` (peeled tags and HEAD left out)."""
    done = run_git(None, ["ls-remote", url, *(patterns or [])], env)
    if done.returncode != 0:
        raise RemoteError(f"cannot list the refs of the remote ({_last_words(done) or 'git ls-remote failed'})",
                          _last_words(done))
    out = {}
    for line in done.stdout.decode().splitlines():
        oid, _, name = line.partition("\t")
        if name.startswith("refs/") and not name.endswith("^{}"):
            out[name] = pygit2.Oid(hex=oid)
    return out


def fetch(repo: pygit2.Repository, url: str, refspecs: list[str], env: dict[str, str], *,
          progress: Progress | None = None) -> Transfer:
    """``git fetch url refspecs`` (no tags, no FETCH_HEAD); returns what was received."""
    if not refspecs:
        return Transfer()
    transfer = Transfer()
    args = ["fetch", "--no-tags", "--no-write-fetch-head", "--progress", "--no-auto-gc", url, "--stdin"]
    done = run_git(repo, args, env, progress=progress, transfer=transfer, input=("\n".join(refspecs) + "\n").encode())
    if done.returncode != 0:
        raise RemoteError(f"fetching from the remote failed ({_last_words(done)})", _last_words(done))
    return transfer


def push(repo: pygit2.Repository, url: str, updates: list[tuple[str, pygit2.Oid, pygit2.Oid | None]],
         env: dict[str, str], *, progress: Progress | None = None,
         transfer: Transfer | None = None) -> dict[str, RefStatus]:
    """Push ``(name, new, lease)`` updates in one connection; one RefStatus per ref.

    ``lease`` None: a plain update (creation or fast-forward only). Otherwise
    the ref is rewritten only if it still holds ``lease`` on the server.
    """
    if not updates:
        return {}
    if len(updates) > PUSH_CHUNK:  # keep each command line well under ARG_MAX
        out: dict[str, RefStatus] = {}
        for i in range(0, len(updates), PUSH_CHUNK):
            part = Transfer()
            out.update(push(repo, url, updates[i:i + PUSH_CHUNK], env, progress=progress, transfer=part))
            if transfer is not None:
                transfer.objects += part.objects
                transfer.bytes += part.bytes
        return out
    args = ["push", "--porcelain", "--progress", "--no-verify"]
    for name, _new, lease in updates:
        if lease is not None:
            args.append(f"--force-with-lease={name}:{lease}")
    args.append(url)
    args += [f"{new}:{name}" for name, new, _lease in updates]
    done = run_git(repo, args, env, progress=progress, transfer=transfer if transfer is not None else Transfer())
    statuses: dict[str, RefStatus] = {}
    text = done.stdout.decode("utf-8", "replace")
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and ":" in parts[1]:
            name = parts[1].rsplit(":", 1)[1]
            flag, summary = parts[0], parts[2]
            reason = ""
            if flag == "!":
                m = re.search(r"\((.*)\)\s*$", summary)
                reason = m.group(1) if m else summary
            statuses[name] = RefStatus(name, flag != "!", summary, reason)
    missing = [n for n, _o, _l in updates if n not in statuses]
    if missing:  # no per-ref line: the connection or the server failed before the refs
        raise RemoteError(f"pushing to the remote failed ({_last_words(done) or 'git push failed'})", _last_words(done))
    hook = [ln[7:].strip() for ln in done.stderr.decode("utf-8", "replace").splitlines()
            if ln.startswith("remote:") and ln[7:].strip() and not _PROGRESS.match(ln[7:].strip())]
    if hook:  # a hook's own words say more than "pre-receive hook declined"
        for name, st in list(statuses.items()):
            if not st.ok:
                statuses[name] = RefStatus(name, False, st.summary, f"{st.reason}: {' | '.join(hook[-3:])}")
    return statuses


def _fetch_to_staging(repo: pygit2.Repository, url: str, name: str, env) -> str:
    staging = STAGING_PREFIX + name[len("refs/"):]
    current = get_ref(repo, staging)
    if current is not None:
        delete_ref(repo, staging, current)
    fetch(repo, url, [f"{name}:{staging}"], env)
    return staging


def push_ref(repo: pygit2.Repository, url: str, name: str, *, lost: Lost,
             env: dict[str, str] | None = None) -> PushResult:
    """Make ``name`` on the remote equal the local ``name``, never losing what the remote held.

    A creation or fast-forward is a plain push. A rewrite is pushed only when
    ``lost`` names nothing in the remote's value, and with a lease on that
    value (compare-and-swap on the server); otherwise WouldLoseError.
    """
    env = env or {}
    check_ref_name(name)
    new = get_ref(repo, name)
    if new is None:
        raise GitrefError(f"{name} does not exist locally")
    old = ls_remote(url, env, [name]).get(name)
    if old == new:
        return PushResult(name, old, new, "unchanged")
    staging = None
    if old is not None and old not in repo:
        staging = _fetch_to_staging(repo, url, name, env)
    try:
        state, lease = plan_update(repo, name, new, old, lost=lost)
        if state == "behind":
            return PushResult(name, old, new, state)
        st = push(repo, url, [(name, new, lease)], env)[name]
        if not st.ok:
            raise RemoteRefRejected(name, st.reason)
        return PushResult(name, old, new, state)
    finally:
        if staging is not None:
            current = get_ref(repo, staging)
            if current is not None:
                delete_ref(repo, staging, current)

