"""The bucket's Git mirror (``<bucket>/.git``, issue #4) judged by the real ``git`` CLI.

Real captures of the real Claude Code session and the authored fixtures,
no mocks. Proves:

- ``git fsck --full --strict`` passes on the mirror after captures, and the
  mirror holds no loose objects;
- ``git archive refs/opentraces/v1/bucket`` plus ``git archive`` of every
  ``refs/opentraces/v1/blobs/*`` ref rebuilds the bucket byte for byte
  (minus ``.git`` and ``.state``), also for a bucket copied without its
  ``.git`` and captured into afterwards (the mirror notices it missed
  batches and rebuilds every ref);
- 1,000 sessions captured in CLI runs of ~100 and one by one leave at most
  50 loose objects and at most ``MAX_PACKS + 1`` packs at every step;
- ``bucket status --json`` reports the mirror ``current``;
- ``bucket verify --full`` recomputes every mirror ref without writing
  anything and names a moved ref (``mirror_mismatch``) or a deleted one
  (``mirror_missing``); ``bucket rebuild --substrate trail`` restores the
  same ids; a patch anchored after the session leaves verify clean.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))

from bucketrig import (  # noqa: E402
    REAL_CLAUDE,
    capture,
    claude_sessions,
    commit,
    git,
    rewrite_session,
    tree_digest,
    verify_full,
)
from opentraces.gitmirror.mirror import MAX_PACKS  # noqa: E402
from opentraces.ids import trace_id_for  # noqa: E402
from opentraces.project import resolve_project  # noqa: E402

ORIGINAL = 'def greet(name: str) -> str:\n    return f"hello, {name}"\n'
EDITED = ORIGINAL + '\n\ndef farewell(name: str) -> str:\n    return f"goodbye, {name}"\n'
REAL_TRACE = trace_id_for("claude-code", "164b9ad1-4c1b-4602-9102-5276951a1594")
PREFIX = "refs/opentraces/v1/"


# ------------------------------------------------------------------ helpers
def g(bucket: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``git --git-dir=<bucket>/.git ...`` (text)."""
    done = subprocess.run(["git", f"--git-dir={bucket / '.git'}", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


def g_bytes(bucket: Path, *args: str) -> bytes:
    done = subprocess.run(["git", f"--git-dir={bucket / '.git'}", *args], capture_output=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def fsck_ok(bucket: Path) -> None:
    done = g(bucket, "fsck", "--full", "--strict", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in done.stderr.lower() and "warning" not in done.stderr.lower(), done.stderr


def count_objects(bucket: Path) -> dict[str, int]:
    return {k: int(v) for k, v in (ln.split(": ", 1) for ln in g(bucket, "count-objects", "-v").stdout.splitlines())}


def refs(bucket: Path, prefix: str = PREFIX) -> dict[str, str]:
    out = g(bucket, "for-each-ref", "--format=%(refname) %(objectname)", prefix).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())




def make_project(folder: Path, *, edit_at: str | None = "2026-06-12T15:23:17Z") -> tuple[Path, str | None]:
    repo = folder / "project"
    repo.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=repo)
    commit(repo, "greet", "2026-06-12T15:20:00Z", {"src/app.py": ORIGINAL})
    edit = commit(repo, "add farewell", edit_at, {"src/app.py": EDITED}) if edit_at else None
    return repo, edit


def capture_all(cli, bucket: Path, repo: Path) -> None:
    """The real session attributed to ``repo`` (anchored), then every authored fixture."""
    doc = capture(cli, bucket, REAL_CLAUDE, "--project", repo)["capture"]
    assert [a["anchors_added"] for a in doc["anchors"]] == [1]
    others = [p for p in claude_sessions() if p != REAL_CLAUDE]
    assert len(others) >= 4
    doc = capture(cli, bucket, *others)["capture"]
    assert doc["captured"]


def archive_into(bucket: Path, ref: str, dest: Path) -> int:
    """``git archive <ref>`` extracted into ``dest``; returns the number of files."""
    data = g_bytes(bucket, "archive", "--format=tar", ref)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        tar.extractall(dest, filter="data")
    return len(members)


def rebuild_from_git(bucket: Path, dest: Path) -> dict[str, str]:
    dest.mkdir()
    assert archive_into(bucket, PREFIX + "bucket", dest) > 0
    blob_refs = [r for r in refs(bucket) if r.startswith(PREFIX + "blobs/")]
    assert blob_refs
    for ref in blob_refs:
        archive_into(bucket, ref, dest)
    (dest / "README.md").unlink()  # the mirror's README exists only in Git
    return tree_digest(dest)


def bucket_files(bucket: Path) -> dict[str, str]:
    return tree_digest(bucket, exclude=(".git", ".state"))


# --------------------------------------------------------------- proof 1, 4
def test_fsck_strict_after_real_captures(tmp_path, cli):
    repo, _edit = make_project(tmp_path)
    bucket = tmp_path / "bucket"
    capture_all(cli, bucket, repo)
    fsck_ok(bucket)
    counts = count_objects(bucket)
    assert counts["count"] == 0 and counts["packs"] >= 1 and counts["in-pack"] > 0
    slug = resolve_project(repo).slug
    names = refs(bucket)
    assert PREFIX + "bucket" in names and f"{PREFIX}trails/{slug}" in names
    assert any(n.startswith(PREFIX + "events/") for n in names)
    assert f"{PREFIX}blobs/{slug}/{REAL_TRACE}" in names
    # every ref a commit by the fixed identity, never the environment's
    idents = set(g(bucket, "log", "--format=%an <%ae>|%cn <%ce>", "--all").stdout.split("\n")) - {""}
    assert idents == {"opentraces <opentraces@localhost>|opentraces <opentraces@localhost>"}
    assert verify_full(cli, bucket)["exit"] == 0


def test_git_archive_of_the_refs_rebuilds_the_bucket(tmp_path, cli):
    repo, _edit = make_project(tmp_path)
    bucket = tmp_path / "bucket"
    capture_all(cli, bucket, repo)
    want = bucket_files(bucket)
    assert any(k.startswith("blobs/") for k in want) and "manifest.json" in want
    got = rebuild_from_git(bucket, tmp_path / "from-git")
    assert got == want
    # the bucket ref alone is the bucket without blobs; a blob ref holds that trace's blobs only
    only_bucket = tmp_path / "bucket-ref-only"
    only_bucket.mkdir()
    archive_into(bucket, PREFIX + "bucket", only_bucket)
    only = tree_digest(only_bucket)
    assert only.pop("README.md")  # the mirror's own README, for `git clone` readers
    assert only == {k: v for k, v in want.items() if not k.startswith("blobs/")}
    slug = resolve_project(repo).slug
    one = tmp_path / "one-trace"
    one.mkdir()
    archive_into(bucket, f"{PREFIX}blobs/{slug}/{REAL_TRACE}", one)
    assert set(tree_digest(one)) and all(k.startswith(f"blobs/v1/{slug}/") for k in tree_digest(one))


def test_copied_bucket_without_git_gets_a_complete_mirror(tmp_path, cli):
    """A bucket copied without ``.git`` and captured into: every ref is rebuilt, not only the new trace's."""
    repo, _edit = make_project(tmp_path)
    original = tmp_path / "bucket"
    capture_all(cli, original, repo)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, ignore=shutil.ignore_patterns(".git"))
    extra = rewrite_session(REAL_CLAUDE, tmp_path / "s" / "extra.jsonl", str(uuid.UUID(int=7)))
    capture(cli, copy, extra)
    fsck_ok(copy)
    have = refs(copy)
    # the traces captured before the copy have their blob refs, the old project its trail
    for name in refs(original):
        if name.startswith((PREFIX + "blobs/", PREFIX + "trails/")):
            assert name in have, name
    assert rebuild_from_git(copy, tmp_path / "from-git") == bucket_files(copy)
    assert verify_full(cli, copy)["exit"] == 0


# ------------------------------------------------------------------ proof 5
def _fast_folder(tmp_path: Path) -> Path:
    """A folder on tmpfs when there is one: fsync costs (bucket durability) are not what this measures."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="opentraces-mirror-", dir=shm))
    return tmp_path


def test_thousand_sessions_leave_few_loose_objects_and_bounded_packs(tmp_path, cli):
    work = _fast_folder(tmp_path)
    try:
        _thousand_sessions(tmp_path, work, cli)
    finally:
        if work != tmp_path:
            shutil.rmtree(work, ignore_errors=True)


def _thousand_sessions(tmp_path: Path, work: Path, cli) -> None:
    started = time.monotonic()
    sessions = tmp_path / "sessions"
    ids = [str(uuid.UUID(int=0x5E55_0000 + i)) for i in range(1000)]
    batched, single = ids[:970], ids[970:]
    for i, sid in enumerate(batched):
        rewrite_session(REAL_CLAUDE, sessions / f"run{i // 97:02d}" / f"{sid}.jsonl", sid)
    bucket = work / "bucket"
    packs_seen = []

    def check() -> None:
        c = count_objects(bucket)
        assert c["count"] <= 50, c
        assert c["packs"] <= MAX_PACKS + 1, c
        packs_seen.append(c["packs"])

    for run in sorted(sessions.iterdir()):  # 10 CLI runs of 97 sessions
        doc = capture(cli, bucket, run)["capture"]
        assert len(doc["captured"]) == 97
        check()
    for sid in single:  # then 30 runs of one session each
        path = rewrite_session(REAL_CLAUDE, sessions / "single" / f"{sid}.jsonl", sid)
        doc = capture(cli, bucket, path)["capture"]
        assert len(doc["captured"]) == 1
        check()
    assert any(b < a for a, b in zip(packs_seen, packs_seen[1:])), f"packs never consolidated: {packs_seen}"
    c = count_objects(bucket)
    assert c["count"] <= 50 and c["packs"] <= MAX_PACKS + 1
    names = refs(bucket)
    assert len([n for n in names if n.startswith(PREFIX + "blobs/")]) == 1000
    [trail] = [n for n in names if n.startswith(PREFIX + "trails/")]
    assert int(g(bucket, "rev-list", "--count", "--grep=^Kind: trail.patch$", trail).stdout) == 1000  # one patch per session
    assert int(g(bucket, "rev-list", "--count", "--grep=^First: ", trail).stdout) == 1000  # one project commit per trace
    fsck_ok(bucket)
    assert verify_full(cli, bucket)["exit"] == 0  # 1000 insertions at random places equal a rebuild
    elapsed = time.monotonic() - started
    print(f"1000 sessions: {elapsed:.1f}s, packs over time {packs_seen}")


# ------------------------------------------------------------------ proof 7
def test_status_reports_the_mirror(tmp_path, cli):
    repo, _edit = make_project(tmp_path)
    bucket = tmp_path / "bucket"
    res = cli("--bucket", bucket, "bucket", "status", "--json")
    assert res.exit_code == 0
    capture_all(cli, bucket, repo)
    st = cli("--bucket", bucket, "bucket", "status", "--json").json["bucket"]
    assert st["mirror"]["state"] == "current"
    assert st["mirror"]["commit"] == g(bucket, "rev-parse", PREFIX + "bucket").stdout.strip()
    human = cli("--bucket", bucket, "bucket", "status")
    assert "mirror   current" in human.stdout
    # a batch committed while the mirror was off (as after a failed mirror update): behind
    from opentraces.bucket import Bucket
    from opentraces.capture import agent_module, capture_paths

    missed = rewrite_session(REAL_CLAUDE, tmp_path / "s" / "missed.jsonl", str(uuid.UUID(int=11)))
    rep = capture_paths(Bucket(bucket, mirror=False), agent_module("claude-code"), [missed])
    assert len(rep.captured) == 1
    st = cli("--bucket", bucket, "bucket", "status", "--json").json["bucket"]
    assert st["mirror"]["state"] == "behind" and st["state"] == "ok"
    v = verify_full(cli, bucket)
    assert v["exit"] == 1 and {p["kind"] for p in v["problems"]} == {"mirror_mismatch", "mirror_missing"}
    assert PREFIX + "bucket" in {p["path"] for p in v["problems"]}
    # the next mirrored capture notices the missed batch and catches every ref up
    later = rewrite_session(REAL_CLAUDE, tmp_path / "s" / "later.jsonl", str(uuid.UUID(int=12)))
    capture(cli, bucket, later)
    assert cli("--bucket", bucket, "bucket", "status", "--json").json["bucket"]["mirror"]["state"] == "current"
    assert verify_full(cli, bucket)["exit"] == 0
    missed_trace = trace_id_for("claude-code", str(uuid.UUID(int=11)))
    assert any(n.endswith("/" + missed_trace) for n in refs(bucket, PREFIX + "blobs/"))
    assert rebuild_from_git(bucket, tmp_path / "from-git") == bucket_files(bucket)
    fsck_ok(bucket)


def test_verify_full_names_a_moved_or_missing_ref_and_rebuild_restores_it(tmp_path, cli):
    repo, _edit = make_project(tmp_path)
    bucket = tmp_path / "bucket"
    capture_all(cli, bucket, repo)
    slug = resolve_project(repo).slug
    trail = f"{PREFIX}trails/{slug}"
    blob = f"{PREFIX}blobs/{slug}/{REAL_TRACE}"
    good = refs(bucket)
    assert verify_full(cli, bucket)["exit"] == 0

    # rewind the trail ref by one commit (to the patch, before its anchor)
    parent = g(bucket, "rev-parse", f"{good[trail]}^").stdout.strip()
    g(bucket, "update-ref", trail, parent)
    g(bucket, "update-ref", "-d", blob)
    snapshot = tree_digest(bucket)  # verify must write nothing, .git included
    v = verify_full(cli, bucket)
    assert v["exit"] == 1 and not v["ok"]
    found = {(p["kind"], p["path"]) for p in v["problems"]}
    assert found == {("mirror_mismatch", trail), ("mirror_missing", blob)}, v["problems"]
    [mm] = [p for p in v["problems"] if p["kind"] == "mirror_mismatch"]
    assert parent in mm["detail"] and good[trail] in mm["detail"]
    assert tree_digest(bucket) == snapshot
    human = cli("--bucket", bucket, "bucket", "verify", "--full")
    assert human.exit_code == 1 and trail in human.stdout and blob in human.stdout

    res = cli("--bucket", bucket, "bucket", "rebuild", "--substrate", "trail", "--json")
    assert res.exit_code == 0, res.stderr
    assert refs(bucket) == good  # the same ids as before
    assert verify_full(cli, bucket)["exit"] == 0
    fsck_ok(bucket)


def test_verify_full_reports_a_ref_the_files_do_not_produce(tmp_path, cli):
    repo, _edit = make_project(tmp_path)
    bucket = tmp_path / "bucket"
    capture_all(cli, bucket, repo)
    stray = f"{PREFIX}trails/nobody-00000000"
    g(bucket, "update-ref", stray, g(bucket, "rev-parse", PREFIX + "bucket").stdout.strip())
    v = verify_full(cli, bucket)
    assert v["exit"] == 1 and [(p["kind"], p["path"]) for p in v["problems"]] == [("mirror_mismatch", stray)]
    # sampled verify does not look at the mirror (its cost stays bounded)
    res = cli("--bucket", bucket, "bucket", "verify", "--json")
    assert res.exit_code == 0


def test_incremental_mirror_equals_a_rebuild_after_a_late_anchor(tmp_path, cli):
    """The edit is committed an hour after the session; ``trail anchor`` adds the anchor later.

    The incremental updates (capture, then the anchor batch) must give the
    refs a rebuild from the files gives: verify --full clean, rebuild a no-op.
    """
    repo, _ = make_project(tmp_path, edit_at=None)
    bucket = tmp_path / "bucket"
    doc = capture(cli, bucket, REAL_CLAUDE, "--project", repo)["capture"]
    assert [a["anchors_added"] for a in doc["anchors"]] == [0]
    commit(repo, "add farewell", "2026-06-12T16:30:00Z", {"src/app.py": EDITED})
    res = cli("--bucket", bucket, "trail", "anchor", "--project", repo, "--json")
    assert res.exit_code == 0 and res.json["anchors_added"] == 1, res.stdout
    before = refs(bucket)
    assert verify_full(cli, bucket)["exit"] == 0
    res = cli("--bucket", bucket, "bucket", "rebuild", "--substrate", "trail", "--json")
    assert res.exit_code == 0 and res.json["rebuild"]["mirror"]["refs_updated"] == 0
    assert refs(bucket) == before
    slug = resolve_project(repo).slug
    # the anchor extends the trail; the blob ref keeps the time of the last blob-citing event
    assert g(bucket, "log", "-1", "--format=%cI", f"{PREFIX}trails/{slug}").stdout.strip() == "2026-06-12T16:30:00+00:00"
    blob_time = g(bucket, "log", "-1", "--format=%cI", f"{PREFIX}blobs/{slug}/{REAL_TRACE}").stdout.strip()
    assert blob_time < "2026-06-12T16"
    fsck_ok(bucket)


def test_verify_full_does_not_trust_a_refs_own_message(tmp_path, cli):
    """A trail ref moved to a commit that copies the tip's message (seq, event id) over another tree."""
    repo, _edit = make_project(tmp_path)
    bucket = tmp_path / "bucket"
    capture_all(cli, bucket, repo)
    trail = f"{PREFIX}trails/{resolve_project(repo).slug}"
    tip = refs(bucket)[trail]
    message = g(bucket, "log", "-1", "--format=%B", tip).stdout
    env = dict(os.environ, GIT_AUTHOR_NAME="opentraces", GIT_AUTHOR_EMAIL="opentraces@localhost",
               GIT_COMMITTER_NAME="opentraces", GIT_COMMITTER_EMAIL="opentraces@localhost",
               GIT_AUTHOR_DATE="2026-06-12T15:23:17Z", GIT_COMMITTER_DATE="2026-06-12T15:23:17Z")
    forged = subprocess.run(
        ["git", f"--git-dir={bucket / '.git'}", "commit-tree", f"{PREFIX}bucket^{{tree}}", "-p", f"{tip}^", "-m",
         message.rstrip("\n")], env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert forged != tip
    g(bucket, "update-ref", trail, forged)
    v = verify_full(cli, bucket)
    assert v["exit"] == 1 and [(p["kind"], p["path"]) for p in v["problems"]] == [("mirror_mismatch", trail)]
    assert cli("--bucket", bucket, "bucket", "rebuild", "--substrate", "trail", "--json").exit_code == 0
    assert refs(bucket)[trail] == tip
    assert verify_full(cli, bucket)["exit"] == 0


def _shifted_session(dst: Path, n: int) -> Path:
    """The real session as session ``n``: its own id, every timestamp moved to hour 10+n of the same day."""
    sid = str(uuid.UUID(int=0xC0FFEE00 + n))
    rewrite_session(REAL_CLAUDE, dst, sid)
    dst.write_bytes(dst.read_bytes().replace(b"2026-06-12T15:", b"2026-06-12T%02d:" % (10 + n)))
    return dst


def test_trail_ref_does_not_depend_on_capture_order(tmp_path, cli):
    """Sessions captured one by one out of time order (each lands inside the chain) and all at
    once in another bucket give the same trail commits; verify --full is clean on both."""
    sessions = [_shifted_session(tmp_path / "s" / f"{n}.jsonl", n) for n in range(6)]
    one_by_one, at_once = tmp_path / "one-by-one", tmp_path / "at-once"
    for n in (3, 1, 5, 0, 4, 2):
        capture(cli, one_by_one, sessions[n])
    capture(cli, at_once, *sessions)
    trails = [{k: v for k, v in refs(b).items() if "/trails/" in k} for b in (one_by_one, at_once)]
    assert trails[0] == trails[1] and len(trails[0]) == 1
    [trail] = trails[0]
    subjects = g(one_by_one, "log", "--reverse", "--format=%cI", "--grep=^Kind: trail.patch$", trail).stdout.split()
    assert subjects == sorted(subjects) and len(subjects) == 6
    for b in (one_by_one, at_once):
        assert verify_full(cli, b)["exit"] == 0
        fsck_ok(b)
