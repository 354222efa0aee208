"""Fault injection at every write point (issue #11).

``OPENTRACES_FAULT=count:FILE`` logs every durable write point of a run
(file created, renamed or linked into place, pack written, ref moved);
``OPENTRACES_FAULT=N:enospc|eio|die`` makes the N-th one fail like a full or
failing disk, or kills the process there (``os._exit``, like kill -9). For
each command the walk runs it once per write point and action, on a fresh
copy of the same bucket, then checks: a one-line error with exit 6 (or the
death), a rerun completes, ``verify --full`` is clean, every trace is there,
no temp file is left after the next write.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bucketrig import REAL_CLAUDE, capture, claude_sessions, git, rewrite_session

WALKED: dict[str, int] = {}


def _run(bucket: Path, *args, fault: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if fault:
        env["OPENTRACES_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "opentraces.cli", "--bucket", str(bucket), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=120, cwd=cwd)


def _points(bucket: Path, args, tmp: Path) -> list[str]:
    log = tmp / "points.log"
    log.unlink(missing_ok=True)
    done = _run(bucket, *args, fault=f"count:{log}")
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines() if log.exists() else []


def _temps(bucket: Path) -> list[str]:
    return sorted(str(p.relative_to(bucket)) for p in bucket.rglob("*")
                  if p.is_file() and ((p.name.startswith(".") and p.name.endswith(".tmp"))
                                      or p.name.startswith((".tmp-pack-", "tmp_")) or p.name.endswith(".lock")))


def _traces(bucket: Path) -> set[str]:
    return {p.name for p in bucket.glob("traces/v1/*/*") if (p / "trace.json").exists()}


def _walk(tmp_path: Path, name: str, base: Path, args, *, after=None, actions=("enospc", "die")) -> int:
    """Run ``args`` against a copy of ``base`` failing at each write point; returns how many points."""
    probe = tmp_path / f"{name}-probe"
    shutil.copytree(base, probe, symlinks=True)
    points = _points(probe, args, tmp_path)
    want = _traces(probe)
    assert points, f"{name}: no write point seen"
    for action in actions:
        for n in range(1, len(points) + 1):
            b = tmp_path / f"{name}-{action}-{n}"
            shutil.copytree(base, b, symlinks=True)
            done = _run(b, *args, fault=f"{n}:{action}")
            where = f"{name}: {action} at write {n} ({points[n - 1]})"
            if action == "die":
                assert done.returncode == 137, (where, done.returncode, done.stderr[-500:])
            else:
                assert done.returncode in (0, 6), (where, done.returncode, done.stderr[-500:])
                if done.returncode == 6:
                    lines = done.stderr.strip().splitlines()
                    assert len(lines) == 1 and "disk is full or failing" in lines[0], (where, done.stderr)
            again = _run(b, *(after or args))
            assert again.returncode == 0, (where, again.stderr[-800:])
            v = _run(b, "bucket", "verify", "--full", "--json")
            assert v.returncode == 0, (where, [p for p in orjson.loads(v.stdout)["verify"]["problems"]][:4])
            assert _traces(b) >= want, where
            assert _temps(b) == [], (where, _temps(b))
            shutil.rmtree(b)
    WALKED[name] = len(points)
    return len(points)


@pytest.fixture(scope="module")
def base_bucket(tmp_path_factory):
    root = tmp_path_factory.mktemp("walk")
    bucket = root / "base"
    for p in claude_sessions()[:2]:
        done = _run(bucket, "capture", "claude-code", p, "--json")
        assert done.returncode == 0, done.stderr
    return bucket


def test_capture_survives_a_fault_at_every_write(tmp_path, base_bucket):
    new = rewrite_session(REAL_CLAUDE, tmp_path / "s" / "new.jsonl", "walk-new-session")
    n = _walk(tmp_path, "capture", base_bucket, ["capture", "claude-code", new, "--json"])
    assert n >= 10  # blobs, batch, projections, shards, index, manifest, pack, refs


def test_repair_survives_a_fault_at_every_write(tmp_path, base_bucket):
    damaged = tmp_path / "damaged"
    shutil.copytree(base_bucket, damaged, symlinks=True)
    shutil.rmtree(damaged / "traces")
    (damaged / "manifest.json").unlink()
    n = _walk(tmp_path, "repair", damaged, ["bucket", "repair", "--json"])
    assert n >= 5


def test_prune_survives_a_fault_at_every_write(tmp_path, base_bucket):
    n = _walk(tmp_path, "prune", base_bucket, ["bucket", "prune", "--json"], actions=("die",))
    assert n >= 0


def test_replay_survives_a_fault_at_every_write(tmp_path, base_bucket):
    repo = tmp_path / "project"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "a.txt").write_text("x\n")
    git("add", "a.txt", cwd=repo)
    subprocess.run(["git", "commit", "-qm", "x"], cwd=repo, check=True, capture_output=True)
    bucket = tmp_path / "replay-base"
    done = _run(bucket, "capture", "claude-code", REAL_CLAUDE, "--project", repo, "--json")
    assert done.returncode == 0
    clone = tmp_path / "clone"
    git("clone", "-q", str(repo), str(clone))
    points = []
    log = tmp_path / "replay.log"
    done = _run(bucket, "bucket", "replay", "--repo", clone, "--json", fault=f"count:{log}")
    assert done.returncode == 0
    points = log.read_text().splitlines()
    tip = orjson.loads(done.stdout)["replay"]["head"]
    for action in ("die", "enospc"):
        for n in range(1, len(points) + 1):
            c = tmp_path / f"clone-{action}-{n}"
            git("clone", "-q", str(repo), str(c))
            hit = _run(bucket, "bucket", "replay", "--repo", c, "--json", fault=f"{n}:{action}")
            if hit.returncode == 7:  # killed holding a ref lock in the clone: the message names the file
                line = hit.stderr.strip().splitlines()
                assert len(line) == 1 and "delete" in line[0], hit.stderr
                stale = line[0].split("delete ", 1)[1].split(" and run", 1)[0]
                os.unlink(stale)  # what the message tells the user to do
            again = _run(bucket, "bucket", "replay", "--repo", c, "--json")
            if again.returncode == 7:
                line = again.stderr.strip().splitlines()
                assert len(line) == 1 and "delete" in line[0], again.stderr
                os.unlink(line[0].split("delete ", 1)[1].split(" and run", 1)[0])
                again = _run(bucket, "bucket", "replay", "--repo", c, "--json")
            assert again.returncode == 0, again.stderr
            assert orjson.loads(again.stdout)["replay"]["head"] == tip
            fsck = subprocess.run(["git", "fsck", "--full", "--strict"], cwd=c, capture_output=True, text=True)
            assert fsck.returncode == 0, fsck.stderr
    WALKED["replay"] = len(points)
    assert points


def test_pull_survives_a_fault_at_every_write(tmp_path, base_bucket, bare_remote):
    """A pull killed or starved at each write: the rerun completes, nothing the remote held is missing."""
    a = tmp_path / "a"
    shutil.copytree(base_bucket, a, symlinks=True)
    for args in (("auth", "login", "--token", "t"), ("setup", "bucket", "--remote", bare_remote.url, "--policy", "off")):
        assert _run(a, *args, "--json").returncode == 0
    assert _run(a, "bucket", "remote", "push", "--json").returncode == 0
    empty = tmp_path / "b-empty"  # a new machine: the walk copies an empty bucket folder
    empty.mkdir()
    n = _walk(tmp_path, "pull", empty, ["bucket", "remote", "pull", "--json"])
    assert n >= 5
    b = tmp_path / "pull-check"
    shutil.copytree(empty, b)
    assert _run(b, "bucket", "remote", "pull", "--json").returncode == 0
    assert _traces(b) == _traces(a)


def test_push_survives_a_fault_at_every_write(tmp_path, base_bucket):
    """A push killed or starved at each local write (its ref moves, packs, state): with a fresh empty
    remote each time, the rerun completes and the remote holds exactly the bucket's refs."""
    from serverrig import init_bare

    a = tmp_path / "push-base"
    shutil.copytree(base_bucket, a, symlinks=True)
    assert _run(a, "auth", "login", "--token", "t", "--json").returncode == 0

    def fresh_remote(tag: str) -> Path:
        repo = init_bare(tmp_path / "srv" / f"{tag}.git")
        assert _run(a, "config", "set", "bucket.remote", str(repo), "--json").returncode == 0
        return repo

    def refs(gitdir: Path, *patterns: str) -> dict[str, str]:
        out = subprocess.run(["git", f"--git-dir={gitdir}", "for-each-ref", "--format=%(refname) %(objectname)",
                              *patterns], capture_output=True, text=True, check=True).stdout
        return dict(line.split(" ", 1) for line in out.splitlines())

    fresh_remote("probe")
    probe = tmp_path / "push-probe"
    shutil.copytree(a, probe, symlinks=True)
    points = _points(probe, ["bucket", "remote", "push", "--json"], tmp_path)
    assert points, "push: no write point seen"
    for action in ("enospc", "die"):
        for n in range(1, len(points) + 1):
            b = tmp_path / f"push-{action}-{n}"
            shutil.copytree(a, b, symlinks=True)
            remote = fresh_remote(f"{action}-{n}")
            done = _run(b, "bucket", "remote", "push", "--json", fault=f"{n}:{action}")
            where = f"push: {action} at write {n} ({points[n - 1]})"
            assert done.returncode in ((137,) if action == "die" else (0, 6)), (where, done.stderr[-500:])
            again = _run(b, "bucket", "remote", "push", "--json")
            assert again.returncode == 0, (where, again.stderr[-800:])
            assert refs(remote) == refs(b / ".git", "refs/opentraces/v1", "refs/heads/main"), where
            fsck = subprocess.run(["git", f"--git-dir={remote}", "fsck", "--strict"], capture_output=True, text=True)
            assert fsck.returncode == 0, (where, fsck.stderr)
            v = _run(b, "bucket", "verify", "--full", "--json")
            assert v.returncode == 0, (where, orjson.loads(v.stdout)["verify"]["problems"][:4])
            assert _temps(b) == [], (where, _temps(b))
            shutil.rmtree(b)
    WALKED["push"] = len(points)


def test_zz_report_walked_points():
    """The count of write points each walk covered (printed for docs/RELIABILITY.md); runs last."""
    print(f"\n[fault walk] write points per command: {WALKED}")
