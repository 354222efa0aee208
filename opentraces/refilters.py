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

RECORDS = f"{layout.EVENTS}/refilters"
RECORD_FORMAT = "opentraces.refilter.v1"


def records(root) -> list[dict[str, Any]]:
    folder = root / RECORDS
    out = []
    if folder.is_dir():
        for p in sorted(folder.glob("*.json")):
            try:
                doc = orjson.loads(p.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if isinstance(doc, dict) and doc.get("format") == RECORD_FORMAT:
                out.append(doc)
    return out


def replaced_batches(root) -> set[str]:
    """Batch file names a re-filter replaced (they are gone on purpose)."""
    return {old for r in records(root) for old, new in (r.get("batches") or {}).items() if old != new}


def dropped_events(root) -> set[str]:
    return {e for r in records(root) for e in r.get("dropped_events") or []}


def superseded(root) -> set[str]:
    """Hex prefixes (16) of every mirror commit a re-filter replaced."""
    return {c for r in records(root) for c in r.get("superseded_commits") or []}


def is_superseded(oid, prefixes: set[str]) -> bool:
    return oid is not None and str(oid)[:16] in prefixes
