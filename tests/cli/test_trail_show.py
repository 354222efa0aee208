"""``opentraces trail show <trace-id-prefix>``: a trace's patches in order,
with their diffs and anchors; short-id lookup and its errors."""

from __future__ import annotations

from pathlib import Path

from opentraces.ids import trace_id_for

from bucketrig import REAL_CLAUDE, capture, commit, git, one_line_error, rewrite_session

ORIGINAL = 'def greet(name: str) -> str:\n    return f"hello, {name}"\n'
EDITED = ORIGINAL + '\n\ndef farewell(name: str) -> str:\n    return f"goodbye, {name}"\n'
REAL_TRACE = trace_id_for("claude-code", "164b9ad1-4c1b-4602-9102-5276951a1594")




def anchored_bucket(tmp_path: Path, cli) -> tuple[Path, str]:
    repo = tmp_path / "project"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    commit(repo, "greet", "2026-06-12T15:20:00Z", {"src/app.py": ORIGINAL})
    edit = commit(repo, "add farewell", "2026-06-12T15:23:17Z", {"src/app.py": EDITED})
    bucket = tmp_path / "bucket"
    capture(cli, bucket, REAL_CLAUDE, "--project", repo)
    return bucket, edit


def test_trail_show_prints_diff_and_anchor(tmp_path, cli):
    bucket, edit = anchored_bucket(tmp_path, cli)
    res = cli("--bucket", bucket, "trail", "show", REAL_TRACE[:8])
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert REAL_TRACE in out and "1 patch(es), 1 anchored" in out
    assert f"anchor {edit[:12]}  exact_blob_hash (firm_observed)" in out
    assert "+def farewell(name: str) -> str:" in out
    assert '+    return f"goodbye, {name}"' in out
    assert "@@ -1,2 +1,6 @@" in out
    assert res.stderr == ""


def test_trail_show_json(tmp_path, cli):
    bucket, edit = anchored_bucket(tmp_path, cli)
    res = cli("--bucket", bucket, "trail", "show", REAL_TRACE[:6], "--json")
    assert res.exit_code == 0
    doc = res.json
    assert doc["status"] == "ok" and doc["schema_version"] == "opentraces.trail.show.v1"
    assert doc["trace_id"] == REAL_TRACE
    [p] = doc["patches"]
    assert p["seq"] == 0 and p["tool"] == "Edit" and p["operation"] == "modify" and p["content_known"]
    assert p["time"].startswith("2026-06-12T15:23:06")
    assert "+def farewell(name: str) -> str:\n" in p["diff"]
    [a] = p["anchors"]
    assert a["commit"] == edit and a["evidence"] == "exact_blob_hash" and a["rank"] == 1
    assert a["path"] == "src/app.py"


def test_trail_show_unanchored_patch(tmp_path, cli):
    bucket = tmp_path / "bucket"
    capture(cli, bucket, REAL_CLAUDE)  # the session's cwd is not on this machine: no repository
    res = cli("--bucket", bucket, "trail", "show", REAL_TRACE[:10])
    assert res.exit_code == 0
    assert "1 patch(es), 0 anchored" in res.stdout and "not anchored" in res.stdout
    assert "+def farewell(name: str) -> str:" in res.stdout
    doc = cli("--bucket", bucket, "trail", "show", REAL_TRACE[:10], "--json").json
    assert doc["patches"][0]["anchors"] == []


def _two_sessions_sharing_a_prefix(tmp_path: Path) -> tuple[list[Path], str]:
    seen: dict[str, str] = {}
    for i in range(100):
        sid = f"00000000-0000-4000-8000-{i:012d}"
        first = trace_id_for("claude-code", sid)[0]
        if first in seen:
            paths = [rewrite_session(REAL_CLAUDE, tmp_path / "s" / f"{s}.jsonl", s) for s in (seen[first], sid)]
            return paths, first
        seen[first] = sid
    raise AssertionError("no two session ids share a first hex digit")


def test_trail_show_ambiguous_prefix_exits_2(tmp_path, cli):
    paths, prefix = _two_sessions_sharing_a_prefix(tmp_path)
    bucket = tmp_path / "bucket"
    capture(cli, bucket, *paths)
    res = cli("--bucket", bucket, "trail", "show", prefix)
    assert res.exit_code == 2 and res.stdout == ""
    assert "ambiguous" in one_line_error(res.stderr)
    res = cli("--bucket", bucket, "trail", "show", prefix, "--json")
    assert res.exit_code == 2
    assert res.json["status"] == "error" and res.json["exit_code"] == 2


def test_trail_show_unknown_prefix_exits_2(tmp_path, cli):
    bucket, _ = anchored_bucket(tmp_path, cli)
    other = "0" if not REAL_TRACE.startswith("0") else "1"
    res = cli("--bucket", bucket, "trail", "show", other * 8)
    assert res.exit_code == 2
    assert "no trace matches" in one_line_error(res.stderr)
