"""Two machines, one result: captures are a pure function of the session bytes.

Two empty buckets under two HOMEs, captured by two separate processes with
different time zones, from copies of the sessions in different folders with
different mtimes: traces/ and blobs/ are byte-identical and the manifest
digest is equal. Only the writer-specific event batches differ.
"""

from __future__ import annotations

import os
import shutil

import orjson

from opentraces.bucket import Bucket

from bucketrig import canonical_digest, claude_sessions, copy_file, run_cli_process, set_mtime, tree_digest


def _machine(tmp_path, name: str, tz: str, mtime: int):
    home = tmp_path / name / "home"
    home.mkdir(parents=True)
    src = tmp_path / name / f"sessions-from-{name}" / "nested"
    files = []
    for i, s in enumerate(claude_sessions()):
        f = copy_file(s, src / s.name)
        set_mtime(f, mtime + i)
        files.append(f)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "OPENTRACES_", "LC_", "TZ"))}
    env.update({"HOME": str(home), "OPENTRACES_HOME": str(home / ".ot"), "TZ": tz,
                "GIT_CONFIG_NOSYSTEM": "1", "LANG": "C.UTF-8" if name == "a" else "en_US.UTF-8"})
    return home, files, env


def test_two_machines_produce_identical_traces_and_blobs(tmp_path):
    home_a, files_a, env_a = _machine(tmp_path, "a", "UTC", 1_000_000_000)
    home_b, files_b, env_b = _machine(tmp_path, "b", "Asia/Tokyo", 1_700_000_000)
    bucket_a = home_a / ".ot" / "bucket"  # the default location
    bucket_b = tmp_path / "b" / "elsewhere" / "my-bucket"  # an explicit --bucket

    ra = run_cli_process("capture", "claude-code", *files_a, "--json", env=env_a)
    rb = run_cli_process("--bucket", bucket_b, "capture", "claude-code", *reversed(files_b), "--json", env=env_b)
    assert ra.returncode == 0, ra.stderr
    assert rb.returncode == 0, rb.stderr
    assert orjson.loads(ra.stdout)["capture"]["skipped"] == []

    da, db = canonical_digest(bucket_a), canonical_digest(bucket_b)
    assert any(k.endswith("trace.json") for k in da)
    assert any(k.startswith("blobs/") and k.endswith(".blob") for k in da)
    assert da == db

    ma = Bucket(bucket_a).manifest()
    mb = Bucket(bucket_b).manifest()
    assert ma["digest"] == mb["digest"]
    assert ma["traces"] == mb["traces"]

    # the event content is the same set of facts; only the transport differs
    def facts(bucket):
        out = set()
        for rel in tree_digest(bucket / "events/v1/batches"):
            from opentraces.batches import read_batch
            out |= {e["event_id"] for e in read_batch(bucket / "events/v1/batches" / rel).events}
        return out

    assert facts(bucket_a) == facts(bucket_b)
    wa = orjson.loads((bucket_a / ".state/writer.json").read_bytes())["writer"]
    wb = orjson.loads((bucket_b / ".state/writer.json").read_bytes())["writer"]
    assert wa != wb

    # status agrees too (counts and digest), from two more processes
    sa = orjson.loads(run_cli_process("bucket", "status", "--json", env=env_a).stdout)["bucket"]
    sb = orjson.loads(run_cli_process("--bucket", bucket_b, "bucket", "status", "--json", env=env_b).stdout)["bucket"]
    for key in ("digest", "traces", "events", "patches", "state"):
        assert sa[key] == sb[key], key


def test_recapture_in_another_timezone_adds_nothing(tmp_path):
    home, files, env = _machine(tmp_path, "a", "UTC", 1_000_000_000)
    bucket = tmp_path / "bucket"
    assert run_cli_process("--bucket", bucket, "capture", "claude-code", *files, env=env).returncode == 0
    before = tree_digest(bucket, exclude=(".state",))
    # same sessions, new folder, new mtimes, other TZ: every event already exists
    other = [copy_file(f, tmp_path / "moved" / f.name) for f in files]
    for f in other:
        set_mtime(f, 1_234_567_890)
    env2 = {**env, "TZ": "America/St_Johns"}
    r = run_cli_process("--bucket", bucket, "capture", "claude-code", *other, "--json", env=env2)
    assert r.returncode == 0, r.stderr
    doc = orjson.loads(r.stdout)["capture"]
    assert doc["batches"] == [] and doc["events"] == 0 and doc["captured"] == []
    assert tree_digest(bucket, exclude=(".state",)) == before


def test_copied_bucket_is_complete_and_writes_as_a_new_writer(tmp_path, cli):
    """cp -r to another place: verifies clean, reads work, and new captures get a
    writer id of their own (two copies never write the same batch name)."""
    from bucketrig import REAL_CLAUDE, batch_files, capture, verify_full
    from opentraces.batches import read_batch

    a = tmp_path / "a"
    capture(cli, a, REAL_CLAUDE)
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b, symlinks=True)
    v = verify_full(cli, b)
    assert v["exit"] == 0 and v["problems"] == []
    assert cli("--bucket", b, "trace", "list", "--json").json["total"] == 1
    others = [p for p in claude_sessions() if p != REAL_CLAUDE]
    first = {p.name for p in batch_files(a)}
    new_a = capture(cli, a, others[0])["capture"]["batches"]
    new_b = capture(cli, b, others[0])["capture"]["batches"]
    assert {p.name for p in batch_files(a)} == first | set(new_a)
    assert {p.name for p in batch_files(b)} == first | set(new_b)
    assert len(new_a) == len(new_b) == 1 and new_a != new_b
    wa = read_batch(a / "events/v1/batches" / new_a[0]).header
    wb = read_batch(b / "events/v1/batches" / new_b[0]).header
    assert wa.writer != wb.writer
    assert wa.seq == 2
    assert wb.seq == 1 and wb.prev is None  # a new chain for the new writer
    assert canonical_digest(a) == canonical_digest(b)  # same facts, same projections
    assert verify_full(cli, b)["exit"] == 0
