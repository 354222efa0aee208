"""``bucket import --from`` (issue #10): a home written by the real opentraces 0.4.13.

The input is ``fixtures/reference/opentraces-0.4.13-home.tar.gz``, built by
``scripts/make_reference_home.py`` with the PyPI package in its own virtual
environment (22 traces: Claude Code, Codex CLI, Pi). Every trace must
arrive, ``verify --full`` must be clean, nothing under the old home may
change (a recursive hash listing before and after) and a second run adds
nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
from pathlib import Path

import orjson

from opentraces.bucket import Bucket

from bucketrig import FIXTURES, batch_files, capture, one_line_error, verify_full

HOME_TAR = FIXTURES / "reference" / "opentraces-0.4.13-home.tar.gz"


def listing(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its type, mode and content hash."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        rel = str(p.relative_to(root))
        if stat.S_ISREG(st.st_mode):
            out[rel] = f"f {stat.S_IMODE(st.st_mode):o} {hashlib.sha256(p.read_bytes()).hexdigest()}"
        else:
            out[rel] = f"{'d' if stat.S_ISDIR(st.st_mode) else 'l'} {stat.S_IMODE(st.st_mode):o}"
    return out


def old_home(tmp_path: Path) -> Path:
    with tarfile.open(HOME_TAR) as tar:
        tar.extractall(tmp_path / "old", filter="data")
    return tmp_path / "old" / ".opentraces"


def manifest(home: Path) -> list[dict]:
    return json.loads((home / "bucket" / "manifest.json").read_text())["traces"]


def do_import(cli, bucket: Path, home: Path, expect: int = 0):
    res = cli("--bucket", bucket, "bucket", "import", "--from", home, "--json")
    assert res.exit_code == expect, (res.stdout, res.stderr)
    return res


def test_every_trace_arrives_verified_and_the_old_home_is_untouched(tmp_path, cli):
    home = old_home(tmp_path)
    traces = manifest(home)
    agents = {t["agent_name"] for t in traces}
    assert len(traces) >= 20 and agents == {"claude-code", "codex-cli", "pi"}
    # one trace per agent without its stored raw session: its record is kept instead
    record_only = {next(t["trace_id"] for t in traces if t["agent_name"] == a) for a in sorted(agents)}
    for t in traces:
        if t["trace_id"] in record_only:
            os.unlink(home / "bucket" / "objects" / "raw" / "v1" / "sources" / t["project_slug"] / f"{t['trace_id']}.json")
    before = listing(home)

    bucket = tmp_path / "bucket"
    doc = do_import(cli, bucket, home).json["import"]
    rows = {r["reference_trace_id"]: r for r in doc["traces"]}
    assert set(rows) == {t["trace_id"] for t in traces}
    assert {r["reference_trace_id"] for r in doc["traces"] if r["how"] == "record"} == record_only
    assert all(r["how"] == "recaptured" for ref, r in rows.items() if ref not in record_only)
    b = Bucket.open(bucket)
    for ref, r in rows.items():
        row = b.find_trace(r["trace_id"])
        assert row is not None, ref
        rec = b.trace_record(row["project"], row["trace_id"])
        ref_rec = json.loads((home / "bucket" / next(t["trace_path"] for t in traces if t["trace_id"] == ref)).read_text())
        assert rec["agent"]["name"] == ref_rec["agent"]["name"]
        if ref in record_only:
            assert rec["metadata"]["imported"]["trace_id"] == ref
            assert [s["step_index"] for s in rec["steps"]] == [s["step_index"] for s in ref_rec["steps"]]
            assert [s["content"] for s in rec["steps"]] == [s["content"] for s in ref_rec["steps"]]
        else:  # our parser read their stored raw session: every patch the session made is there
            assert rec["session_id"] and len(rec["patches"]) >= len(ref_rec.get("patches") or [])
    assert verify_full(cli, bucket)["exit"] == 0
    assert listing(home) == before  # nothing under the old home changed

    batches = [p.name for p in batch_files(bucket)]
    again = do_import(cli, bucket, home).json["import"]
    assert again["new_events"] == 0 and again["batches"] == []
    assert [p.name for p in batch_files(bucket)] == batches
    assert listing(home) == before
    assert not (bucket / ".state" / "import").exists()


def test_a_recaptured_trace_is_the_trace_a_capture_of_the_file_gives(tmp_path, cli):
    home = old_home(tmp_path)
    [t] = [t for t in manifest(home) if t["agent_name"] == "codex-cli"
           and "019cf0a1-5b2e" in json.loads((home / "bucket" / "objects" / "raw" / "v1" / "sources" / t["project_slug"]
                                              / f"{t['trace_id']}.json").read_text())["source_basename"]]
    doc = do_import(cli, tmp_path / "imported", home).json["import"]
    [row] = [r for r in doc["traces"] if r["reference_trace_id"] == t["trace_id"]]
    direct = capture(cli, tmp_path / "direct",
                     FIXTURES / "codex" / "rollout-2026-03-14T10-01-59-019cf0a1-5b2e-7c41-9d3a-2f6b8e4c1a01.jsonl",
                     agent="codex")["capture"]["captured"][0]
    assert row["trace_id"] == direct["trace_id"]
    a, b = Bucket.open(tmp_path / "imported"), Bucket.open(tmp_path / "direct")
    ra, rb = a.find_trace(row["trace_id"]), b.find_trace(row["trace_id"])
    assert a.trace_record(ra["project"], ra["trace_id"])["content_hash"] == b.trace_record(rb["project"], rb["trace_id"])["content_hash"]


def test_bad_homes_are_refused_or_fall_back_and_nothing_is_read_outside(tmp_path, cli):
    bucket = tmp_path / "bucket"
    empty = tmp_path / "empty"
    empty.mkdir()
    res = do_import(cli, bucket, empty, expect=2)
    assert "no opentraces 0.4.x bucket" in one_line_error(res.stderr)

    home = old_home(tmp_path)
    man = home / "bucket" / "manifest.json"
    doc = json.loads(man.read_text())
    man.write_text(json.dumps({**doc, "schema_version": "something.else.v9"}))
    res = do_import(cli, bucket, home, expect=2)
    assert "not opentraces.bucket.manifest.v2" in one_line_error(res.stderr)
    assert not (bucket / "events").exists()
    man.write_text(json.dumps(doc))

    traces = doc["traces"]
    secret = tmp_path / "outside.jsonl"
    secret.write_bytes((FIXTURES / "pi").glob("*.jsonl").__next__().read_bytes())
    src_dir = home / "bucket" / "objects" / "raw" / "v1" / "sources"
    escaped, tampered, unsafe = traces[0], traces[1], traces[2]
    meta = src_dir / escaped["project_slug"] / f"{escaped['trace_id']}.json"
    m = json.loads(meta.read_text())
    meta.write_text(json.dumps({**m, "blob_path": os.path.relpath(secret, home / "bucket")}))
    meta2 = src_dir / tampered["project_slug"] / f"{tampered['trace_id']}.json"
    m2 = json.loads(meta2.read_text())
    blob = home / "bucket" / m2["blob_path"]
    blob.write_bytes(blob.read_bytes() + b'{"type":"planted"}\n')
    doc["traces"][2] = {**unsafe, "trace_id": "../../x"}
    man.write_text(json.dumps(doc))

    out = do_import(cli, bucket, home).json["import"]
    rows = {r["reference_trace_id"]: r for r in out["traces"]}
    assert rows[escaped["trace_id"]]["how"] == "record" and "missing" in rows[escaped["trace_id"]]["reason"]
    assert rows[tampered["trace_id"]]["how"] == "record" and "digest" in rows[tampered["trace_id"]]["reason"]
    assert rows["../../x"]["how"] == "skipped" and "safe path component" in rows["../../x"]["reason"]
    assert verify_full(cli, bucket)["exit"] == 0
    stored = b"".join(p.read_bytes() for p in (bucket / "blobs").rglob("*") if p.is_file())
    assert b'"planted"' not in stored
    assert orjson.loads(man.read_bytes())["traces"][2]["trace_id"] == "../../x"
