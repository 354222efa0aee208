"""``bucket status``: counts from the manifest head, cost independent of the rows."""

from __future__ import annotations

import gzip
import os

import orjson

from opentraces.bucket import Bucket

from bucketrig import BATCHES, bucket_cmd, capture, claude_sessions, one_line_error, tree_digest


def test_status_counts_match_manifest_and_files(tmp_path, cli):
    bucket = tmp_path / "bucket"
    sessions = claude_sessions()
    capture(cli, bucket, *sessions[:2])
    capture(cli, bucket, *sessions[2:])
    res = bucket_cmd(cli, bucket, "status")
    doc = res.json
    assert doc["status"] == "ok" and doc["schema_version"] == "opentraces.bucket.status.v1"
    s = doc["bucket"]
    m = Bucket(bucket).manifest()
    assert s["state"] == "ok"
    assert s["traces"] == m["summary"]["trace_count"] == len(m["traces"]) == len(sessions)
    assert s["events"] == m["summary"]["event_count"] == sum(r["events"] for r in m["traces"])
    assert s["patches"] == m["summary"]["patch_count"] == sum(r["patches"] for r in m["traces"])
    assert s["digest"] == m["digest"]
    assert s["batches"] == 2 and s["writers"] == 1
    assert s["projects"] == len({r["project"] for r in m["traces"]})
    # ... and with the files themselves
    trace_dirs = list(bucket.glob("traces/v1/*/*/trace.json"))
    assert s["traces"] == len(trace_dirs)
    patches = sum(len(orjson.loads(p.read_bytes())["patches"]) for p in trace_dirs)
    assert s["patches"] == patches
    events = 0
    for b in (bucket / BATCHES).iterdir():
        events += len(gzip.decompress(b.read_bytes()).splitlines()) - 1
    assert s["events"] == events  # no event is in two batches here
    text = cli("--bucket", bucket, "bucket", "status")
    assert text.exit_code == 0
    assert f"traces   {s['traces']} in {s['projects']} project(s)" in text.stdout
    assert s["digest"] in text.stdout


def test_status_of_nonexistent_bucket_is_empty_and_creates_nothing(tmp_path, cli):
    bucket = tmp_path / "nope" / "bucket"
    res = bucket_cmd(cli, bucket, "status")
    s = res.json["bucket"]
    assert s["state"] == "empty" and s["traces"] == 0 and s["exists"] is False
    assert not (tmp_path / "nope").exists()
    text = cli("--bucket", bucket, "bucket", "status")
    assert text.exit_code == 0 and "empty" in text.stdout
    assert not (tmp_path / "nope").exists()


def test_status_of_empty_folder_and_default_location(tmp_path, cli):
    bucket = tmp_path / "empty"
    bucket.mkdir()
    s = bucket_cmd(cli, bucket, "status").json["bucket"]
    assert s["state"] == "empty"
    assert os.listdir(bucket) == []
    # default location: $OPENTRACES_HOME/bucket, which does not exist yet
    res = cli("bucket", "status", "--json")
    assert res.exit_code == 0 and res.json["bucket"]["state"] == "empty"
    assert res.json["bucket"]["bucket"] == os.path.join(os.environ["OPENTRACES_HOME"], "bucket")
    assert not os.path.exists(os.environ["OPENTRACES_HOME"])


def test_status_reads_only_the_manifest_head(tmp_path, cli):
    """manifest.json holds the summary and shard digests (constant size); the rows live in
    manifest/<hh>.json, which status never opens."""
    bucket = tmp_path / "bucket"
    capture(cli, bucket, *claude_sessions())
    want = bucket_cmd(cli, bucket, "status").json["bucket"]
    shards = sorted((bucket / "manifest").glob("*.json"))
    assert len(shards) == want["traces"] or len(shards) <= want["traces"]
    for shard in shards:  # every row is garbage: status must not parse any of them
        shard.write_bytes(b'{"traces": [\x00\xff garbage, never parsed')
    assert bucket_cmd(cli, bucket, "status").json["bucket"] == want
    # a reader that needs rows says the manifest is damaged (exit 5), in one line
    res = cli("--bucket", bucket, "trace", "list")
    assert res.exit_code == 5
    assert "manifest/" in one_line_error(res.stderr)


def test_status_reports_stale_projections(tmp_path, cli):
    bucket = tmp_path / "bucket"
    sessions = claude_sessions()
    capture(cli, bucket, sessions[0])
    old = (bucket / "manifest.json").read_bytes()
    capture(cli, bucket, sessions[1])
    (bucket / "manifest.json").write_bytes(old)  # as if the writer died before the manifest
    before = tree_digest(bucket)
    s = bucket_cmd(cli, bucket, "status").json["bucket"]
    assert s["state"] == "stale" and s["reasons"]
    text = cli("--bucket", bucket, "bucket", "status")
    assert "opentraces bucket repair" in text.stdout
    assert tree_digest(bucket) == before
    bucket_cmd(cli, bucket, "repair")
    assert bucket_cmd(cli, bucket, "status").json["bucket"]["state"] == "ok"


def test_status_with_deleted_manifest_is_stale(tmp_path, cli):
    bucket = tmp_path / "bucket"
    capture(cli, bucket, claude_sessions()[0])
    (bucket / "manifest.json").unlink()
    s = bucket_cmd(cli, bucket, "status").json["bucket"]
    assert s["state"] == "stale"
    assert not (bucket / "manifest.json").exists()
