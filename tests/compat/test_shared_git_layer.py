"""A Git layer that many machines can share (issue #7), judged by the real ``git`` CLI.

Proves, on real repositories and a real bare remote:

- one project per repository: two buckets capturing disjoint sessions of one
  repository checked out under different folder names and paths converge,
  after exchanging events and blobs and ``bucket repair``, on the project
  names, trail ids and manifest digest of a bucket that captured everything;
- refs that grow: a plain ``git push`` (no ``+``) of every ref after each of
  10 captures is accepted, except the trail after a session older than all
  others, which goes through ``mirror.push_ref`` (superset check + lease);
  the remote equals the bucket and passes ``git fsck --full --strict``;
- a clone that replayed a trail before a late session is moved without
  ``--force`` and without a backup; a replay that would drop events is refused;
- capturing one more session writes about that session's objects, the same
  number into a bucket of 20 traces and of 120;
- ``git clone`` of a pushed bucket checks out a README and ``git log`` works.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))

from bucketrig import REAL_CLAUDE, capture, commit, git, rewrite_session, verify_full  # noqa: E402
from opentraces.bucket import Bucket  # noqa: E402
from opentraces.gitmirror.mirror import push_ref  # noqa: E402
from opentraces.ids import trace_id_for  # noqa: E402

import gitref  # noqa: E402

ORIGINAL = 'def greet(name: str) -> str:\n    return f"hello, {name}"\n'
EDITED = ORIGINAL + '\n\ndef farewell(name: str) -> str:\n    return f"goodbye, {name}"\n'
PREFIX = "refs/opentraces/v1/"


def g(gitdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", f"--git-dir={gitdir}", *args], capture_output=True, text=True, check=check)


def fsck_ok(gitdir: Path) -> None:
    done = g(gitdir, "fsck", "--full", "--strict", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in done.stderr.lower() and "warning" not in done.stderr.lower(), done.stderr


def session(dst: Path, n: int, hour: int) -> Path:
    """The real session as session ``n`` (its own id), every timestamp moved to ``hour``."""
    sid = str(uuid.UUID(int=0xAB0000 + n))
    rewrite_session(REAL_CLAUDE, dst, sid)
    dst.write_bytes(dst.read_bytes().replace(b"2026-06-12T15:", b"2026-06-12T%02d:" % hour))
    return dst


def origin_repo(folder: Path) -> Path:
    repo = folder / "origin"
    repo.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=repo)
    commit(repo, "greet", "2026-06-12T05:00:00Z", {"src/app.py": ORIGINAL})
    return repo


def checkout(origin: Path, dest: Path, *, keep_origin: bool = False) -> Path:
    git("clone", "-q", str(origin), str(dest))
    if not keep_origin:  # the folder's name is then the only name a capture can claim
        git("remote", "remove", "origin", cwd=dest)
    return dest


def mirror_refs(bucket: Path) -> dict[str, str]:
    out = g(bucket / ".git", "for-each-ref", "--format=%(refname) %(objectname)").stdout
    return dict(line.split(" ", 1)[::1] for line in out.splitlines())


def trails(bucket: Path) -> dict[str, str]:
    return {k: v for k, v in mirror_refs(bucket).items() if k.startswith(PREFIX + "trails/")}


def exchange(src: Path, dst: Path) -> None:
    """Copy src's batches and blobs into dst (what a pull brings, without sync)."""
    for top in ("events/v1/batches", "blobs/v1"):
        for path in sorted((src / top).rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                target = dst / path.relative_to(src)
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)


def repair(cli, bucket: Path) -> dict:
    res = cli("--bucket", bucket, "bucket", "repair", "--json")
    assert res.exit_code == 0, (res.stdout, res.stderr)
    return res.json["repair"]


