"""Read commands never write under the bucket (DESIGN.md §8), ``.state`` included.

Compared: every file's bytes (tree_digest), plus every path (folders too),
inode and mtime, so even a rewrite with identical bytes is caught.
"""

from __future__ import annotations

import os
import shutil

import pytest

from opentraces.ids import trace_id_for

from bucketrig import REAL_CLAUDE, capture, claude_sessions, tree_digest

REAL_TRACE = trace_id_for("claude-code", "164b9ad1-4c1b-4602-9102-5276951a1594")


def snapshot(root):
    entries = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            entries[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino)
    return tree_digest(root), entries


READS = [
    ("bucket", "status"),
    ("bucket", "status", "--json"),
    ("bucket", "manifest"),
    ("bucket", "manifest", "--json"),
    ("bucket", "verify", "--full", "--json"),
    ("bucket", "verify", "--full"),
    ("bucket", "verify", "--sample", "3", "--json"),
    ("bucket", "verify", "--json"),
    ("trace", "list"),
    ("trace", "list", "--json"),
    ("trace", "get", REAL_TRACE[:8]),
    ("trace", "get", REAL_TRACE, "--json"),
    ("ctx", REAL_TRACE[:8]),
    ("ctx", REAL_TRACE[:8], "--step", "2", "--json"),
]


@pytest.fixture
def bucket(tmp_path, cli):
    b = tmp_path / "bucket"
    capture(cli, b, *claude_sessions())
    assert (b / ".state").is_dir()
    return b


def test_read_commands_change_no_byte(bucket, cli):
    before = snapshot(bucket)
    for args in READS:
        res = cli("--bucket", bucket, *args)
        assert res.exit_code == 0, (args, res.stderr)
        assert snapshot(bucket) == before, args


def test_read_commands_change_no_byte_on_a_stale_bucket(tmp_path, cli):
    """Even when projections are missing, reads fold in memory and write nothing."""
    b = tmp_path / "bucket"
    capture(cli, b, REAL_CLAUDE)
    os.unlink(b / "manifest.json")
    os.unlink(b / "events/v1/index.json")
    before = snapshot(b)
    for args in (("bucket", "status", "--json"), ("bucket", "manifest", "--json"),
                 ("bucket", "verify", "--full", "--json"), ("bucket", "verify", "--sample", "3", "--json"),
                 ("trace", "list", "--json")):
        res = cli("--bucket", b, *args)
        assert res.exit_code in (0, 1), (args, res.stderr)
        assert snapshot(b) == before, args
    status = cli("--bucket", b, "bucket", "status", "--json").json["bucket"]
    assert status["state"] == "stale"
    manifest = cli("--bucket", b, "bucket", "manifest", "--json").json["manifest"]
    assert [r["trace_id"] for r in manifest["traces"]] == [REAL_TRACE]
    verify = cli("--bucket", b, "bucket", "verify", "--full", "--json")
    assert verify.exit_code == 1
    paths = {p["path"] for p in verify.json["verify"]["problems"]}
    assert {"manifest.json", "events/v1/index.json"} <= paths
    assert all(p in ("manifest.json", "events/v1/index.json") or p.startswith("refs/") for p in paths), paths


def test_reads_on_a_missing_bucket_create_nothing(tmp_path, cli):
    b = tmp_path / "nothing-here"
    for args in (("bucket", "status", "--json"), ("bucket", "manifest", "--json"),
                 ("bucket", "verify", "--full", "--json"), ("trace", "list", "--json")):
        res = cli("--bucket", b, *args)
        assert res.exit_code == 0, (args, res.stderr)
        assert not b.exists(), args
    res = cli("--bucket", b, "trace", "get", "abcd")
    assert res.exit_code == 2 and not b.exists()


def test_read_commands_as_processes_on_a_read_only_copy(bucket, tmp_path):
    """A bucket whose files and folders are all read-only still answers every read."""
    from bucketrig import run_cli_process

    ro = tmp_path / "ro"
    shutil.copytree(bucket, ro)
    modes = []
    for dirpath, dirs, files in os.walk(ro, topdown=False):
        for name in files + dirs:
            p = os.path.join(dirpath, name)
            modes.append(p)
            os.chmod(p, 0o555 if os.path.isdir(p) else 0o444)
    os.chmod(ro, 0o555)
    try:
        before = snapshot(ro)
        for args in (("bucket", "status", "--json"), ("bucket", "verify", "--full", "--json"),
                     ("trace", "get", REAL_TRACE[:8], "--json"), ("ctx", REAL_TRACE[:8], "--json")):
            r = run_cli_process("--bucket", ro, *args)
            assert r.returncode == 0, (args, r.stderr)
        assert snapshot(ro) == before
    finally:
        os.chmod(ro, 0o755)
        for p in modes:
            os.chmod(p, 0o755)
