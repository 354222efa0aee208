"""A growing session under a policy: each capture redacts only the appended lines, and the bucket
ends exactly as if the whole file had been captured once (issue #9: append detection stores nothing
unredacted; the hook stays fast on long sessions)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson  # noqa: E402

from bucketrig import capture, verify_full  # noqa: E402
from corpus import plant, planted  # noqa: E402
from test_planted_corpus import USER, all_bytes, leaks  # noqa: E402

import os  # noqa: E402

from opentraces.blobs import stored_source  # noqa: E402
from opentraces.bucket import Bucket  # noqa: E402
from opentraces.security.tools import capture_filter  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "fixtures" / "claude" / "claude-multiturn-edit.jsonl"


def _events(bucket: Path) -> set[str]:
    b = Bucket(bucket)
    return {e["event_id"] for r in b.rows() for e in b.trace_events(r["project"], r["trace_id"])}


def test_appended_lines_are_redacted_alone_and_the_result_is_the_same(cli, tmp_path):
    values = planted(seed=7, user=USER)
    assert cli("bucket", "security", "--policy", "recommended").exit_code == 0
    full = plant(SRC.read_bytes(), [line for _, line, _ in values], USER)
    lines = full.splitlines(keepends=True)
    grow = tmp_path / "grow" / SRC.name
    grow.parent.mkdir()
    inc, nocache = tmp_path / "inc", tmp_path / "nocache"
    cursors = ".state/capture-cursors.json"
    for cut in [len(lines) // 3, 2 * len(lines) // 3, len(lines)]:
        grow.write_bytes(b"".join(lines[:cut]))
        capture(cli, inc, grow)
        cursor = next(iter(orjson.loads((inc / cursors).read_bytes()).values()))
        assert cursor["redaction"]["n"] == len(b"".join(lines[:cut])) and "sha" in cursor["redaction"]
        if (nocache / cursors).exists():  # the same captures, each redacting the whole file
            doc = orjson.loads((nocache / cursors).read_bytes())
            for c in doc.values():
                c.pop("redaction", None)
            (nocache / cursors).write_bytes(orjson.dumps(doc))
        capture(cli, nocache, grow)
    assert _events(inc) == _events(nocache)  # same events, same ids: redacting only the tail changed nothing
    b = Bucket(inc)
    row = b.rows()[0]
    stored, _ = stored_source(inc, [e for e in b.trace_events(row["project"], row["trace_id"])
                                    if e["kind"] == "source.captured"])
    assert stored == capture_filter(Path(os.environ["OPENTRACES_HOME"]), {}, None).run(full).data
    assert set(leaks(all_bytes(inc), values)) <= {"business_term"}  # no terms configured here
    assert verify_full(cli, inc)["exit"] == 0


def test_a_user_named_only_later_makes_the_whole_file_redacted_again(cli, tmp_path):
    """The cursor keeps pseudonyms, not names; a home folder that names a new user forces a full
    redaction, so the latest stored session has the name nowhere (an earlier capture that saw the
    name only outside a path keeps it until 'bucket refilter': docs/SECURITY.md)."""
    from opentraces.blobs import stored_source

    assert cli("bucket", "security", "--policy", "recommended").exit_code == 0
    row = {"type": "user", "message": {"role": "user", "content": "hi"}, "uuid": "u1", "parentUuid": None,
           "sessionId": "5e55a0b1-0000-4000-8000-000000000001", "timestamp": "2026-03-02T09:15:00.000Z",
           "cwd": "/home/qilin/x"}
    first = orjson.dumps({**row, "message": {"role": "user", "content": "ping zorbax@build-host"}}) + b"\n"
    later = orjson.dumps({**row, "uuid": "u2", "parentUuid": "u1", "cwd": "/home/zorbax/x",
                          "timestamp": "2026-03-02T09:16:00.000Z"}) + b"\n"
    f = tmp_path / "s" / "s.jsonl"
    f.parent.mkdir()
    f.write_bytes(first)
    bucket = tmp_path / "b"
    capture(cli, bucket, f)
    f.write_bytes(first + later)
    capture(cli, bucket, f)
    state = (bucket / ".state" / "capture-cursors.json").read_bytes()
    assert b"qilin" not in state and b"zorbax" not in state
    b = Bucket(bucket)
    r = b.rows()[0]
    stored, _ = stored_source(bucket, [e for e in b.trace_events(r["project"], r["trace_id"])
                                       if e["kind"] == "source.captured"])
    assert b"zorbax" not in stored and b"qilin" not in stored and stored.count(b"\n") == 2