# ------------------------------------------------------------ one project per repository
def test_two_checkouts_of_one_repository_are_one_project(tmp_path, cli):
    origin = origin_repo(tmp_path)
    proj1 = checkout(origin, tmp_path / "machine-a" / "work" / "proj1")
    alice = checkout(origin, tmp_path / "machine-b" / "home" / "alice" / "proj1-alice")
    s = tmp_path / "s"
    a_sessions = [session(s / "a1.jsonl", 1, 10), session(s / "a2.jsonl", 2, 11)]
    b_sessions = [session(s / "b1.jsonl", 3, 8), session(s / "b2.jsonl", 4, 12)]  # b1 is the earliest
    bucket_a, bucket_b, bucket_c = tmp_path / "A", tmp_path / "B", tmp_path / "C"
    capture(cli, bucket_a, *a_sessions, "--project", proj1)
    capture(cli, bucket_b, *b_sessions, "--project", alice)
    names_a = {r["project"] for r in Bucket(bucket_a).rows()}
    names_b = {r["project"] for r in Bucket(bucket_b).rows()}
    assert len(names_a) == len(names_b) == 1 and names_a != names_b  # each machine's own claim so far
    assert next(iter(names_a)).startswith("proj1-") and next(iter(names_b)).startswith("proj1-alice-")
    tag = next(iter(names_a)).rsplit("-", 1)[1]
    assert next(iter(names_b)).endswith("-" + tag)  # same repository (root commit), same tag

    capture(cli, bucket_c, *a_sessions, "--project", proj1)  # everything, in one bucket
    capture(cli, bucket_c, *b_sessions, "--project", alice)

    exchange(bucket_a, bucket_b)
    exchange(bucket_b, bucket_a)
    rep_a = repair(cli, bucket_a)
    repair(cli, bucket_b)
    assert rep_a["folders_moved"]  # A's traces moved under the name the rule chose

    heads = [Bucket(b).manifest_head() for b in (bucket_a, bucket_b, bucket_c)]
    rows = [Bucket(b).rows() for b in (bucket_a, bucket_b, bucket_c)]
    # the rule: the claim of the earliest trace.started (b1, captured from proj1-alice)
    assert {r["project"] for r in rows[2]} == {f"proj1-alice-{tag}"}
    assert rows[0] == rows[1] == rows[2] and len(rows[0]) == 4
    assert heads[0]["digest"] == heads[1]["digest"] == heads[2]["digest"]
    assert heads[0]["names"] == heads[2]["names"]
    t = [trails(b) for b in (bucket_a, bucket_b, bucket_c)]
    assert t[0] == t[1] == t[2] and list(t[0]) == [f"{PREFIX}trails/proj1-alice-{tag}"]
    # no folder or ref is left under the old name
    for b in (bucket_a, bucket_b):
        assert sorted(p.name for p in (b / "traces/v1").iterdir()) == [f"proj1-alice-{tag}"]
        assert not [n for n in mirror_refs(b) if f"/proj1-{tag}" in n]
        assert verify_full(cli, b)["exit"] == 0
        fsck_ok(b / ".git")
    # replay finds exactly one project for a clone under yet another folder name
    clone = checkout(origin, tmp_path / "third" / "whatever")
    res = cli("--bucket", bucket_a, "bucket", "replay", "--repo", clone, "--json")
    assert res.exit_code == 0, res.stdout
    assert res.json["replay"]["head"] == t[0][f"{PREFIX}trails/proj1-alice-{tag}"]


def test_the_same_session_from_two_checkouts_is_one_trace(tmp_path, cli):
    origin = origin_repo(tmp_path)
    proj1 = checkout(origin, tmp_path / "a" / "proj1")
    alice = checkout(origin, tmp_path / "b" / "proj1-alice")
    one = session(tmp_path / "s" / "one.jsonl", 9, 10)
    bucket_a, bucket_b = tmp_path / "A", tmp_path / "B"
    capture(cli, bucket_a, one, "--project", proj1)
    capture(cli, bucket_b, one, "--project", alice)
    exchange(bucket_b, bucket_a)
    repair(cli, bucket_a)
    [row] = Bucket(bucket_a).rows()
    rec = Bucket(bucket_a).trace_record(row["project"], row["trace_id"])
    assert len(rec["patches"]) == 1  # the two captures' events are one fact each
    assert verify_full(cli, bucket_a)["exit"] == 0


