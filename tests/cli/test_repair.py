"""``bucket repair`` / ``rebuild`` / ``manifest --heal`` regenerate every derived
file byte-for-byte from events + blobs, and a second run writes nothing."""

from __future__ import annotations

import os
import shutil

import pytest

from bucketrig import BATCHES, INDEX, bucket_cmd, capture, claude_sessions, tree_digest, verify_full


def derived(root):
    """traces/ plus manifest.json and the batch index."""
    out = {f"traces/{k}": v for k, v in tree_digest(root / "traces").items()}
    for f in ("manifest.json", INDEX):
        p = root / f
        out[f] = tree_digest(p.parent)[p.name] if p.exists() else None
    return out


def stats(root):
    """Every path with inode and mtime: proves a no-op run rewrote nothing."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


@pytest.fixture
def bucket(tmp_path, cli):
    b = tmp_path / "bucket"
    sessions = claude_sessions()
    capture(cli, b, *sessions[:2])
    capture(cli, b, *sessions[2:])  # two batches
    assert verify_full(cli, b)["exit"] == 0
    return b


def test_repair_restores_everything_byte_for_byte(bucket, cli):
    before = derived(bucket)
    canonical = tree_digest(bucket / "events/v1/batches"), tree_digest(bucket / "blobs")
    assert any(k.endswith(".diff") for k in before)
    shutil.rmtree(bucket / "traces")
    (bucket / "manifest.json").unlink()
    (bucket / INDEX).unlink()

    res = bucket_cmd(cli, bucket, "repair")
    doc = res.json
    assert doc["schema_version"] == "opentraces.bucket.repair.v1" and doc["status"] == "ok"
    assert doc["repair"]["files_written"] == len(before)
    assert doc["repair"]["damaged_batches"] == []
    assert derived(bucket) == before
    assert (tree_digest(bucket / "events/v1/batches"), tree_digest(bucket / "blobs")) == canonical

    # idempotent: a second repair writes nothing and touches no file
    snap, digest = stats(bucket), tree_digest(bucket)
    again = bucket_cmd(cli, bucket, "repair").json["repair"]
    assert again["files_written"] == 0
    assert again["index_written"] is False and again["manifest_written"] is False
    assert tree_digest(bucket) == digest
    assert {k: v for k, v in stats(bucket).items() if not k.startswith(".state")} == \
           {k: v for k, v in snap.items() if not k.startswith(".state")}
    assert verify_full(cli, bucket)["exit"] == 0


def test_repair_removes_stray_history_and_fixes_edits(bucket, cli):
    before = derived(bucket)
    tj = next((bucket / "traces").glob("v1/*/*/trace.json"))
    tj.write_bytes(tj.read_bytes().replace(b'"execution_context": "devtime"', b'"execution_context": "runtime"'))
    hist = next((bucket / "traces").glob("v1/*/*/trace_history"))
    (hist / "9999-stray.diff").write_text("not from any event\n")
    assert verify_full(cli, bucket)["exit"] == 1
    res = bucket_cmd(cli, bucket, "repair").json["repair"]
    assert res["files_written"] == 2
    assert derived(bucket) == before
    assert verify_full(cli, bucket)["exit"] == 0


SUBSTRATE_FILES = {
    "trail": lambda rel: rel.endswith("trail.jsonl.gz") or "/trace_history/" in rel or rel == INDEX,
    "context-tree": lambda rel: rel.endswith("context.jsonl.gz"),
    "traces": lambda rel: rel.endswith(("trace.json", "sources.jsonl.gz")) or rel == "manifest.json",
    "all": lambda rel: True,
}


@pytest.mark.parametrize("substrate", ["trail", "context-tree", "traces", "all"])
def test_rebuild_substrate_restores_its_files_and_is_idempotent(bucket, cli, substrate):
    before = derived(bucket)
    mine = sorted(k for k in before if SUBSTRATE_FILES[substrate](k))
    assert mine
    for k in mine:
        (bucket / k).unlink()
    res = bucket_cmd(cli, bucket, "rebuild", "--substrate", substrate).json
    assert res["schema_version"] == "opentraces.bucket.rebuild.v1"
    assert res["rebuild"]["substrate"] == substrate
    assert res["rebuild"]["files_written"] == len(mine)
    assert derived(bucket) == before

    snap, digest = stats(bucket), tree_digest(bucket, exclude=(".state",))
    for sub in ("trail", "context-tree", "traces", "all"):
        again = bucket_cmd(cli, bucket, "rebuild", "--substrate", sub).json["rebuild"]
        assert again["files_written"] == 0, sub
    assert tree_digest(bucket, exclude=(".state",)) == digest
    assert {k: v for k, v in stats(bucket).items() if not k.startswith(".state")} == \
           {k: v for k, v in snap.items() if not k.startswith(".state")}


def test_rebuild_default_is_all(bucket, cli):
    before = derived(bucket)
    shutil.rmtree(bucket / "traces")
    res = bucket_cmd(cli, bucket, "rebuild").json["rebuild"]
    assert res["substrate"] == "all"
    assert derived(bucket) == before


def test_manifest_heal_restores_a_deleted_manifest(bucket, cli):
    from opentraces.bucket import Bucket

    before = (bucket / "manifest.json").read_bytes()
    doc = Bucket(bucket).manifest()
    assert len(doc["traces"]) == doc["summary"]["trace_count"] > 0
    (bucket / "manifest.json").unlink()
    # without --heal: printed from an in-memory fold, nothing written
    res = bucket_cmd(cli, bucket, "manifest")
    assert not (bucket / "manifest.json").exists()
    assert res.json["healed"] is None
    assert res.json["manifest"] == doc
    healed = bucket_cmd(cli, bucket, "manifest", "--heal")
    assert healed.json["healed"]["manifest_written"] is True
    assert (bucket / "manifest.json").read_bytes() == before
    assert healed.json["manifest"] == doc
    again = bucket_cmd(cli, bucket, "manifest", "--heal").json
    assert again["healed"]["files_written"] == 0
    assert (bucket / "manifest.json").read_bytes() == before


def test_capture_after_lost_projections_catches_up(bucket, cli, tmp_path):
    """A capture into a bucket whose index and manifest are gone repairs first."""
    before = derived(bucket)
    (bucket / "manifest.json").unlink()
    (bucket / INDEX).unlink()
    shutil.rmtree(bucket / "traces")
    doc = capture(cli, bucket, *claude_sessions())
    assert doc["capture"]["batches"] == []
    assert derived(bucket) == before
    assert len(list((bucket / BATCHES).iterdir())) == 2


@pytest.mark.parametrize("which", [0, 1])
def test_repair_refuses_a_damaged_batch_and_keeps_the_trace_folders(tmp_path, cli, which):
    """The trace folders may be the last readable copy of a damaged batch's events:
    repair/rebuild/heal must not overwrite them with a fold that lacks those events."""
    from bucketrig import REAL_CLAUDE, batch_files, one_line_error

    lines = REAL_CLAUDE.read_bytes().splitlines(keepends=True)
    live = tmp_path / "s" / REAL_CLAUDE.name
    live.parent.mkdir()
    live.write_bytes(b"".join(lines[:10]))
    b = tmp_path / "bucket"
    capture(cli, b, live)
    live.write_bytes(b"".join(lines))
    capture(cli, b, live, claude_sessions()[-1])
    target = batch_files(b)[which]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    before = tree_digest(b)
    for args in (("bucket", "repair"), ("bucket", "rebuild"), ("bucket", "rebuild", "--substrate", "traces"),
                 ("bucket", "rebuild", "--substrate", "context-tree"), ("bucket", "manifest", "--heal")):
        res = cli("--bucket", b, *args)
        assert res.exit_code == 5, (args, res.stdout, res.stderr)
        line = one_line_error(res.stderr)
        assert target.name in line, line
        assert tree_digest(b) == before, args
    # a capture that would have to re-project everything refuses too
    (b / INDEX).unlink()
    before = tree_digest(b)
    res = cli("--bucket", b, "capture", "claude-code", live)
    assert res.exit_code == 5
    one_line_error(res.stderr)
    assert tree_digest(b) == before


@pytest.mark.parametrize("garbage", [b"garbage{", b"", b'{"schema_version": "something-else"}\n', b"\x00" * 100])
def test_damaged_manifest_is_repaired_not_a_dead_end(bucket, cli, garbage):
    """The error says 'run opentraces bucket repair': repair (and capture) must then work."""
    from bucketrig import one_line_error

    before = derived(bucket)
    (bucket / "manifest.json").write_bytes(garbage)
    for args in (("bucket", "status"), ("trace", "list")):
        res = cli("--bucket", bucket, *args)
        assert res.exit_code == 5, (args, res.stdout, res.stderr)
        assert "opentraces bucket repair" in one_line_error(res.stderr)
    res = bucket_cmd(cli, bucket, "repair").json["repair"]
    assert res["manifest_written"] is True
    assert derived(bucket) == before
    # a capture heals it too
    (bucket / "manifest.json").write_bytes(garbage)
    capture(cli, bucket, *claude_sessions())
    assert derived(bucket) == before
    assert verify_full(cli, bucket)["exit"] == 0
