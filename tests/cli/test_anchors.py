"""Git anchors (issue #3 part 3): the commit that accepted a patch.

Real Git repositories built with the ``git`` CLI at fixed dates, and the real
Claude Code session whose single Edit (2026-06-12T15:23:06Z) adds a
``farewell`` helper to ``src/app.py``. Proves: capture anchors its own
traces to the commit holding the edited file (exact blob), never to a decoy;
trace.json's patch anchor and outcome follow; ``trail anchor`` is
incremental (no new batch, zero commits walked when nothing changed; only the
new commits when some arrived); a commit made after the session is anchored
by a later ``trail anchor``; unknown-content patches fall back to the
overlapping-hunk tier.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson

from opentraces.bucket import Bucket
from opentraces.writer import writing
from opentraces.events import make_event
from opentraces.ids import trace_id_for
from opentraces.project import resolve_project

from bucketrig import REAL_CLAUDE, batch_files, capture, git, one_line_error, rewrite_session, verify_full

ORIGINAL = 'def greet(name: str) -> str:\n    return f"hello, {name}"\n'
EDITED = ORIGINAL + '\n\ndef farewell(name: str) -> str:\n    return f"goodbye, {name}"\n'
REAL_TRACE = trace_id_for("claude-code", "164b9ad1-4c1b-4602-9102-5276951a1594")


def commit(repo: Path, message: str, when: str, files: dict[str, str]) -> str:
    for rel, text in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        git("add", rel, cwd=repo)
    env = dict(os.environ, GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo, env=env, check=True, capture_output=True)
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def new_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "project"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    base = commit(repo, "greet", "2026-06-12T15:20:00Z", {"src/app.py": ORIGINAL})
    return repo, base


def anchors_of(bucket: Path, trace_id: str = REAL_TRACE) -> list[dict]:
    b = Bucket.open(bucket)
    row = b.find_trace(trace_id)
    return [e for e in b.trace_events(row["project"], row["trace_id"]) if e["kind"] == "trail.anchor"]


def patch_of(bucket: Path, trace_id: str = REAL_TRACE) -> dict:
    b = Bucket.open(bucket)
    row = b.find_trace(trace_id)
    [p] = [e for e in b.trace_events(row["project"], row["trace_id"]) if e["kind"] == "trail.patch"]
    return p


def trace_json(bucket: Path, trace_id: str = REAL_TRACE) -> dict:
    b = Bucket.open(bucket)
    row = b.find_trace(trace_id)
    return b.trace_record(row["project"], row["trace_id"])


def trail_anchor(cli, bucket: Path, *args) -> dict:
    res = cli("--bucket", bucket, "trail", "anchor", *args, "--json")
    assert res.exit_code == 0, (res.stdout, res.stderr)
    doc = res.json
    assert doc["status"] == "ok" and doc["schema_version"] == "opentraces.trail.anchor.v1"
    return doc


def test_capture_anchors_the_edit_commit_not_the_decoy(tmp_path, cli):
    repo, base = new_repo(tmp_path)
    decoy = commit(repo, "notes", "2026-06-12T15:23:10Z", {"NOTES.md": "unrelated\n"})
    edit = commit(repo, "add farewell", "2026-06-12T15:23:17Z", {"src/app.py": EDITED})
    bucket = tmp_path / "bucket"

    doc = capture(cli, bucket, REAL_CLAUDE, "--project", repo)["capture"]
    slug = resolve_project(repo).slug
    [rep] = doc["anchors"]
    assert rep["project"] == slug and rep["anchors_added"] == 1 and rep["patches_checked"] == 1
    assert len(doc["batches"]) == 1  # the capture's own batch; the anchor batch is reported in anchors
    assert len(batch_files(bucket)) == 2

    patch = patch_of(bucket)
    assert patch["time"].startswith("2026-06-12T15:23:06")
    [anchor] = anchors_of(bucket)
    ap = anchor["payload"]
    assert ap == {
        "patch_id": patch["payload"]["patch_id"], "commit": edit, "path": "src/app.py",
        "blob": git("rev-parse", f"{edit}:src/app.py", cwd=repo).stdout.strip(),
        "evidence": "exact_blob_hash", "firmness": "firm_observed", "rank": 1,
    }
    assert anchor["time"] == "2026-06-12T15:23:17Z" and anchor["step"] == patch["step"]
    assert anchor["project"] == slug
    assert decoy not in {a["payload"]["commit"] for a in anchors_of(bucket)}
    assert base not in {a["payload"]["commit"] for a in anchors_of(bucket)}

    rec = trace_json(bucket)
    p0 = rec["patches"][0]
    assert p0["anchor"]["found"] is True
    assert p0["anchor"]["commit_sha"] == edit
    assert p0["anchor"]["evidence_tier"] == "exact_blob_hash"
    assert rec["outcome"]["committed"] is True
    assert rec["outcome"]["commit_sha"] == edit
    assert [link["revision"] for link in rec["git_links"]] == [edit]
    row = Bucket.open(bucket).find_trace(REAL_TRACE)
    assert row["anchored"] == 1

    assert verify_full(cli, bucket)["exit"] == 0


def test_trail_anchor_again_is_a_no_op(tmp_path, cli):
    repo, _ = new_repo(tmp_path)
    commit(repo, "notes", "2026-06-12T15:23:10Z", {"NOTES.md": "unrelated\n"})
    commit(repo, "add farewell", "2026-06-12T15:23:17Z", {"src/app.py": EDITED})
    bucket = tmp_path / "bucket"
    capture(cli, bucket, REAL_CLAUDE, "--project", repo)
    before = [p.name for p in batch_files(bucket)]

    for args in ((), ("--project", repo)):
        doc = trail_anchor(cli, bucket, *args)
        assert doc["anchors_added"] == 0 and doc["commits_walked"] == 0 and doc["patches_checked"] == 0
        assert [p["project"] for p in doc["projects"]] == [resolve_project(repo).slug]
        assert [p.name for p in batch_files(bucket)] == before
    assert len(anchors_of(bucket)) == 1


def test_commit_after_the_session_is_anchored_later(tmp_path, cli):
    repo, base = new_repo(tmp_path)
    decoy = commit(repo, "notes", "2026-06-12T15:23:10Z", {"NOTES.md": "unrelated\n"})
    bucket = tmp_path / "bucket"
    doc = capture(cli, bucket, REAL_CLAUDE, "--project", repo)["capture"]
    [rep] = doc["anchors"]
    assert rep["anchors_added"] == 0 and rep["patches_pending"] == 1
    assert rep["commits_walked"] == 2  # the decoy, and the base commit (within the clock slack)
    assert anchors_of(bucket) == []
    rec = trace_json(bucket)
    assert rec["patches"][0]["anchor"] is None and rec["outcome"]["committed"] is False
    n_batches = len(batch_files(bucket))

    # nothing new in the repository: nothing walked, nothing written
    again = trail_anchor(cli, bucket, "--project", repo)
    assert again["commits_walked"] == 0 and again["anchors_added"] == 0
    assert len(batch_files(bucket)) == n_batches

    # the user commits after the session ended
    later = commit(repo, "unrelated", "2026-06-12T15:40:00Z", {"NOTES.md": "still unrelated\n"})
    edit = commit(repo, "add farewell", "2026-06-12T15:41:00Z", {"src/app.py": EDITED})
    doc = trail_anchor(cli, bucket, "--project", repo)
    assert doc["anchors_added"] == 1
    assert doc["commits_walked"] == 2  # only the two new commits: the searched tip is hidden
    assert len(batch_files(bucket)) == n_batches + 1
    [anchor] = anchors_of(bucket)
    assert anchor["payload"]["commit"] == edit and anchor["payload"]["evidence"] == "exact_blob_hash"
    assert {decoy, base, later}.isdisjoint({anchor["payload"]["commit"]})
    rec = trace_json(bucket)
    assert rec["patches"][0]["anchor"]["commit_sha"] == edit
    assert rec["outcome"]["committed"] is True and rec["outcome"]["commit_sha"] == edit

    final = trail_anchor(cli, bucket)
    assert final["commits_walked"] == 0 and final["anchors_added"] == 0
    assert len(batch_files(bucket)) == n_batches + 1
    assert verify_full(cli, bucket)["exit"] == 0


def test_anchor_on_another_branch_and_only_the_first_commit(tmp_path, cli):
    repo, _ = new_repo(tmp_path)
    git("checkout", "-q", "-b", "feature", cwd=repo)
    first = commit(repo, "add farewell", "2026-06-12T15:24:00Z", {"src/app.py": EDITED})
    commit(repo, "docs", "2026-06-12T15:25:00Z", {"README.md": "hi\n"})  # keeps the blob, does not introduce it
    git("checkout", "-q", "main", cwd=repo)
    bucket = tmp_path / "bucket"
    doc = capture(cli, bucket, REAL_CLAUDE, "--project", repo)["capture"]
    assert doc["anchors"][0]["anchors_added"] == 1
    [anchor] = anchors_of(bucket)
    assert anchor["payload"]["commit"] == first


def test_commit_of_other_lines_in_the_same_file_is_not_an_anchor(tmp_path, cli):
    repo, _ = new_repo(tmp_path)
    decoy = commit(repo, "tweak greet", "2026-06-12T15:23:30Z",
                   {"src/app.py": ORIGINAL.replace("hello", "hi there")})
    bucket = tmp_path / "bucket"
    capture(cli, bucket, REAL_CLAUDE, "--project", repo)
    assert anchors_of(bucket) == []
    # the edit lands on top of the tweak: the file differs from the patch's
    # after content, but the commit adds exactly the patch's lines
    edit = commit(repo, "add farewell", "2026-06-12T15:30:00Z",
                  {"src/app.py": ORIGINAL.replace("hello", "hi there") + EDITED[len(ORIGINAL):]})
    doc = trail_anchor(cli, bucket)
    assert doc["anchors_added"] == 1 and doc["commits_walked"] == 1
    [anchor] = anchors_of(bucket)
    assert anchor["payload"]["commit"] == edit != decoy
    assert anchor["payload"]["evidence"] == "overlapping_hunk"
    assert anchor["payload"]["firmness"] == "statistically_inferred" and anchor["payload"]["rank"] == 5


def _unknown_content_trace(bucket_root: Path, repo: Path) -> tuple[str, str]:
    """A trace whose single patch has unknown before/after content (a hunk only)."""
    project = resolve_project(repo).slug
    trace_id = trace_id_for("claude-code", "unknown-content-session")
    diff = ("diff --git a/src/app.py b/src/app.py\n--- a/src/app.py\n+++ b/src/app.py\n"
            "@@ -1,2 +1,6 @@\n def greet(name: str) -> str:\n     return f\"hello, {name}\"\n"
            "+\n+\n+def farewell(name: str) -> str:\n+    return f\"goodbye, {name}\"\n")
    payload = {"patch_id": "sha256:" + "ab" * 32, "seq": 0, "path": "src/app.py", "tool": "Edit",
               "tool_call_id": "t1", "operation": "modify", "before": None, "after": None,
               "before_known": False, "after_known": False, "diff": diff}
    events = [
        make_event("trace.started", project, trace_id, None, "2026-06-12T15:22:55Z",
                   {"agent": "claude-code", "session_id": "unknown-content-session"}),
        make_event("trail.patch", project, trace_id, 1, "2026-06-12T15:23:06Z", payload),
        make_event("trace.finished", project, trace_id, None, "2026-06-12T15:23:30Z", {"rev": 1}),
    ]
    b = Bucket(bucket_root)
    with writing(b) as w:
        w.commit(events)
    return project, trace_id


def test_unknown_content_falls_back_to_overlapping_hunk(tmp_path, cli):
    repo, base = new_repo(tmp_path)
    decoy = commit(repo, "tweak", "2026-06-12T15:23:20Z", {"src/app.py": ORIGINAL + "# a comment\n"})
    edit = commit(repo, "add farewell", "2026-06-12T15:24:00Z",
                  {"src/app.py": ORIGINAL + "# a comment\n" + EDITED[len(ORIGINAL):]})
    commit(repo, "more", "2026-06-12T15:25:00Z",
           {"src/app.py": ORIGINAL + "# a comment\n" + EDITED[len(ORIGINAL):] + "\n# end\n"})
    bucket = tmp_path / "bucket"
    _project, trace_id = _unknown_content_trace(bucket, repo)
    doc = trail_anchor(cli, bucket, "--project", repo)
    assert doc["anchors_added"] == 1
    [anchor] = anchors_of(bucket, trace_id)
    assert anchor["payload"]["commit"] == edit
    assert anchor["payload"]["evidence"] == "overlapping_hunk"
    assert anchor["payload"]["blob"] == git("rev-parse", f"{edit}:src/app.py", cwd=repo).stdout.strip()
    assert {base, decoy}.isdisjoint({anchor["payload"]["commit"]})
    rec = trace_json(bucket, trace_id)
    assert rec["patches"][0]["anchor"]["evidence_tier"] == "overlapping_hunk"
    assert rec["git_links"][0]["tier"] == "overlapping"


def test_trail_anchor_without_known_projects_and_bad_project(tmp_path, cli):
    bucket = tmp_path / "bucket"
    doc = trail_anchor(cli, bucket)
    assert doc["projects"] == [] and doc["anchors_added"] == 0
    assert not bucket.exists()  # nothing to anchor: nothing written

    plain = tmp_path / "plain"
    plain.mkdir()
    res = cli("--bucket", bucket, "trail", "anchor", "--project", plain)
    assert res.exit_code == 2
    assert "not a Git repository" in one_line_error(res.stderr)
    res = cli("--bucket", bucket, "trail", "anchor", "--project", plain, "--json")
    assert res.exit_code == 2 and orjson.loads(res.stdout)["status"] == "error"


def test_moved_repository_folder_is_skipped(tmp_path, cli):
    repo, _ = new_repo(tmp_path)
    bucket = tmp_path / "bucket"
    capture(cli, bucket, REAL_CLAUDE, "--project", repo)
    # another repository now lives where the project was
    os.rename(repo, tmp_path / "moved")
    other = tmp_path / "project"
    other.mkdir()
    git("init", "-q", "-b", "main", cwd=other)
    commit(other, "other", "2026-06-12T16:00:00Z", {"x.txt": "x\n"})
    doc = trail_anchor(cli, bucket)
    [rep] = doc["projects"]
    assert rep["error"] and rep["anchors_added"] == 0


def test_session_run_inside_the_repository_is_anchored_without_project_flag(tmp_path, cli):
    """The usual case: the session's cwd is the repository on this machine,
    so patch paths are stored relative to it and capture finds the repo."""
    repo, _ = new_repo(tmp_path)
    edit = commit(repo, "add farewell", "2026-06-12T15:23:17Z", {"src/app.py": EDITED})
    text = REAL_CLAUDE.read_text().replace("/workspace/claude-real-edit-box/project", str(repo))
    session = tmp_path / "sessions" / REAL_CLAUDE.name
    session.parent.mkdir()
    session.write_text(text)
    bucket = tmp_path / "bucket"
    doc = capture(cli, bucket, session)["capture"]
    assert doc["anchors"][0]["anchors_added"] == 1
    assert patch_of(bucket)["payload"]["path"] == "src/app.py"
    [anchor] = anchors_of(bucket)
    assert anchor["payload"]["commit"] == edit and anchor["payload"]["evidence"] == "exact_blob_hash"
    assert trail_anchor(cli, bucket)["commits_walked"] == 0


def test_capture_anchors_only_its_traces_and_others_catch_up_later(tmp_path, cli):
    """Capture searches for its own traces; a trace searched earlier keeps
    its own searched tips, so a later ``trail anchor`` still gives it the
    commits that arrived in between."""
    repo, _ = new_repo(tmp_path)
    a = rewrite_session(REAL_CLAUDE, tmp_path / "s" / "a.jsonl", "aaaaaaaa-0000-4000-8000-000000000001")
    b = rewrite_session(REAL_CLAUDE, tmp_path / "s" / "b.jsonl", "bbbbbbbb-0000-4000-8000-000000000002")
    ta = trace_id_for("claude-code", "aaaaaaaa-0000-4000-8000-000000000001")
    tb = trace_id_for("claude-code", "bbbbbbbb-0000-4000-8000-000000000002")
    bucket = tmp_path / "bucket"
    capture(cli, bucket, a, "--project", repo)
    assert anchors_of(bucket, ta) == []
    edit = commit(repo, "add farewell", "2026-06-12T15:30:00Z", {"src/app.py": EDITED})
    doc = capture(cli, bucket, b, "--project", repo)["capture"]
    assert doc["anchors"][0]["traces"] == 1 and doc["anchors"][0]["anchors_added"] == 1
    assert [x["payload"]["commit"] for x in anchors_of(bucket, tb)] == [edit]
    assert anchors_of(bucket, ta) == []
    res = trail_anchor(cli, bucket)
    assert res["anchors_added"] == 1 and res["commits_walked"] == 1
    assert [x["payload"]["commit"] for x in anchors_of(bucket, ta)] == [edit]
    assert trail_anchor(cli, bucket)["commits_walked"] == 0