def test_origin_name_is_claimed_by_every_clone(tmp_path, cli):
    """Clones that keep their ``origin`` claim its repository name, whatever the folder."""
    origin = origin_repo(tmp_path)
    a = checkout(origin, tmp_path / "a" / "proj1", keep_origin=True)
    b = checkout(origin, tmp_path / "b" / "proj1-alice", keep_origin=True)
    one = session(tmp_path / "s" / "one.jsonl", 5, 10)
    bucket_a, bucket_b = tmp_path / "A", tmp_path / "B"
    capture(cli, bucket_a, one, "--project", a)
    capture(cli, bucket_b, one, "--project", b)
    assert [r["project"] for r in Bucket(bucket_a).rows()] == [r["project"] for r in Bucket(bucket_b).rows()]
    assert Bucket(bucket_a).rows()[0]["project"].startswith("origin-")
    assert trails(bucket_a) == trails(bucket_b)


# ------------------------------------------------------------ refs that grow, on a real remote
def test_plain_git_push_after_every_capture(tmp_path, cli):
    origin = origin_repo(tmp_path)
    proj = checkout(origin, tmp_path / "proj")
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    bucket = tmp_path / "bucket"
    hours = [10, 11, 12, 13, 14, 6, 15, 16, 17, 18]  # the sixth session is older than all before it
    rewritten = []
    for i, hour in enumerate(hours):
        capture(cli, bucket, session(tmp_path / "s" / f"{i}.jsonl", 100 + i, hour), "--project", proj)
        local = mirror_refs(bucket)
        assert local["refs/heads/main"] == local[PREFIX + "bucket"]
        for name in sorted(local):
            done = g(bucket / ".git", "push", "--porcelain", str(remote), f"{name}:{name}", check=False)
            if done.returncode == 0:
                continue
            # only a derived ref may be rejected as a non-fast-forward, and only a trail here
            assert name.startswith(PREFIX + "trails/"), (name, done.stdout, done.stderr)
            assert "non-fast-forward" in done.stdout + done.stderr or "rejected" in done.stdout
            res = push_ref(gitref.open_repo(bucket / ".git"), str(remote), name)
            assert res.state == "replaced"
            rewritten.append((i, name))
        remote_refs = dict(line.split("\t")[::-1] for line in
                           git("ls-remote", str(remote), cwd=tmp_path).stdout.splitlines() if "\t" in line)
        remote_refs.pop("HEAD", None)
        assert remote_refs == local
        fsck_ok(remote)
    assert [i for i, _ in rewritten] == [5]  # the older session, nothing else
    assert verify_full(cli, bucket)["exit"] == 0


def test_push_ref_refuses_a_rewrite_that_drops_events(tmp_path, cli):
    origin = origin_repo(tmp_path)
    proj = checkout(origin, tmp_path / "proj")
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    full, partial = tmp_path / "full", tmp_path / "partial"
    s1, s2 = session(tmp_path / "s" / "1.jsonl", 201, 10), session(tmp_path / "s" / "2.jsonl", 202, 11)
    capture(cli, full, s1, s2, "--project", proj)
    capture(cli, partial, s2, "--project", proj)
    [name] = trails(full)
    assert push_ref(gitref.open_repo(full / ".git"), str(remote), name).state == "created"
    before = git("ls-remote", str(remote), cwd=tmp_path).stdout
    with pytest.raises(gitref.WouldLoseError) as err:
        push_ref(gitref.open_repo(partial / ".git"), str(remote), name)
    assert len(err.value.lost) == 1 and err.value.lost[0].startswith("sha256:")  # s1's patch event, named
    assert git("ls-remote", str(remote), cwd=tmp_path).stdout == before


