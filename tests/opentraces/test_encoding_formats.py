"""Encodings every file of the bucket relies on (DESIGN.md §3, §4).

Deterministic gzip, canonical JSON, event ids that change with any edit,
batch files that round-trip and reject any damaged byte.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import subprocess
import sys
import zlib

import orjson
import pytest

from opentraces.batches import BatchError, decode_batch, encode_batch, read_batch, write_batch
from opentraces.encoding import (
    GzipError,
    address,
    canonical_json,
    gunzip_bytes,
    gzip_bytes,
    gzip_chunks,
    hex_of,
    jsonl,
    parse_jsonl,
    pretty_json,
)
from opentraces.events import EventError, IDENTITY_FIELDS, check_event, event_id_of, make_event

PAYLOAD = b"".join(b'{"n": %d, "text": "hello \xc3\xa9t\xc3\xa9"}\n' % i for i in range(2000))


# ------------------------------------------------------------------ gzip


def test_gzip_same_input_same_bytes_and_fixed_header():
    a = gzip_bytes(PAYLOAD)
    b = gzip_bytes(bytes(PAYLOAD))
    assert a == b
    assert a[:3] == b"\x1f\x8b\x08"  # magic, deflate
    assert a[3] == 0  # no FNAME/FEXTRA: nothing machine-specific in the header
    assert a[4:8] == b"\x00\x00\x00\x00"  # mtime 0
    assert a[9] == 0xFF  # OS byte "unknown", the same on every platform
    assert gzip.decompress(a) == PAYLOAD  # a standard gzip stream
    # the chunked writer makes the very same bytes
    assert gzip_chunks([PAYLOAD[:1000], PAYLOAD[1000:5000], PAYLOAD[5000:]]) == a
    assert gunzip_bytes(a) == PAYLOAD


def test_gzip_is_the_same_in_another_process():
    code = ("import sys; from opentraces.encoding import gzip_bytes; "
            "sys.stdout.buffer.write(gzip_bytes(sys.stdin.buffer.read()))")
    out = subprocess.run([sys.executable, "-c", code], input=PAYLOAD, capture_output=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "TZ": "Asia/Tokyo", "PYTHONHASHSEED": "123"}).stdout
    assert out == gzip_bytes(PAYLOAD)


def test_gzip_differs_from_pythons_default_header_only_by_fixed_fields():
    ours = gzip_bytes(b"abc")
    theirs = gzip.compress(b"abc", mtime=0)
    assert gunzip_bytes(theirs) == b"abc"
    assert ours[9] == 0xFF and ours[4:8] == bytes(4)


@pytest.mark.parametrize("cut", [1, 5, 10, 11, 20, -8, -4, -1])
def test_gunzip_of_truncated_stream_raises(cut):
    data = gzip_bytes(PAYLOAD)
    with pytest.raises(GzipError):
        gunzip_bytes(data[:cut])


def test_gunzip_of_empty_input_raises():
    with pytest.raises(GzipError):
        gunzip_bytes(b"")


def test_gunzip_of_corrupt_stream_raises():
    data = bytearray(gzip_bytes(PAYLOAD))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(GzipError):
        gunzip_bytes(bytes(data))
    crc = bytearray(gzip_bytes(PAYLOAD))
    crc[-8] ^= 0x01  # CRC32 of the trailer
    with pytest.raises(GzipError):
        gunzip_bytes(bytes(crc))
    size = bytearray(gzip_bytes(PAYLOAD))
    size[-1] ^= 0x01  # ISIZE of the trailer
    with pytest.raises(GzipError):
        gunzip_bytes(bytes(size))


def test_gunzip_rejects_trailing_bytes_and_non_gzip():
    with pytest.raises(GzipError):
        gunzip_bytes(gzip_bytes(b"x") + b"junk")
    with pytest.raises(GzipError):
        gunzip_bytes(zlib.compress(b"plain zlib, not gzip"))
    with pytest.raises(GzipError):
        gunzip_bytes(b"not compressed at all")


# ----------------------------------------------------------- canonical JSON


def test_canonical_json_is_sorted_compact_utf8():
    obj = {"b": 1, "a": {"z": [1, 2, {"y": None, "x": True}], "c": "é"}, "A": 0.5}
    out = canonical_json(obj)
    assert out == '{"A":0.5,"a":{"c":"é","z":[1,2,{"x":true,"y":null}]},"b":1}'.encode()
    # key order of the input does not matter
    assert canonical_json(dict(reversed(list(obj.items())))) == out
    assert address(out) == "sha256:" + hashlib.sha256(out).hexdigest()
    assert hex_of(address(out)) == hashlib.sha256(out).hexdigest()


def test_pretty_json_is_sorted_two_space_with_newline():
    assert pretty_json({"b": [1], "a": 1}) == b'{\n  "a": 1,\n  "b": [\n    1\n  ]\n}\n'


def test_hex_of_rejects_non_addresses():
    for bad in ["sha1:" + "0" * 40, "sha256:" + "A" * 64, "sha256:" + "0" * 63, "0" * 64, None]:
        with pytest.raises(ValueError):
            hex_of(bad)


def test_jsonl_round_trip():
    objs = [{"b": 2, "a": 1}, {"k": "v\nw"}]
    data = jsonl(objs)
    assert data == b'{"a":1,"b":2}\n{"k":"v\\nw"}\n'
    assert parse_jsonl(data) == objs


# ---------------------------------------------------------------- event ids


def _event():
    return make_event("trail.patch", "demo-0123abcd", "6da50ec0-61c2-5de7-b874-e10afbc0d27c", 3,
                      "2025-01-02T03:04:05.678Z", {"path": "src/app.py", "diff": "@@ -1 +1 @@\n-a\n+b\n", "seq": 0})


def test_event_id_is_hash_of_identity_fields():
    ev = _event()
    ident = {k: ev[k] for k in IDENTITY_FIELDS}
    assert ev["event_id"] == "sha256:" + hashlib.sha256(canonical_json(ident)).hexdigest()
    assert check_event(copy.deepcopy(ev)) == ev


EDITS = [
    ("kind", "trail.snapshot"),
    ("project", "demo-0123abce"),
    ("trace_id", "6da50ec0-61c2-5de7-b874-e10afbc0d27d"),
    ("step", 4),
    ("step", None),
    ("time", "2025-01-02T03:04:05.679Z"),
    ("payload", {"path": "src/app.py", "diff": "@@ -1 +1 @@\n-a\n+c\n", "seq": 0}),
    ("payload", {"path": "src/app.py", "diff": "@@ -1 +1 @@\n-a\n+b\n", "seq": 1}),
    ("payload", {"path": "src/app.py", "diff": "@@ -1 +1 @@\n-a\n+b\n", "seq": 0, "extra": 1}),
]


@pytest.mark.parametrize("field,value", EDITS)
def test_any_field_edit_changes_the_id_and_is_rejected(field, value):
    ev = _event()
    edited = copy.deepcopy(ev)
    edited[field] = value
    assert event_id_of(edited) != ev["event_id"]
    with pytest.raises(EventError):
        check_event(edited)  # still carries the old event_id


def test_check_event_rejects_bad_shapes():
    ev = _event()
    for bad in (
        {**ev, "extra": 1},
        {**ev, "event_id": "sha256:" + "0" * 64},
        {k: v for k, v in ev.items() if k != "event_id"},
    ):
        with pytest.raises(EventError):
            check_event(bad)
    for kind, step, time, payload in (
        ("trail.unknown", 1, "2025-01-02T03:04:05Z", {}),
        ("trail.patch", True, "2025-01-02T03:04:05Z", {}),
        ("trail.patch", 1, "2025-01-02T03:04:05+09:00", {}),
        ("trail.patch", 1, "2025-01-02 03:04:05Z", {}),
        ("trail.patch", 1, "2025-01-02T03:04:05Z", []),
    ):
        bad = {"kind": kind, "project": "p-0", "trace_id": "t", "step": step, "time": time, "payload": payload}
        bad["event_id"] = event_id_of(bad)
        with pytest.raises(EventError):
            check_event(bad)
    with pytest.raises(EventError):
        check_event(["not", "an", "object"])


# ------------------------------------------------------------------ batches


def _events(n=5):
    return [make_event("trace.step", "demo-0123abcd", "6da50ec0-61c2-5de7-b874-e10afbc0d27c", i,
                       f"2025-01-02T03:04:{i:02d}Z", {"record": {"i": i, "text": "x" * i}, "rev": 1}) for i in range(n)]


def test_batch_encode_decode_round_trip(tmp_path):
    evs = _events()
    name, digest, data = encode_batch("w0123456789abcde", 3, "sha256:" + "ab" * 32, evs)
    assert name == f"000000000003-{digest[7:23]}.jsonl.gz"
    raw = gunzip_bytes(data)
    assert digest == address(raw)
    head = orjson.loads(raw.split(b"\n")[0])
    assert head == {"batch": "opentraces.batch.v1", "writer": "w0123456789abcde", "seq": 3,
                    "prev": "sha256:" + "ab" * 32, "events": 5}
    assert raw.split(b"\n")[1:] == [canonical_json(e) for e in evs] + [b""]
    # deterministic
    assert encode_batch("w0123456789abcde", 3, "sha256:" + "ab" * 32, evs) == (name, digest, data)
    b = decode_batch(name, data)
    assert b.events == evs and b.sha256 == digest
    assert (b.header.writer, b.header.seq, b.header.prev, b.header.events) == ("w0123456789abcde", 3, "sha256:" + "ab" * 32, 5)
    # the id names the writer and the content: another writer, another name
    assert encode_batch("w0123456789abcdf", 3, "sha256:" + "ab" * 32, evs)[0] != name
    # committed through the durable writer and read back from disk
    path = write_batch(tmp_path / "batches", name, data)
    assert path.read_bytes() == data
    assert read_batch(path).events == evs
    assert sorted(p.name for p in (tmp_path / "batches").iterdir()) == [name]  # no temp file left
    with pytest.raises(FileExistsError):
        write_batch(tmp_path / "batches", name, b"other bytes")  # never overwrites a batch
    assert path.read_bytes() == data


def test_batch_name_hash_is_checked():
    name, _digest, data = encode_batch("w0123456789abcde", 1, None, _events())
    other = name[:13] + ("0" if name[13] != "0" else "1") + name[14:]
    with pytest.raises(BatchError, match="batch id"):
        decode_batch(other, data)
    renumbered = "000000000002" + name[12:]
    with pytest.raises(BatchError, match="sequence"):
        decode_batch(renumbered, data)
    for bad in ("1-abc.jsonl.gz", name.replace(".jsonl.gz", ".json.gz"), "." + name):
        with pytest.raises(BatchError):
            decode_batch(bad, data)


@pytest.mark.parametrize("pos", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 40, -30, -8, -1])
def test_batch_with_flipped_byte_is_rejected(pos):
    name, _digest, data = encode_batch("w0123456789abcde", 1, None, _events(40))
    bad = bytearray(data)
    bad[pos] ^= 0x20
    with pytest.raises(BatchError):
        decode_batch(name, bytes(bad))


@pytest.mark.parametrize("keep", [0, 1, 10, 50, -9, -1])
def test_truncated_batch_is_rejected(keep):
    name, _digest, data = encode_batch("w0123456789abcde", 1, None, _events(40))
    with pytest.raises(BatchError):
        decode_batch(name, data[:keep])


def test_batch_with_edited_event_is_rejected_even_if_renamed():
    """Re-encoding an edited event under a matching name still fails the event id check."""
    evs = _events()
    header = canonical_json({"batch": "opentraces.batch.v1", "writer": "w0123456789abcde", "seq": 1, "prev": None, "events": 5})
    edited = copy.deepcopy(evs)
    edited[2]["payload"]["rev"] = 2
    raw = header + b"\n" + b"".join(canonical_json(e) + b"\n" for e in edited)
    name = f"000000000001-{address(raw)[7:23]}.jsonl.gz"
    with pytest.raises(BatchError, match="event_id"):
        decode_batch(name, gzip_bytes(raw))
    # header event count that lies
    raw2 = canonical_json({"batch": "opentraces.batch.v1", "writer": "w0123456789abcde", "seq": 1, "prev": None,
                           "events": 4}) + b"\n" + b"".join(canonical_json(e) + b"\n" for e in evs)
    with pytest.raises(BatchError, match="events"):
        decode_batch(f"000000000001-{address(raw2)[7:23]}.jsonl.gz", gzip_bytes(raw2))
