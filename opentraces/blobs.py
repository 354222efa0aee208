"""Content-addressed blobs: context JSON (gzip) and raw bytes.

``blobs/v1/<project>/context/<hh>/<hex>.json.gz``: gzip of canonical JSON,
named by the SHA-256 of the uncompressed JSON.
``blobs/v1/<project>/raw/<hh>/<hex>.blob``: exact bytes, named by their
SHA-256 (so ``sha256sum`` confirms a raw blob).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .encoding import GZIP_HEADER, GzipError, address, canonical_json, gunzip_bytes, gzip_bytes, hex_of, loads
from .errors import CorruptionError, OfflineError
from .ids import check_component

CONTEXT = "context"
RAW = "raw"
_SUFFIX = {CONTEXT: ".json.gz", RAW: ".blob"}


def blob_relpath(project: str, kind: str, addr: str) -> str:
    hexpart = hex_of(addr)
    check_component(project, "project")
    return f"blobs/v1/{project}/{kind}/{hexpart[:2]}/{hexpart}{_SUFFIX[kind]}"


def addr_from_name(name: str) -> tuple[str, str] | None:
    """(kind, address) for a blob file name, or None if it is not one."""
    for kind, suffix in _SUFFIX.items():
        if name.endswith(suffix):
            hexpart = name[: -len(suffix)]
            if len(hexpart) == 64 and all(c in "0123456789abcdef" for c in hexpart):
                return kind, "sha256:" + hexpart
    return None


def blob_problem(name: str, data: bytes) -> tuple[str, str] | None:
    """``(kind, detail)`` when ``data`` is not the blob its file name says it is, else None.

    The one content check of a blob, wherever its bytes come from (the bucket,
    the mirror, a remote): a context blob must carry our canonical gzip header
    (its bytes are outside the CRC), inflate (bounded) and hash to its name; a
    raw blob must hash to its name.
    """
    hit = addr_from_name(name)
    if hit is None:
        return "blob_name", f"{name!r} is not a blob file name"
    kind, addr = hit
    if kind == CONTEXT:
        if data[:10] != GZIP_HEADER:
            return "blob_gzip", "corrupt gzip: not the canonical gzip header"
        try:
            data = gunzip_bytes(data)
        except (GzipError, ValueError) as exc:
            return "blob_gzip", str(exc)
    got = address(data)
    if got != addr:
        return "blob_hash", f"content hashes to {got}"
    return None


class PendingBlobs:
    """Blobs prepared by a capture, written before the batch that cites them."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}  # relpath -> stored bytes
        self.sizes: dict[str, int] = {}  # relpath -> uncompressed size

    def add_raw(self, project: str, data: bytes) -> str:
        addr = address(data)
        rel = blob_relpath(project, RAW, addr)
        if rel not in self.items:
            self.items[rel] = data
            self.sizes[rel] = len(data)
        return addr

    def add_context(self, project: str, obj: Any) -> str:
        raw = canonical_json(obj)
        addr = address(raw)
        rel = blob_relpath(project, CONTEXT, addr)
        if rel not in self.items:
            self.items[rel] = gzip_bytes(raw)
            self.sizes[rel] = len(raw)
        return addr


def blob_path(root: Path, project: str, kind: str, addr: str) -> Path:
    """Where a blob is: under ``project``, else under another claimed name of the same
    repository (a blob stays where the capture that wrote it put it; docs/FORMATS.md)."""
    path = root / blob_relpath(project, kind, addr)
    if path.exists():
        return path
    from .projects import tag_of

    tag = tag_of(project)
    base = root / "blobs/v1"
    try:
        siblings = sorted(n for n in os.listdir(base) if n != project and tag_of(n) == tag)
    except FileNotFoundError:
        return path
    for name in siblings:
        alt = root / blob_relpath(name, kind, addr)
        if alt.exists():
            return alt
    return path


def read_raw(root: Path, project: str, addr: str) -> bytes:
    path = blob_path(root, project, RAW, addr)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise OfflineError(f"raw blob {addr} is not in the bucket", "run 'opentraces bucket prefetch <trace-id>'") from None
    if address(data) != addr:
        raise CorruptionError(f"raw blob {path} does not match its hash", "run 'opentraces bucket verify --full'")
    return data


def read_context(root: Path, project: str, addr: str) -> Any:
    path = blob_path(root, project, CONTEXT, addr)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise OfflineError(f"context blob {addr} is not in the bucket", "run 'opentraces bucket prefetch <trace-id>'") from None
    try:
        raw = gunzip_bytes(data)
    except ValueError:
        raise CorruptionError(f"context blob {path} is not valid gzip", "run 'opentraces bucket verify --full'") from None
    if address(raw) != addr:
        raise CorruptionError(f"context blob {path} does not match its hash", "run 'opentraces bucket verify --full'")
    return loads(raw)


def referenced_blobs(ev: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, address) of every blob an event cites."""
    p = ev.get("payload") or {}
    kind = ev.get("kind")
    out: list[tuple[str, str]] = []
    if kind == "source.captured":
        out += [(RAW, c["blob"]) for c in p.get("chunks", [])]
    elif kind == "trail.patch":
        out += [(RAW, p[k]) for k in ("before", "after") if p.get(k)]
    elif kind == "context.node":
        if p.get("pack"):
            out.append((CONTEXT, p["pack"]))
        out += [(CONTEXT, a) for a in (p.get("layers") or {}).values()]
    elif kind == "context.layer" and p.get("blob"):
        out.append((CONTEXT, p["blob"]))
    return out


def stored_source(root: Path, sources: list[dict[str, Any]]) -> tuple[bytes, dict[str, Any]]:
    """A session file's bytes as last captured, joined from its ``source.captured`` events' chunks
    (each capture stores the part after the previous one's end); and the last event's payload.
    Raises OfflineError when a chunk is not here (a pulled bucket: blobs are lazy) and ValueError
    when the parts do not join."""
    by_end: dict[int, dict[str, Any]] = {}
    for ev in sources:
        by_end.setdefault(ev["payload"]["end"], ev)
    last = by_end[max(by_end)]
    parts = [last]
    while parts[-1]["payload"]["start"] > 0:
        prev = by_end.get(parts[-1]["payload"]["start"])
        if prev is None:
            raise ValueError("the stored parts of the session do not join")
        parts.append(prev)
    data = b"".join(read_raw(root, ev["project"], c["blob"]) for ev in reversed(parts) for c in ev["payload"]["chunks"])
    return data, last["payload"]