# ------------------------------------------------------------ replay after a late event
def test_replay_moves_a_clone_past_a_late_session_without_force(tmp_path, cli):
    origin = origin_repo(tmp_path)
    proj = checkout(origin, tmp_path / "proj")
    bucket = tmp_path / "bucket"
    later, earlier = session(tmp_path / "s" / "later.jsonl", 301, 12), session(tmp_path / "s" / "early.jsonl", 302, 9)
    capture(cli, bucket, later, "--project", proj)
    clone = checkout(origin, tmp_path / "clone")
    first = cli("--bucket", bucket, "bucket", "replay", "--repo", clone, "--json").json["replay"]
    assert first["state"] == "created"
    old_events = set(git("log", "--format=%(trailers:key=Event,valueonly)", first["head"], cwd=clone).stdout.split())
    capture(cli, bucket, earlier, "--project", proj)  # an older session arrives: the trail is rewritten
    res = cli("--bucket", bucket, "bucket", "replay", "--repo", clone, "--json")
    assert res.exit_code == 0, res.stdout
    second = res.json["replay"]
    assert second["state"] == "replaced" and second["backup_ref"] is None
    assert git("for-each-ref", "refs/opentraces/local/backup", cwd=clone).stdout == ""
    new_events = set(git("log", "--format=%(trailers:key=Event,valueonly)", second["head"], cwd=clone).stdout.split())
    assert old_events < new_events
    # the later trace's own chain is untouched by the insertion before it
    later_tip = git("log", "--format=%H", "--grep=^Trace: " + trace_id_for("claude-code", str(uuid.UUID(int=0xAB0000 + 301))),
                    "--grep=^Kind: trail.patch", "--all-match", first["head"], cwd=clone).stdout.split()
    assert later_tip and git("merge-base", "--is-ancestor", later_tip[0], second["head"], cwd=clone, check=False).returncode == 0
    # a bucket that lacks the earlier session would drop it: refused, clone unchanged
    partial = tmp_path / "partial"
    capture(cli, partial, later, "--project", proj)
    refs_before = git("for-each-ref", cwd=clone).stdout
    res = cli("--bucket", partial, "bucket", "replay", "--repo", clone, "--json")
    assert res.exit_code == 2 and "drop" in res.json["error"]
    assert git("for-each-ref", cwd=clone).stdout == refs_before
    fsck_ok(Path(clone) / ".git")


def test_notes_commit_is_the_same_in_every_clone(tmp_path, cli):
    origin = origin_repo(tmp_path)
    proj = checkout(origin, tmp_path / "proj")
    commit(proj, "add farewell", "2026-06-12T10:23:17Z", {"src/app.py": EDITED})
    bucket = tmp_path / "bucket"
    capture(cli, bucket, session(tmp_path / "s" / "1.jsonl", 401, 10), "--project", proj)
    c1, c2 = checkout(proj, tmp_path / "c1"), checkout(proj, tmp_path / "c2")
    for _ in range(3):  # replay three times into one clone, once into the other
        assert cli("--bucket", bucket, "bucket", "replay", "--repo", c1, "--json").exit_code == 0
    assert cli("--bucket", bucket, "bucket", "replay", "--repo", c2, "--json").exit_code == 0
    n1 = git("rev-parse", "refs/notes/opentraces", cwd=c1).stdout
    assert n1 == git("rev-parse", "refs/notes/opentraces", cwd=c2).stdout
    assert "opentraces: trace" in git("log", "-1", "--notes=opentraces", "main", cwd=c1).stdout


# ------------------------------------------------------------ cost follows the change
def _new_objects(bucket: Path, before: dict[str, str]) -> int:
    after = mirror_refs(bucket)
    new = [v for k, v in after.items() if before.get(k) != v]
    old = sorted(set(before.values()))
    out = g(bucket / ".git", "rev-list", "--objects", *new, "--not", *old).stdout
    return len(out.splitlines())


@pytest.mark.parametrize("n", [20])
def test_one_more_session_costs_the_same_in_a_bigger_bucket(tmp_path, cli, n):
    origin = origin_repo(tmp_path)
    proj = checkout(origin, tmp_path / "proj")
    counts = []
    for size, bucket in ((n, tmp_path / "small"), (6 * n, tmp_path / "big")):
        folder = tmp_path / f"s{size}"
        for i in range(size):
            session(folder / f"{i}.jsonl", 1000 + i, 1 + i % 9)
        capture(cli, bucket, folder, "--project", proj)
        before = mirror_refs(bucket)
        capture(cli, bucket, session(tmp_path / "extra.jsonl", 99999, 23), "--project", proj)
        counts.append(_new_objects(bucket, before))
    # the session's own objects: its blob-ref tree and blobs, its batch, its trail commits and
    # trees, the bucket commit and the trees on the paths it changed; none of the other traces
    assert counts[0] == counts[1], counts
    assert counts[0] < 80, counts


