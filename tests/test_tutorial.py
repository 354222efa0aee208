"""The tutorial, as a test: capture a real Claude Code session, inspect it,
verify the bucket, replay its trail into a clone, and read it all back with
plain git.

The session (shared fixture) asked Claude Code to add ``farewell`` to
``src/app.py`` and commit. We rebuild that repository: the file before the
edit, then the commit that accepted the edit.
"""

import json
import subprocess
from pathlib import Path

REAL_CLAUDE = Path(__file__).resolve().parents[2] / "shared/fixtures/real-sessions/claude/claude-linear-edit-real-session.jsonl"

BEFORE = 'def greet(name: str) -> str:\n    return f"hello, {name}"\n'
AFTER = BEFORE + '\n\ndef farewell(name: str) -> str:\n    return f"goodbye, {name}"\n'


def git(*args, cwd, env_date=None):
    env = None
    if env_date:
        import os

        env = dict(os.environ, GIT_AUTHOR_DATE=env_date, GIT_COMMITTER_DATE=env_date)
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, env=env).stdout


def test_capture_inspect_verify_replay(tmp_path: Path, cli):
    # 1. The project, as the agent found it and as it left it.
    origin = tmp_path / "project"
    (origin / "src").mkdir(parents=True)
    (origin / "src" / "app.py").write_text(BEFORE)
    git("init", "-q", "-b", "main", cwd=origin)
    git("add", ".", cwd=origin)
    git("commit", "-qm", "greet", cwd=origin, env_date="2026-06-12T15:20:00Z")
    (origin / "src" / "app.py").write_text(AFTER)
    git("commit", "-qam", "Add farewell helper to app", cwd=origin, env_date="2026-06-12T15:23:17Z")
    accepted = git("rev-parse", "HEAD", cwd=origin).strip()

    # 2. Capture the session into a bucket, attributed to that project.
    bucket = tmp_path / "bucket"
    res = cli("--bucket", bucket, "capture", "claude-code", REAL_CLAUDE, "--project", origin, "--json")
    assert res.exit_code == 0, res.stderr
    captured = res.json["capture"]["captured"]
    assert len(captured) == 1
    trace_id = captured[0]["trace_id"]

    # 3. Inspect: the trace, its patch, anchored to the commit that accepted it.
    rec = cli("--bucket", bucket, "trace", "get", trace_id[:8], "--json").json["trace"]
    assert rec["agent"]["name"] == "claude-code" and rec["agent"]["model"] == "anthropic/claude-opus-4-8"
    [patch] = rec["patches"]
    assert patch["file_path"] == "src/app.py"
    assert patch["anchor"]["found"] and patch["anchor"]["commit_sha"] == accepted
    assert rec["outcome"]["committed"] is True

    # What the model saw just before it edited the file includes the Read result.
    step = patch["step_index"]
    seen = cli("--bucket", bucket, "ctx", trace_id[:8], "--step", step, "--json").json["context"]["messages"]
    assert any(m["kind"] == "tool_result" and "hello, {name}" in json.dumps(m["content"]) for m in seen)

    # 4. Verify recomputes every hash: clean.
    assert cli("--bucket", bucket, "bucket", "verify", "--full").exit_code == 0

    # 5. Replay the trail into a fresh clone; plain git explains it.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True)
    res = cli("--bucket", bucket, "bucket", "replay", "--repo", clone, "--json")
    assert res.exit_code == 0, res.stderr
    head = res.json["replay"]["head"]
    mirror = git("--git-dir", str(bucket / ".git"), "for-each-ref", "--format=%(objectname)", "refs/opentraces/v1/trails", cwd=tmp_path)
    assert head in mirror.split()  # the same commit ids as the bucket's own trail ref

    log = git("log", "--format=%s", "refs/opentraces/local/events/v1", cwd=clone)
    assert "patch src/app.py" in log
    notes = git("log", "--notes=opentraces", "--format=%H%n%N", "-1", accepted, cwd=clone)
    assert trace_id in notes
    c = git("log", "--format=%H", "--grep=^patch ", "refs/opentraces/local/events/v1", cwd=clone).split()[0]
    diff = git("diff", f"{c}:before", f"{c}:after", cwd=clone)
    assert "+def farewell(name: str) -> str:" in diff
    subprocess.run(["git", "fsck", "--full", "--strict"], cwd=clone, check=True, capture_output=True)
