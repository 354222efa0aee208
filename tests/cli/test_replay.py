"""``bucket replay --repo CLONE`` (issue #4), judged by the real ``git`` CLI.

A project repository is built with ``git`` at fixed dates (``src/app.py``
with ``greet`` at 2026-06-12T15:20:00Z, the real Claude Code session's edit
adding ``farewell`` committed at 15:23:17Z), captured from the real session
into buckets in different homes, and replayed into clones made with
``git clone``. Proves:

- two buckets (different HOME/OPENTRACES_HOME, different project folders, the
  second copied without its ``.git``) replay into two clones with
  byte-identical commit ids, equal to bucket A's
  ``refs/opentraces/v1/trails/<project>``; the notes commits agree too;
- in a replayed clone ``git log``/``git show``/``git diff`` read the trail as a
  person would, and ``git log --notes=opentraces`` names the trace on the
  commit that accepted the patch;
- every replayed clone passes ``git fsck --full --strict``;
- a clone of another project is refused (exit 2) with nothing written; a
  second replay writes no pack and moves no ref; a different existing ref is
  refused without ``--force`` and backed up with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from opentraces.ids import trace_id_for
from opentraces.project import resolve_project

from bucketrig import REAL_CLAUDE, commit, git, one_line_error, run_cli_process

ORIGINAL = 'def greet(name: str) -> str:\n    return f"hello, {name}"\n'
EDITED = ORIGINAL + '\n\ndef farewell(name: str) -> str:\n    return f"goodbye, {name}"\n'
REAL_TRACE = trace_id_for("claude-code", "164b9ad1-4c1b-4602-9102-5276951a1594")
LOCAL_REF = "refs/opentraces/local/events/v1"
NOTES_REF = "refs/notes/opentraces"


# ------------------------------------------------------------------ helpers


def make_origin(folder: Path) -> tuple[Path, str, str]:
    """The project: greet at 15:20:00Z, then the session's edit committed at 15:23:17Z."""
    repo = folder / "project"
    repo.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=repo)
    base = commit(repo, "greet", "2026-06-12T15:20:00Z", {"src/app.py": ORIGINAL})
    edit = commit(repo, "add farewell", "2026-06-12T15:23:17Z", {"src/app.py": EDITED})
    return repo, base, edit


def clone(origin: Path, dest: Path) -> Path:
    git("clone", "-q", str(origin), str(dest))
    return dest