# ------------------------------------------------------------ a pushed bucket reads without opentraces
def test_clone_of_a_pushed_bucket_shows_the_bucket(tmp_path, cli):
    origin = origin_repo(tmp_path)
    proj = checkout(origin, tmp_path / "proj")
    bucket = tmp_path / "bucket"
    capture(cli, bucket, session(tmp_path / "s" / "1.jsonl", 501, 10), "--project", proj)
    capture(cli, bucket, session(tmp_path / "s" / "2.jsonl", 502, 11), "--project", proj)
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", "--initial-branch=main", str(remote), cwd=tmp_path)
    g(bucket / ".git", "push", "-q", str(remote), "refs/opentraces/*:refs/opentraces/*", "refs/heads/main:refs/heads/main")
    fsck_ok(remote)
    # a clone of the pushed remote, and a clone of the mirror itself
    for src, dest in ((remote, tmp_path / "seen"), (bucket / ".git", tmp_path / "seen-mirror")):
        done = subprocess.run(["git", "clone", str(src), str(dest)], capture_output=True, text=True)
        assert done.returncode == 0 and "empty repository" not in done.stderr, done.stderr
        assert (dest / "README.md").read_text().startswith("# opentraces bucket")
        manifest = orjson.loads((dest / "manifest.json").read_bytes())
        assert manifest["summary"]["trace_count"] == 2
        log = git("log", "--format=%s", cwd=dest).stdout.splitlines()
        assert log == ["opentraces bucket (2 traces)", "opentraces bucket (1 traces)"]
        assert len(list((dest / "traces/v1").glob("*/*/trace.json"))) == 2
        fsck_ok(dest / ".git")


# ------------------------------------------------------------ buckets written before this layout
OLD_BUCKET = Path(__file__).resolve().parents[2] / "fixtures" / "buckets" / "v0.1-two-traces.tar.gz"


def test_a_bucket_written_by_v0_1_keeps_working_and_migrates(tmp_path, cli):
    """fixtures/buckets/v0.1-two-traces.tar.gz: written by the previous layout (inline manifest rows,
    per-batch index, trail v1 with sequence numbers, parentless bucket and blob commits)."""
    import tarfile

    with tarfile.open(OLD_BUCKET) as tar:
        tar.extractall(tmp_path, filter="data")
    bucket = tmp_path / "small"
    old_refs = mirror_refs(bucket)
    [old_trail] = [v for k, v in old_refs.items() if "/trails/" in k]
    old_events = set(g(bucket / ".git", "log", "--format=%(trailers:key=Event,valueonly)", old_trail).stdout.split())
    assert len(old_events) == 4 and "Seq: 1" in g(bucket / ".git", "log", "--format=%B", old_trail).stdout
    # reads work on the old layout and write nothing
    snapshot = sorted((p.relative_to(bucket), p.stat().st_mtime_ns) for p in bucket.rglob("*"))
    st = cli("--bucket", bucket, "bucket", "status", "--json")
    assert st.exit_code == 0 and st.json["bucket"]["traces"] == 2
    assert cli("--bucket", bucket, "trace", "list").exit_code == 0
    assert sorted((p.relative_to(bucket), p.stat().st_mtime_ns) for p in bucket.rglob("*")) == snapshot
    # the first write migrates (catch-up repairs what it cannot extend)
    origin = origin_repo(tmp_path)
    proj = checkout(origin, tmp_path / "proj")
    capture(cli, bucket, session(tmp_path / "s" / "new.jsonl", 601, 20), "--project", proj)
    assert verify_full(cli, bucket)["exit"] == 0
    fsck_ok(bucket / ".git")
    new = mirror_refs(bucket)
    assert new["refs/heads/main"] == new[PREFIX + "bucket"]
    # the bucket ref grew from the old parentless commit; the old trail's events are all kept
    assert g(bucket / ".git", "merge-base", "--is-ancestor", old_refs[PREFIX + "bucket"], new[PREFIX + "bucket"],
             check=False).returncode == 0
    [new_trail] = [v for k, v in new.items() if k in old_refs and "/trails/" in k]
    kept = set(g(bucket / ".git", "log", "--format=%(trailers:key=Event,valueonly)", new_trail).stdout.split())
    assert old_events <= kept
    assert "Seq:" not in g(bucket / ".git", "log", "--format=%B", new_trail).stdout
    for name, oid in old_refs.items():  # blob refs: unchanged or grown from the old commit
        if "/blobs/" in name:
            assert g(bucket / ".git", "merge-base", "--is-ancestor", oid, new[name], check=False).returncode == 0
    assert len(Bucket(bucket).rows()) == 3
