"""``bucket prune`` deletes only unreachable blobs and stale temp files.

Never events, never trace.json; --dry-run deletes nothing; a damaged batch
(reachability unknown) makes it refuse with exit 5 and delete nothing.
"""

from __future__ import annotations

import hashlib

import pytest

from opentraces.encoding import canonical_json, gzip_bytes

from bucketrig import BATCHES, batch_files, bucket_cmd, capture, claude_sessions, git, one_line_error, tree_digest, verify_full


@pytest.fixture
def bucket(tmp_path, cli):
    b = tmp_path / "bucket"
    capture(cli, b, *claude_sessions())
    return b


def inject(bucket):
    """An unreachable raw blob, an unreachable context blob, stale temp files, and a
    non-blob file that prune must leave alone. Returns (blobs, temps, keep)."""
    project = sorted((bucket / "blobs/v1").iterdir())[0].name
    raw = b"bytes no event cites\n"
    h = hashlib.sha256(raw).hexdigest()
    raw_rel = f"blobs/v1/{project}/raw/{h[:2]}/{h}.blob"
    ctx = canonical_json({"format": "opentraces.context.message.v1", "content": "orphan"})
    c = hashlib.sha256(ctx).hexdigest()
    ctx_rel = f"blobs/v1/{project}/context/{c[:2]}/{c}.json.gz"
    other = "blobs/v1/ghost-project-00000000/raw/ab/" + "ab" * 32 + ".blob"
    files = {raw_rel: raw, ctx_rel: gzip_bytes(ctx), other: b"x"}
    trace = next(bucket.glob("traces/v1/*/*/trace.json")).parent
    temps = {
        ".x.tmp": b"half a write",
        f"{BATCHES}/.000000000009-0123456789abcdef.jsonl.gz.a1b2c3d4e5f6.tmp": b"\x1f\x8b partial",
        f"{trace.relative_to(bucket).as_posix()}/.trace.json.0a0b0c0d0e0f.tmp": b"{",
        f"blobs/v1/{project}/raw/{h[:2]}/.{h}.blob.ffffffffffff.tmp": raw[:5],
    }
    keep = {f"blobs/v1/{project}/NOTES.txt": b"not a blob name\n", "tmp.x": b"not a temp name\n"}
    for rel, data in {**files, **temps, **keep}.items():
        p = bucket / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return sorted(files), sorted(temps), sorted(keep)


def test_dry_run_lists_and_deletes_nothing(bucket, cli):
    blobs, temps, _keep = inject(bucket)
    before = tree_digest(bucket)
    res = bucket_cmd(cli, bucket, "prune", "--dry-run")
    doc = res.json
    assert doc["schema_version"] == "opentraces.bucket.prune.v1"
    p = doc["prune"]
    assert p["dry_run"] is True
    assert sorted(p["blobs"]) == blobs
    assert sorted(p["tempfiles"]) == temps
    assert p["would_delete"] == len(blobs) + len(temps) and p["deleted"] == 0
    assert tree_digest(bucket) == before
    text = cli("--bucket", bucket, "bucket", "prune", "--dry-run")
    assert text.exit_code == 0
    for rel in blobs + temps:
        assert f"would delete {rel}" in text.stdout
    assert tree_digest(bucket) == before


def test_prune_deletes_exactly_those(bucket, cli):
    clean = tree_digest(bucket, exclude=(".state", ".git"))
    blobs, temps, keep = inject(bucket)
    events_before = tree_digest(bucket / "events")
    traces = sorted(p.relative_to(bucket) for p in bucket.glob("traces/v1/*/*/trace.json"))
    before = tree_digest(bucket, exclude=(".git", ".state/mirror-repack.json"))
    refs_before = git("for-each-ref", cwd=bucket / ".git").stdout
    p = bucket_cmd(cli, bucket, "prune").json["prune"]
    assert sorted(p["blobs"]) == blobs and sorted(p["tempfiles"]) == temps
    assert p["deleted"] == len(blobs) + len(temps) and p["bytes_freed"] > 0
    # the mirror was repacked and its refs packed: same refs, same objects reachable
    assert p["mirror"]["pruned"] is True
    assert git("for-each-ref", cwd=bucket / ".git").stdout == refs_before
    assert not list((bucket / ".git/refs/opentraces").rglob("*")) or all(
        x.is_dir() for x in (bucket / ".git/refs/opentraces").rglob("*"))
    git("fsck", "--full", "--strict", "--no-dangling", cwd=bucket / ".git")
    after = tree_digest(bucket, exclude=(".git", ".state/mirror-repack.json"))
    assert set(before) - set(after) == set(blobs) | set(temps)
    assert {k: v for k, v in before.items() if k in after} == after
    for rel in keep:
        assert (bucket / rel).exists()
    assert tree_digest(bucket / "events") == {k: v for k, v in events_before.items() if not k.split("/")[-1].startswith(".")}
    assert sorted(p.relative_to(bucket) for p in bucket.glob("traces/v1/*/*/trace.json")) == traces
    for rel in keep:
        (bucket / rel).unlink()
    assert tree_digest(bucket, exclude=(".state", ".git")) == clean
    assert verify_full(cli, bucket)["exit"] == 0
    # nothing left to prune
    again = bucket_cmd(cli, bucket, "prune").json["prune"]
    assert again["blobs"] == [] and again["tempfiles"] == [] and again["deleted"] == 0


def test_prune_keeps_every_cited_blob(bucket, cli):
    blobs_before = tree_digest(bucket / "blobs")
    p = bucket_cmd(cli, bucket, "prune").json["prune"]
    assert p["blobs"] == [] and p["deleted"] == 0
    assert tree_digest(bucket / "blobs") == blobs_before


@pytest.mark.parametrize("damage", ["flip", "truncate"])
@pytest.mark.parametrize("dry", [False, True])
def test_damaged_batch_refuses_prune(bucket, cli, damage, dry):
    inject(bucket)
    target = batch_files(bucket)[0]
    data = bytearray(target.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[-10:]
    target.write_bytes(bytes(data))
    before = tree_digest(bucket)
    args = ("bucket", "prune", "--dry-run") if dry else ("bucket", "prune")
    res = cli("--bucket", bucket, *args)
    assert res.exit_code == 5, (res.stdout, res.stderr)
    assert target.name in one_line_error(res.stderr)
    assert tree_digest(bucket) == before
    js = cli("--bucket", bucket, *args, "--json")
    assert js.exit_code == 5 and js.json["status"] == "error" and js.json["exit_code"] == 5
    assert tree_digest(bucket) == before