def gitdir(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return git(*args, cwd=repo, check=check)


def refs_of(repo: Path) -> str:
    return gitdir(repo, "for-each-ref", "--format=%(objectname) %(objecttype) %(refname)").stdout


def count_objects(repo: Path) -> dict[str, int]:
    out = gitdir(repo, "count-objects", "-v").stdout
    return {k: int(v) for k, v in (line.split(": ", 1) for line in out.splitlines())}


def pack_files(repo: Path) -> list[str]:
    d = Path(gitdir(repo, "rev-parse", "--git-common-dir").stdout.strip())
    d = d if d.is_absolute() else repo / d
    return sorted(p.name for p in (d / "objects" / "pack").iterdir())


def fsck_ok(git_dir_or_repo: Path, *, bare: bool = False) -> None:
    args = [f"--git-dir={git_dir_or_repo}"] if bare else []
    done = subprocess.run(["git", *args, "fsck", "--full", "--strict"], cwd=None if bare else git_dir_or_repo,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in done.stderr.lower() and "warning" not in done.stderr.lower(), done.stderr


def replay(cli, bucket: Path | None, repo: Path, *args: str, expect: int = 0):
    pre = ("--bucket", bucket) if bucket is not None else ()
    res = cli(*pre, "bucket", "replay", "--repo", repo, *args, "--json")
    assert res.exit_code == expect, (res.exit_code, res.stdout, res.stderr)
    return res


def trail_commits(repo: Path) -> list[str]:
    """The replayed trail, oldest first."""
    return gitdir(repo, "rev-list", "--reverse", LOCAL_REF).stdout.split()


@pytest.fixture
def project(tmp_path):
    return make_origin(tmp_path / "a")


@pytest.fixture
def captured(tmp_path, cli, project):
    """Bucket A (the default bucket of this test's HOME) holding the real session, anchored."""
    repo, base, edit = project
    doc = _capture_default(cli, repo)
    bucket = Path(os.environ["OPENTRACES_HOME"]) / "bucket"
    assert (bucket / ".git").is_dir()
    slug = resolve_project(repo).slug
    assert [a["anchors_added"] for a in doc["capture"]["anchors"]] == [1]
    return bucket, slug


def _capture_default(cli, repo: Path) -> dict:
    res = cli("capture", "claude-code", REAL_CLAUDE, "--project", repo, "--json")
    assert res.exit_code == 0, (res.stdout, res.stderr)
    return res.json


# ------------------------------------------------------------ proof 2, 1
def test_two_buckets_two_clones_give_identical_commit_ids(tmp_path, cli, project, captured):
    repo_a, _base, edit = project
    bucket_a, slug = captured
    trail_tip = gitdir(bucket_a, "--git-dir=.git", "rev-parse", f"refs/opentraces/v1/trails/{slug}").stdout.strip()

    # bucket B: another HOME and OPENTRACES_HOME, another project folder (same
    # history, same folder name so the same project slug), a real process
    home_b = tmp_path / "home-b"
    env_b = dict(os.environ, HOME=str(home_b), OPENTRACES_HOME=str(home_b / ".opentraces"))
    repo_b = clone(repo_a, tmp_path / "elsewhere" / "project")
    done = run_cli_process("capture", "claude-code", REAL_CLAUDE, "--project", repo_b, "--json", env=env_b)
    assert done.returncode == 0, done.stderr
    bucket_b = home_b / ".opentraces" / "bucket"
    assert gitdir(bucket_b, "--git-dir=.git", "rev-parse", f"refs/opentraces/v1/trails/{slug}").stdout.strip() == trail_tip
    # ... copied with cp -r minus .git: replay must work from the files alone
    copy_b = tmp_path / "copy-of-b"
    shutil.copytree(bucket_b, copy_b, ignore=shutil.ignore_patterns(".git"))
    assert not (copy_b / ".git").exists()

    clone1 = clone(repo_a, tmp_path / "clone1")
    clone2 = clone(repo_a, tmp_path / "clone2")
    r1 = replay(cli, None, clone1).json["replay"]
    done = run_cli_process("--bucket", copy_b, "bucket", "replay", "--repo", clone2, "--json", env=env_b)
    assert done.returncode == 0, done.stderr
    r2 = orjson.loads(done.stdout)["replay"]
    assert r1["state"] == r2["state"] == "created" and r1["project"] == r2["project"] == slug
    assert not (copy_b / ".git").exists()  # replay never writes into the bucket

    tips = [gitdir(c, "for-each-ref", "--format=%(objectname)", LOCAL_REF).stdout.strip() for c in (clone1, clone2)]
    assert tips[0] == tips[1] == trail_tip == r1["head"] == r2["head"]
    assert trail_commits(clone1) == trail_commits(clone2)
    assert trail_commits(clone1) == gitdir(bucket_a, "--git-dir=.git", "rev-list", "--reverse",
                                           f"refs/opentraces/v1/trails/{slug}").stdout.split()
    # the notes are deterministic too
    notes = [gitdir(c, "rev-parse", NOTES_REF).stdout.strip() for c in (clone1, clone2)]
    assert notes[0] == notes[1]
    assert gitdir(clone1, "notes", "--ref=opentraces", "list").stdout.split() == \
        gitdir(clone2, "notes", "--ref=opentraces", "list").stdout.split()
    # proof 1: Git's strictest check on the bucket and on both replayed clones
    fsck_ok(bucket_a / ".git", bare=True)
    fsck_ok(bucket_b / ".git", bare=True)
    fsck_ok(clone1)
    fsck_ok(clone2)
    # clones' own history untouched
    assert gitdir(clone1, "rev-parse", "main").stdout.strip() == edit


# ------------------------------------------------------------------ proof 3
def test_replayed_trail_reads_with_plain_git(tmp_path, cli, project, captured):
    repo, base, edit = project
    bucket, slug = captured
    c = clone(repo, tmp_path / "clone")
    res = replay(cli, None, c).json["replay"]
    assert res["notes_written"] == 1 and res["events"] == 2

    log = gitdir(c, "log", "--format=%H%x1f%s%x1f%b%x1e", LOCAL_REF).stdout
    rows = [r.strip("\n").split("\x1f") for r in log.split("\x1e") if r.strip()]
    assert len(rows) == 3  # the project commit for the trace, then the anchor, then the patch
    (proj_c, proj_subj, proj_body), (anchor_c, anchor_subj, anchor_body), (patch_c, patch_subj, patch_body) = rows
    assert proj_subj == f"trail of trace {REAL_TRACE[:8]} (2 events)"
    assert f"Trace: {REAL_TRACE}" in proj_body and f"Project: {slug}" in proj_body
    assert gitdir(c, "rev-list", "--parents", "-1", proj_c).stdout.split() == [proj_c, anchor_c]
    assert patch_subj == f"patch src/app.py (trace {REAL_TRACE[:8]} step 2)"
    assert f"Trace: {REAL_TRACE}" in patch_body and "Step: 2" in patch_body and "Kind: trail.patch" in patch_body
    assert "Seq:" not in patch_body  # no position in messages or paths: a late event moves nothing else
    assert anchor_subj.startswith(f"anchor src/app.py -> {edit[:12]} (exact_blob_hash, trace {REAL_TRACE[:8]} step 2")
    assert "Kind: trail.anchor" in anchor_body
    # fixed identity, event time as commit time
    assert gitdir(c, "log", "-1", "--format=%an <%ae> %cI", patch_c).stdout.strip() == \
        "opentraces <opentraces@localhost> 2026-06-12T15:23:06+00:00"
    assert gitdir(c, "rev-list", "--parents", "-1", anchor_c).stdout.split() == [anchor_c, patch_c]

    ev = orjson.loads(gitdir(c, "show", f"{patch_c}:event.json").stdout)
    assert ev["kind"] == "trail.patch" and ev["payload"]["path"] == "src/app.py"
    assert ev["trace_id"] == REAL_TRACE and ev["project"] == slug
    ev2 = orjson.loads(gitdir(c, "show", f"{anchor_c}:event.json").stdout)
    assert ev2["kind"] == "trail.anchor" and ev2["payload"]["commit"] == edit

    diff = gitdir(c, "diff", f"{patch_c}:before", f"{patch_c}:after").stdout
    added = [ln[1:] for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    removed = [ln[1:] for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    assert added == ["", "", "def farewell(name: str) -> str:", '    return f"goodbye, {name}"']
    assert removed == []
    # the snapshots are the project's own blobs: 'after' is what the edit commit holds
    assert gitdir(c, "rev-parse", f"{patch_c}:after/src/app.py").stdout == \
        gitdir(c, "rev-parse", f"{edit}:src/app.py").stdout
    assert gitdir(c, "rev-parse", f"{patch_c}:before/src/app.py").stdout == \
        gitdir(c, "rev-parse", f"{base}:src/app.py").stdout
    diff_file = gitdir(c, "show", f"{patch_c}:patch.diff").stdout
    assert diff_file == ev["payload"]["diff"]

    # git log --notes=opentraces names the trace on the commit that accepted the patch, and only there
    notes_log = gitdir(c, "log", "--notes=opentraces", "--format=%H%x1f%N%x1e", "main").stdout
    notes = {h: n for h, n in (r.strip("\n").split("\x1f") for r in notes_log.split("\x1e") if r.strip())}
    assert set(notes) == {edit, base}
    assert f"trace {REAL_TRACE} step 2" in notes[edit] and "exact_blob_hash" in notes[edit]
    assert notes[base].strip() == ""
    assert REAL_TRACE in gitdir(c, "log", "-1", "--notes=opentraces", edit).stdout
    fsck_ok(c)


# ------------------------------------------------------------------ proof 6
def test_replay_refuses_another_project_and_writes_nothing(tmp_path, cli, captured):
    bucket, slug = captured
    other = tmp_path / "other"
    other.mkdir()
    git("init", "-q", "-b", "main", cwd=other)
    commit(other, "unrelated root", "2026-06-12T15:20:00Z", {"src/app.py": ORIGINAL})  # same file, other root
    before = (refs_of(other), count_objects(other), pack_files(other))
    for extra in ((), ("--project", slug), ("--project", slug, "--force")):
        res = replay(cli, None, other, *extra, expect=2)
        doc = res.json
        assert doc["status"] == "error" and doc["exit_code"] == 2
        assert (refs_of(other), count_objects(other), pack_files(other)) == before
    res = cli("bucket", "replay", "--repo", other)  # the human form: one line on stderr
    assert res.exit_code == 2
    one_line_error(res.stderr)
    assert (refs_of(other), count_objects(other), pack_files(other)) == before
    assert gitdir(other, "show-ref", "--verify", "--quiet", LOCAL_REF, check=False).returncode != 0
    fsck_ok(other)


def test_second_replay_writes_nothing(tmp_path, cli, project, captured):
    repo, _base, _edit = project
    c = clone(repo, tmp_path / "clone")
    loose, packs = count_objects(c)["count"], pack_files(c)
    first = replay(cli, None, c).json["replay"]
    assert first["state"] == "created" and first["pack"] is not None
    # the replay's objects arrive as exactly one pack, none loose
    assert count_objects(c)["count"] == loose
    assert sorted(set(pack_files(c)) - set(packs)) == sorted(
        first["pack"].replace(".pack", ext) for ext in (".idx", ".pack"))
    before = (refs_of(c), pack_files(c), count_objects(c))
    second = replay(cli, None, c).json["replay"]
    assert second["state"] == "current" and second["pack"] is None and second["notes_written"] == 0
    assert second["head"] == first["head"]
    assert (refs_of(c), pack_files(c), count_objects(c)) == before
    fsck_ok(c)


def test_replay_over_a_different_ref_needs_force_and_backs_it_up(tmp_path, cli, project, captured):
    repo, _base, edit = project
    bucket, slug = captured
    c = clone(repo, tmp_path / "clone")
    gitdir(c, "update-ref", LOCAL_REF, edit)  # someone else's value
    before = (refs_of(c), pack_files(c))
    res = replay(cli, None, c, expect=2)
    assert "--force" in res.json["error"]
    assert (refs_of(c), pack_files(c)) == before

    forced = replay(cli, None, c, "--force").json["replay"]
    tip = gitdir(bucket, "--git-dir=.git", "rev-parse", f"refs/opentraces/v1/trails/{slug}").stdout.strip()
    assert forced["state"] == "replaced" and forced["head"] == tip
    backup = forced["backup_ref"]
    assert backup.startswith("refs/opentraces/local/backup/")
    assert gitdir(c, "rev-parse", backup).stdout.strip() == edit
    assert gitdir(c, "rev-parse", LOCAL_REF).stdout.strip() == tip
    backups = gitdir(c, "for-each-ref", "--format=%(refname) %(objectname)", "refs/opentraces/local/backup/").stdout
    assert backups.splitlines() == [f"{backup} {edit}"]
    # and now it is current: a third run changes nothing
    again = replay(cli, None, c).json["replay"]
    assert again["state"] == "current"
    fsck_ok(c)


def test_replay_fast_forwards_a_prefix_of_the_trail(tmp_path, cli, project, captured):
    """A clone holding an older replay (a prefix of the trail) moves forward without --force."""
    repo, _base, _edit = project
    c = clone(repo, tmp_path / "clone")
    replay(cli, None, c)
    commits = trail_commits(c)
    first, last = commits[0], commits[-1]
    gitdir(c, "update-ref", LOCAL_REF, first)
    res = replay(cli, None, c).json["replay"]
    assert res["state"] == "fast-forward" and res["head"] == last and res["backup_ref"] is None
    assert gitdir(c, "rev-parse", LOCAL_REF).stdout.strip() == last
    fsck_ok(c)
