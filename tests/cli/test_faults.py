"""Reproductions of what a fault-injection run found (issue #11), each failing before its fix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson

from bucketrig import REAL_CLAUDE, capture, claude_sessions, one_line_error, rewrite_session, verify_full


def test_a_deeply_nested_line_is_one_skipped_line(tmp_path, cli):
    """1,025 levels of nesting made the JSON fallback raise RecursionError and abort the whole run."""
    bad = tmp_path / "s" / "deep.jsonl"
    rewrite_session(REAL_CLAUDE, bad, "deep-session")
    deep = b'{"type":"user","x":' + b"[" * 1025 + b"]" * 1025 + b"}\n"
    bad.write_bytes(bad.read_bytes() + deep)
    other = rewrite_session(REAL_CLAUDE, tmp_path / "s" / "other.jsonl", "other-session")
    doc = capture(cli, tmp_path / "bucket", bad, other)["capture"]
    assert len(doc["captured"]) == 2
    [mine] = [c for c in doc["captured"] if c["path"] == str(bad)]
    assert [reason for _line, reason in mine["skipped_lines"]] == ["nested too deeply"]
    assert verify_full(cli, tmp_path / "bucket")["exit"] == 0


def test_a_fifo_is_skipped_not_waited_for(tmp_path):
    """A FIFO given by path hung capture forever while it held the writer lock."""
    fifo = tmp_path / "s" / "pipe.jsonl"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    good = rewrite_session(REAL_CLAUDE, tmp_path / "s" / "good.jsonl", "good-session")
    bucket = tmp_path / "bucket"
    env = dict(os.environ)
    for args in ((fifo, good), (tmp_path / "s",)):  # by path, then inside a folder
        t0 = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "opentraces.cli", "--bucket", bucket, "capture", "claude-code",
                               *map(str, args), "--json"], env=env, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - t0 < 30
        doc = orjson.loads(done.stdout)["capture"]
        [skip] = doc["skipped"]
        assert skip["path"] == str(fifo) and "regular file" in skip["reason"]
    # the lock was released: another capture proceeds at once
    done = subprocess.run([sys.executable, "-m", "opentraces.cli", "--bucket", bucket, "capture", "claude-code",
                           str(good), "--json"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0 and orjson.loads(done.stdout)["capture"]["unchanged"] == [str(good)]


def _mount_tmpfs(path: Path, size_kb: int) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


def _temp_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and ((p.name.startswith(".") and p.name.endswith(".tmp")) or p.name.startswith(".tmp-pack-")))


def test_a_full_disk_is_exit_6_and_loses_nothing(tmp_path, cli):
    """Space running out mid-capture: one line, exit 6, no temp file left; with space back, a rerun completes."""
    import pytest

    sessions = claude_sessions()
    probe = tmp_path / "probe"
    capture(cli, probe, *sessions)
    need = sum(p.stat().st_size for p in probe.rglob("*") if p.is_file()) // 1024
    fs = tmp_path / "fs"
    results = []
    for frac in (0.15, 0.35, 0.6, 0.85):
        if not _mount_tmpfs(fs, max(64, int(need * frac))):
            pytest.skip("cannot mount a small tmpfs here (needs root); CI runs as root")
        try:
            bucket = fs / "bucket"
            res = cli("--bucket", bucket, "capture", "claude-code", *sessions, "--json")
            results.append(res.exit_code)
            if res.exit_code != 0:
                assert res.exit_code == 6, (res.exit_code, res.stdout, res.stderr)
                line = one_line_error(res.stderr)
                assert "disk is full" in line
                if "after batch" in line:
                    assert "safe" in line  # never "nothing was committed" once a batch was
                assert _temp_files(bucket) == []
            subprocess.run(["mount", "-o", f"remount,size={need * 4}k", str(fs)], check=True)
            again = capture(cli, bucket, *sessions)
            assert again is not None
            assert verify_full(cli, bucket)["exit"] == 0
            assert _temp_files(bucket) == []
            assert {p.name for p in bucket.glob("traces/v1/*/*")} == {p.name for p in probe.glob("traces/v1/*/*")}
        finally:
            subprocess.run(["umount", "-l", str(fs)], capture_output=True)  # lazy: this process may still map a pack
            shutil.rmtree(fs, ignore_errors=True)
    assert 6 in results  # at least one size ran out of space mid-way


def test_temp_files_of_a_killed_writer_are_swept_by_the_next(tmp_path, cli):
    """kill -9 leaves blob temps and half-written packs; the next writer (not only prune) removes them."""
    bucket = tmp_path / "bucket"
    capture(cli, bucket, REAL_CLAUDE)
    blob_dir = next((bucket / "blobs").rglob("raw")).parent
    stale = [blob_dir / "raw" / ".deadbeef.blob.0a1b2c.tmp", bucket / "events" / "v1" / "batches" / ".x.jsonl.gz.1.tmp",
             bucket / ".git" / "objects" / "pack" / ".tmp-pack-123-abc.pack", bucket / ".git" / "objects" / "pack" / "tmp_pack_Xy"]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half written")
    (bucket / ".state" / "writing").write_text("")  # what a writer killed with the lock held leaves
    other = rewrite_session(REAL_CLAUDE, tmp_path / "s" / "b.jsonl", "another-session")
    capture(cli, bucket, other)
    assert [p for p in stale if p.exists()] == []
    assert not (bucket / ".state" / "writing").exists()
    assert verify_full(cli, bucket)["exit"] == 0


def test_status_of_a_bucket_killed_before_its_first_batch_is_empty(tmp_path, cli):
    bucket = tmp_path / "bucket"
    (bucket / "events" / "v1" / "batches").mkdir(parents=True)
    (bucket / ".state").mkdir()
    res = cli("--bucket", bucket, "bucket", "status", "--json")
    assert res.exit_code == 0 and res.json["bucket"]["state"] == "empty"


def _mirror_pack(bucket: Path) -> Path:
    return max((bucket / ".git" / "objects" / "pack").glob("pack-*.pack"), key=lambda p: p.stat().st_size)


def test_verify_full_finds_a_damaged_or_deleted_pack_and_repair_rebuilds(tmp_path, cli):
    import pytest

    for damage in ("flip", "truncate", "delete"):
        bucket = tmp_path / damage
        capture(cli, bucket, *claude_sessions())
        pack = _mirror_pack(bucket)
        if damage == "flip":
            data = bytearray(pack.read_bytes())
            data[len(data) // 2] ^= 0xFF
            pack.write_bytes(bytes(data))
        elif damage == "truncate":
            pack.write_bytes(pack.read_bytes()[:-100])
        else:
            pack.unlink()
        v = verify_full(cli, bucket)
        assert v["exit"] == 1, damage
        kinds = {p["kind"] for p in v["problems"]}
        assert kinds & {"mirror_pack", "mirror_objects", "mirror_damaged"}, (damage, v["problems"])
        res = cli("--bucket", bucket, "bucket", "repair", "--json")
        assert res.exit_code == 0, res.stdout
        v = verify_full(cli, bucket)
        assert v["exit"] == 0, (damage, v["problems"])
        done = subprocess.run(["git", f"--git-dir={bucket / '.git'}", "fsck", "--full", "--strict"], capture_output=True, text=True)
        assert done.returncode == 0, (damage, done.stderr)
    _ = pytest


def test_a_truncated_ref_is_named_and_repaired(tmp_path, cli):
    bucket = tmp_path / "bucket"
    capture(cli, bucket, REAL_CLAUDE)
    ref = bucket / ".git" / "refs" / "opentraces" / "v1" / "bucket"
    if not ref.exists():  # packed: write it loose, the way a crash mid-write leaves it
        ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_bytes(b"3f2a")
    v = verify_full(cli, bucket)
    assert v["exit"] == 1 and any(p["kind"] == "mirror_ref" for p in v["problems"]), v["problems"]
    res = cli("--bucket", bucket, "bucket", "repair", "--json")
    assert res.exit_code == 0 and "refs_dropped" in str(res.json)
    assert verify_full(cli, bucket)["exit"] == 0
    st = cli("--bucket", bucket, "bucket", "status", "--json").json["bucket"]
    assert st["mirror"]["state"] == "current"


def test_a_deleted_batch_is_named_and_restored_never_dropped(tmp_path, cli):
    from bucketrig import batch_files

    bucket = tmp_path / "bucket"
    sessions = [rewrite_session(REAL_CLAUDE, tmp_path / "s" / f"{i}.jsonl", f"session-{i}") for i in range(3)]
    for s in sessions:  # one batch each
        capture(cli, bucket, s)
    batches = batch_files(bucket)
    assert len(batches) == 3
    gone = batches[1]
    data = gone.read_bytes()
    gone.unlink()
    v = verify_full(cli, bucket)
    assert v["exit"] == 1
    assert any(p["kind"] == "batch_missing" and p["path"].endswith(gone.name) for p in v["problems"]), v["problems"]
    res = cli("--bucket", bucket, "bucket", "repair", "--json")
    assert res.exit_code == 0 and res.json["repair"]["batches_restored"] == [gone.name]
    assert gone.read_bytes() == data
    assert verify_full(cli, bucket)["exit"] == 0
    assert len(list((bucket / "traces" / "v1").glob("*/*/trace.json"))) == 3
    # without any copy, repair refuses to drop the events (exit 5) and changes nothing
    import shutil as _sh

    _sh.rmtree(bucket / ".git")
    last = batch_files(bucket)[-1]
    last.unlink()
    from bucketrig import tree_digest

    before = tree_digest(bucket)
    res = cli("--bucket", bucket, "bucket", "repair")
    assert res.exit_code == 5 and last.name in one_line_error(res.stderr)
    assert tree_digest(bucket) == before
    assert verify_full(cli, bucket)["exit"] == 1


def test_repair_restores_a_damaged_blob_from_the_mirror_and_never_spreads_it(tmp_path, cli):
    bucket = tmp_path / "bucket"
    capture(cli, bucket, *claude_sessions())
    blob = next(p for p in sorted((bucket / "blobs").rglob("*.json.gz")))
    good = blob.read_bytes()
    refs_before = subprocess.run(["git", f"--git-dir={bucket / '.git'}", "for-each-ref"], capture_output=True, text=True).stdout
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0xFF
    blob.write_bytes(bytes(damaged))
    v = verify_full(cli, bucket)
    assert v["exit"] == 1 and any(p["path"].endswith(blob.name) for p in v["problems"])
    # a capture in between must not point the mirror at the damaged bytes
    capture(cli, bucket, rewrite_session(REAL_CLAUDE, tmp_path / "s" / "x.jsonl", "another-one"))
    res = cli("--bucket", bucket, "bucket", "repair", "--json")
    assert res.exit_code == 0, res.stdout
    assert str(blob.relative_to(bucket)) in res.json["repair"]["blobs_restored"]
    assert blob.read_bytes() == good
    assert verify_full(cli, bucket)["exit"] == 0
    assert refs_before  # (the refs were readable before)


def test_four_captures_a_repair_and_verify_loops_at_once(tmp_path):
    """No false report from verify while others write, no deadlock past the lock timeout, nothing lost."""
    bucket = tmp_path / "bucket"
    groups = []
    for g in range(4):
        paths = [rewrite_session(REAL_CLAUDE, tmp_path / f"g{g}" / f"{i}.jsonl", f"conc-{g}-{i}") for i in range(4)]
        groups.append(paths)
    env = dict(os.environ)
    script = ("import sys, subprocess\n"
              "for p in sys.argv[2:]:\n"
              "    r = subprocess.run([sys.executable, '-m', 'opentraces.cli', '--bucket', sys.argv[1], 'capture',"
              " 'claude-code', p, '--json'], capture_output=True)\n"
              "    assert r.returncode == 0, r.stderr\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(bucket), *map(str, g)], env=env,
                              stderr=subprocess.PIPE) for g in groups]
    repairs = subprocess.Popen([sys.executable, "-c",
                                "import sys, subprocess, time\n"
                                "for _ in range(3):\n"
                                "    time.sleep(0.5)\n"
                                "    r = subprocess.run([sys.executable, '-m', 'opentraces.cli', '--bucket', sys.argv[1],"
                                " 'bucket', 'repair', '--json'], capture_output=True)\n"
                                "    assert r.returncode in (0,), r.stderr\n", str(bucket)], env=env, stderr=subprocess.PIPE)
    verifies = 0
    deadline = time.monotonic() + 240
    while any(p.poll() is None for p in procs + [repairs]) and time.monotonic() < deadline:
        if (bucket / "manifest.json").exists():
            v = subprocess.run([sys.executable, "-m", "opentraces.cli", "--bucket", str(bucket), "bucket", "verify",
                                "--full", "--json"], env=env, capture_output=True, text=True, timeout=120)
            assert v.returncode == 0, orjson.loads(v.stdout)["verify"]["problems"][:3]
            verifies += 1
        time.sleep(0.05)
    for p in procs + [repairs]:
        assert p.wait(timeout=60) == 0, p.stderr.read()[-1000:]
    assert verifies >= 1
    assert len(list(bucket.glob("traces/v1/*/*/trace.json"))) == 16
    assert verify_full_process(bucket) == 0


def verify_full_process(bucket: Path) -> int:
    return subprocess.run([sys.executable, "-m", "opentraces.cli", "--bucket", str(bucket), "bucket", "verify", "--full"],
                          capture_output=True).returncode


def test_verify_full_names_stale_temp_files_and_a_truncated_manifest_stops_status(tmp_path, cli):
    bucket = tmp_path / "bucket"
    capture(cli, bucket, REAL_CLAUDE)
    stale = bucket / "events" / "v1" / "batches" / ".000000000002-x.jsonl.gz.ab12cd.tmp"
    stale.write_bytes(b"half")
    v = verify_full(cli, bucket)
    assert v["exit"] == 1 and [p["path"] for p in v["problems"] if p["kind"] == "stale_tempfile"] == \
        ["events/v1/batches/" + stale.name]
    assert cli("--bucket", bucket, "bucket", "prune", "--json").exit_code == 0
    assert verify_full(cli, bucket)["exit"] == 0
    m = bucket / "manifest.json"
    m.write_bytes(m.read_bytes()[: len(m.read_bytes()) // 2])  # a torn write
    res = cli("--bucket", bucket, "bucket", "status", "--json")
    assert res.exit_code == 5 and "repair" in one_line_error(res.stderr)


def test_a_symlink_inside_the_bucket_is_never_written_through_or_deleted(tmp_path, cli):
    bucket = tmp_path / "bucket"
    capture(cli, bucket, REAL_CLAUDE)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me\n")
    [trace_dir] = list((bucket / "traces" / "v1").glob("*/*"))
    shutil.rmtree(trace_dir)
    trace_dir.symlink_to(outside, target_is_directory=True)
    for args in (("bucket", "repair"), ("capture", "claude-code", str(REAL_CLAUDE))):
        res = cli("--bucket", bucket, *args)
        assert res.exit_code in (0, 5), (args, res.stderr)
        assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"], args
        assert (outside / "precious.txt").read_text() == "keep me\n"
        if res.exit_code == 5:
            assert "symbolic link" in one_line_error(res.stderr)


def test_a_gzip_bomb_is_refused_with_bounded_memory(tmp_path, cli):
    import gzip

    bucket = tmp_path / "bucket"
    capture(cli, bucket, REAL_CLAUDE)
    blob = next((bucket / "blobs").rglob("*.json.gz"))
    from opentraces.batches import GZIP_HEADER

    bomb = gzip.compress(b"\0" * (300 * 1024 * 1024), 9)  # ~300 kB that would inflate to 300 MiB
    blob.write_bytes(GZIP_HEADER + bomb[10:])  # our canonical header: only the bound can stop it
    v = verify_full(cli, bucket)
    assert v["exit"] == 1
    [p] = [p for p in v["problems"] if p["path"].endswith(blob.name)]
    assert "gzip bomb" in p["detail"]


def test_a_batch_lost_without_a_copy_comes_back_by_capturing_again(tmp_path, cli):
    """The last batch deleted and no mirror: repair refuses (its events are only in trace folders);
    capturing the session file again commits them again; then verify and repair are clean."""
    from bucketrig import batch_files, tree_digest

    bucket = tmp_path / "bucket"
    first = rewrite_session(REAL_CLAUDE, tmp_path / "s" / "1.jsonl", "lost-1")
    second = rewrite_session(REAL_CLAUDE, tmp_path / "s" / "2.jsonl", "lost-2")
    capture(cli, bucket, first)
    capture(cli, bucket, second)
    shutil.rmtree(bucket / ".git")
    lost = batch_files(bucket)[-1]
    lost.unlink()
    before = tree_digest(bucket)
    res = cli("--bucket", bucket, "bucket", "repair")
    assert res.exit_code == 5 and lost.name in one_line_error(res.stderr)
    assert tree_digest(bucket) == before
    os.utime(second, None)  # a new mtime: capture reads the file again
    again = capture(cli, bucket, second)["capture"]
    assert [c["path"] for c in again["captured"]] == [str(second)] and again["batches"]
    assert verify_full(cli, bucket)["exit"] == 0
    res = cli("--bucket", bucket, "bucket", "repair", "--json")
    assert res.exit_code == 0, res.stdout
    assert len(list((bucket / "traces" / "v1").glob("*/*/trace.json"))) == 2
    assert verify_full(cli, bucket)["exit"] == 0
