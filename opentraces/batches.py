"""Batch files: the transport of events, one writer's hash chain.

``events/v1/batches/<seq>-<batch-id>.jsonl.gz`` holds, uncompressed, a header
line ``{"batch": "opentraces.batch.v1", "writer", "seq", "prev", "events"}``
followed by one canonical event per line. ``<seq>`` is the writer's batch
number (12 digits); ``<batch-id>`` is the first 16 hex of the SHA-256 of the
uncompressed bytes (so it derives from the writer id and the content);
``prev`` is the full ``sha256:`` of the writer's previous batch; ``sig`` (a
batch signed by its writer, ``opentraces.signing``) signs the other header
fields and the SHA-256 of the event lines. A batch is committed only by the
atomic rename of its fsynced file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from gitref import faults

from .encoding import GZIP_HEADER, address, canonical_json, gunzip_bytes, gzip_chunks, GzipError
from .events import EventError, check_event
from .fsio import fsync_dir, tmp_path_for
from . import signing

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

BATCH_FORMAT = "opentraces.batch.v1"
NAME_RE = re.compile(r"^(\d{12})-([0-9a-f]{16})\.jsonl\.gz$")
# The fixed header of our deterministic gzip (no flags, mtime 0, XFL 0, OS 0xff).
# Its bytes are outside the CRC, so it is compared here: a flipped header byte
# is a different file (and a different Git object) even though it inflates.


class BatchError(ValueError):
    """A batch file that cannot be trusted (corrupt, renamed, mis-chained)."""


@dataclass(frozen=True)
class BatchHeader:
    writer: str
    seq: int
    prev: str | None
    events: int
    key: str | None = None  # the Ed25519 key id that signed the batch (None: an unsigned batch)


@dataclass
class Batch:
    name: str
    header: BatchHeader
    sha256: str  # sha256: of the uncompressed bytes
    events: list[dict[str, Any]]


def batch_name(seq: int, digest: str) -> str:
    return f"{seq:012d}-{digest[7:23]}.jsonl.gz"


def encode_batch(writer: str, seq: int, prev: str | None, events: list[dict],
                 signer: "Ed25519PrivateKey | None" = None) -> tuple[str, str, bytes]:
    """Return (file name, sha256 address, gzip bytes) of a new batch, signed by ``signer`` when given."""
    fields = {"batch": BATCH_FORMAT, "writer": writer, "seq": seq, "prev": prev, "events": len(events)}
    body = []
    for ev in events:
        body.append(canonical_json(ev))
        body.append(b"\n")
    body_bytes = b"".join(body)
    if signer is not None:
        fields["sig"] = signing.sign(signer, fields, address(body_bytes))
    raw = canonical_json(fields) + b"\n" + body_bytes
    digest = address(raw)
    return batch_name(seq, digest), digest, gzip_chunks([raw])


def write_batch(folder: Path, name: str, data: bytes) -> Path:
    """Durably commit a batch: fsynced temp file renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / name
    tmp = tmp_path_for(final)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        faults.point(f"commit {name}")
        os.link(tmp, final)  # atomic, and never overwrites an existing batch
    finally:
        os.unlink(tmp)
    fsync_dir(folder)
    return final


def decode_batch(name: str, data: bytes, *, check_events: bool = True) -> Batch:
    """Parse and verify one batch file's bytes; raise BatchError on any fault."""
    m = NAME_RE.match(name)
    if not m:
        raise BatchError(f"not a batch file name: {name}")
    if data[:10] != GZIP_HEADER:
        raise BatchError("corrupt gzip: not the canonical gzip header")
    try:
        raw = gunzip_bytes(data)
    except GzipError as exc:
        raise BatchError(str(exc)) from None
    digest = address(raw)
    if digest[7:23] != m.group(2):
        raise BatchError("content does not match the batch id in its name")
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    try:
        head = orjson.loads(lines[0])
    except (orjson.JSONDecodeError, IndexError):
        raise BatchError("unreadable batch header") from None
    if not isinstance(head, dict) or head.get("batch") != BATCH_FORMAT:
        raise BatchError("not an opentraces batch header")
    header = BatchHeader(head.get("writer"), head.get("seq"), head.get("prev"), head.get("events"),
                         (head.get("sig") or {}).get("key") if isinstance(head.get("sig"), dict) else None)
    if header.seq != int(m.group(1)):
        raise BatchError("sequence in header does not match the file name")
    if header.events != len(lines) - 1:
        raise BatchError(f"header says {header.events} events, file has {len(lines) - 1}")
    events = []
    for i, line in enumerate(lines[1:], 1):
        try:
            ev = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise BatchError(f"line {i + 1} is not JSON") from None
        if check_events:
            try:
                check_event(ev)
            except EventError as exc:
                raise BatchError(f"line {i + 1}: {exc}") from None
        events.append(ev)
    if "sig" in head:  # the signature pins the header's fields and the event lines (checked last: an
        # edited event is named by its recomputed id first)
        fields = {k: v for k, v in head.items() if k != "sig"}
        try:
            signing.verify(head["sig"], fields, address(raw[len(lines[0]) + 1:]))
        except signing.SignatureError as exc:
            raise BatchError(str(exc)) from None
    return Batch(name, header, digest, events)


def read_batch(path: Path, *, check_events: bool = True) -> Batch:
    return decode_batch(path.name, path.read_bytes(), check_events=check_events)


def read_header(path: Path) -> BatchHeader:
    """A batch's header line only (a gzip stream read up to the first newline)."""
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as f:
            doc = orjson.loads(f.readline(1 << 20))
        return BatchHeader(doc["writer"], int(doc["seq"]), doc.get("prev"), int(doc["events"]))
    except (OSError, EOFError, zlib.error, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BatchError(f"unreadable header: {exc}") from None


def list_batch_names(folder: Path) -> list[str]:
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if NAME_RE.match(n))
