"""Re-filter records: ``events/v1/refilters/<time>-<id>.json`` (written by ``security.refilter``).

Storage only. A record says which batch files a re-filter replaced (old name
-> new name), which events it dropped (ids only) and which mirror commits it
superseded. Repair, verify, push and pull read them to tell a sanctioned
rewrite from a lost batch or a tampered ref.
"""

from __future__ import annotations

from typing import Any

import orjson

from . import layout
from .batches import NAME_RE
from .encoding import pretty_json
from .fsio import atomic_write
from .ids import check_component

RECORDS = f"{layout.EVENTS}/refilters"
RECORD_FORMAT = "opentraces.refilter.v1"


def parse_record(data: bytes) -> dict[str, Any] | None:
    """A record's document, or None for anything that is not one (from disk or a remote's tree)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, dict) and doc.get("format") == RECORD_FORMAT and isinstance(doc.get("batches"), dict):
        return doc
    return None


def records(root) -> list[dict[str, Any]]:
    folder = root / RECORDS
    out = []
    if folder.is_dir():
        for p in sorted(folder.glob("*.json")):
            try:
                doc = parse_record(p.read_bytes())
            except OSError:
                continue
            if doc is not None:
                out.append(doc)
    return out


def write_record(root, name: str, doc: dict[str, Any]) -> None:
    check_component(name, "re-filter record")
    atomic_write(root / RECORDS / name, pretty_json(doc))


def drop_replaced_batches(root, docs: list[dict[str, Any]]) -> None:
    """Delete the batch files ``docs`` replaced, each once its replacement is here."""
    folder = root / layout.BATCHES
    for doc in docs:
        for old, new in doc["batches"].items():
            if old != new and NAME_RE.match(old) and (folder / new).exists():
                (folder / old).unlink(missing_ok=True)


def replaced_batches(root, docs: list[dict[str, Any]] | None = None) -> set[str]:
    """Batch file names a re-filter replaced (they are gone on purpose)."""
    return {old for r in (records(root) if docs is None else docs) for old, new in r["batches"].items() if old != new}


def dropped_events(root, docs: list[dict[str, Any]] | None = None) -> set[str]:
    return {e for r in (records(root) if docs is None else docs) for e in r.get("dropped_events") or []}


def superseded(root) -> set[str]:
    """Hex prefixes (16) of every mirror commit a re-filter replaced."""
    return {c for r in records(root) for c in r.get("superseded_commits") or []}


def is_superseded(oid, prefixes: set[str]) -> bool:
    return oid is not None and str(oid)[:16] in prefixes
