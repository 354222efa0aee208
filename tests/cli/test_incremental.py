"""Capture is incremental and idempotent.

Re-capturing an unchanged session writes nothing (with or without capture
cursors); a grown session appends only its new events, and its source range
starts where the previous one ended; the result equals a one-shot capture.
"""

from __future__ import annotations

import gzip
import os
import shutil

import orjson
import pytest

from opentraces.batches import read_batch
from opentraces.ids import trace_id_for

from bucketrig import REAL_CLAUDE, batch_files, capture, claude_sessions, tree_digest, verify_full

REAL_TRACE = trace_id_for("claude-code", "164b9ad1-4c1b-4602-9102-5276951a1594")


def canonical_and_derived(root):
    return {sub: tree_digest(root / sub) for sub in ("traces", "blobs", "events")} | {
        "manifest": tree_digest(root)["manifest.json"]}


def test_recapture_unchanged_writes_nothing(tmp_path, cli):
    b = tmp_path / "bucket"
    sessions = claude_sessions()
    first = capture(cli, b, *sessions)["capture"]
    assert len(first["batches"]) == 1
    before = canonical_and_derived(b)

    again = capture(cli, b, *sessions)["capture"]
    assert again["batches"] == [] and again["events"] == 0 and again["blobs_written"] == 0
    assert sorted(again["unchanged"]) == sorted(map(str, sessions))
    assert canonical_and_derived(b) == before

    # forget the cursors: every file is parsed again, and still nothing is new
    os.unlink(b / ".state/capture-cursors.json")
    third = capture(cli, b, *sessions)["capture"]
    assert third["batches"] == [] and third["events"] == 0 and third["blobs_written"] == 0
    assert sorted(third["unchanged"]) == sorted(map(str, sessions))
    assert canonical_and_derived(b) == before

    # touch the files (new mtimes, same bytes): parsed again, nothing written
    for s in sessions:
        copy = tmp_path / "touched" / s.name
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(s, copy)
    fourth = capture(cli, b, *sorted((tmp_path / "touched").iterdir()))["capture"]
    assert fourth["batches"] == [] and fourth["events"] == 0
    assert canonical_and_derived(b) == before
    assert verify_full(cli, b)["exit"] == 0


def _events_of(bucket, name):
    return read_batch(bucket / "events/v1/batches" / name).events


def test_grown_session_appends_only_new_events(tmp_path, cli):
    lines = REAL_CLAUDE.read_bytes().splitlines(keepends=True)
    assert len(lines) == 21
    live = tmp_path / "projects" / REAL_CLAUDE.name
    live.parent.mkdir()
    live.write_bytes(b"".join(lines[:10]))
    b = tmp_path / "bucket"

    one = capture(cli, b, live)["capture"]
    assert len(one["batches"]) == 1
    ev1 = _events_of(b, one["batches"][0])
    src1 = [e for e in ev1 if e["kind"] == "source.captured"]
    assert len(src1) == 1
    assert (src1[0]["payload"]["start"], src1[0]["payload"]["end"]) == (0, len(b"".join(lines[:10])))

    live.write_bytes(b"".join(lines))  # the agent wrote 11 more rows
    two = capture(cli, b, live)["capture"]
    assert len(two["batches"]) == 1 and two["batches"] != one["batches"]
    ev2 = _events_of(b, two["batches"][0])
    ids1 = {e["event_id"] for e in ev1}
    assert not ids1 & {e["event_id"] for e in ev2}, "the second batch repeats events"
    src2 = [e for e in ev2 if e["kind"] == "source.captured"]
    assert len(src2) == 1
    p2 = src2[0]["payload"]
    assert p2["start"] == src1[0]["payload"]["end"]
    assert p2["end"] == REAL_CLAUDE.stat().st_size
    # the new raw blob holds exactly the appended bytes
    tail = b"".join(lines[10:])
    assert p2["size"] == len(tail)
    assert [c["size"] for c in p2["chunks"]] == [len(tail)]
    project = ev2[0]["project"]
    hexd = p2["chunks"][0]["blob"][7:]
    assert (b / "blobs/v1" / project / "raw" / hexd[:2] / f"{hexd}.blob").read_bytes() == tail
    # the batch chain links the two
    h1 = read_batch(b / "events/v1/batches" / one["batches"][0])
    h2 = read_batch(b / "events/v1/batches" / two["batches"][0])
    assert (h2.header.writer, h2.header.seq, h2.header.prev) == (h1.header.writer, 2, h1.sha256)

    # the final trace folder equals a one-shot capture of the whole file
    fresh = tmp_path / "fresh"
    capture(cli, fresh, REAL_CLAUDE)
    tdir = f"v1/{project}/{REAL_TRACE}"
    inc, one_shot = b / "traces" / tdir, fresh / "traces" / tdir
    assert (inc / "trace.json").read_bytes() == (one_shot / "trace.json").read_bytes()
    assert tree_digest(inc / "trace_history") == tree_digest(one_shot / "trace_history")
    assert verify_full(cli, b)["exit"] == 0

    # capturing the grown file again adds nothing
    three = capture(cli, b, live)["capture"]
    assert three["batches"] == [] and three["events"] == 0


@pytest.mark.parametrize("cut", list(range(1, 21)))
def test_any_prefix_then_whole_equals_one_shot(tmp_path, cli, cut):
    lines = REAL_CLAUDE.read_bytes().splitlines(keepends=True)
    live = tmp_path / "s" / REAL_CLAUDE.name
    live.parent.mkdir()
    live.write_bytes(b"".join(lines[:cut]))
    b = tmp_path / "bucket"
    capture(cli, b, live)
    live.write_bytes(b"".join(lines))
    capture(cli, b, live)
    fresh = tmp_path / "fresh"
    capture(cli, fresh, REAL_CLAUDE)
    a = next((b / "traces").glob(f"v1/*/{REAL_TRACE}/trace.json")).read_bytes()
    z = next((fresh / "traces").glob(f"v1/*/{REAL_TRACE}/trace.json")).read_bytes()
    assert a == z
    assert verify_full(cli, b)["exit"] == 0


def test_rewritten_session_is_captured_whole_again(tmp_path, cli):
    """A file that changed in place (not appended) is a new full source range."""
    lines = REAL_CLAUDE.read_bytes().splitlines(keepends=True)
    live = tmp_path / "s" / REAL_CLAUDE.name
    live.parent.mkdir()
    live.write_bytes(b"".join(lines))
    b = tmp_path / "bucket"
    capture(cli, b, live)
    live.write_bytes(b"".join(lines[:-1]) + b"\n")  # last row replaced by a blank line
    doc = capture(cli, b, live)["capture"]
    assert len(doc["batches"]) == 1
    src = [e for e in _events_of(b, doc["batches"][0]) if e["kind"] == "source.captured"]
    assert len(src) == 1 and src[0]["payload"]["start"] == 0
    assert verify_full(cli, b)["exit"] == 0
