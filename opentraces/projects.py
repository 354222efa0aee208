"""Which project a trace belongs to, the same on every machine.

A project is its repository: its identity is the 8-hex *tag* at the end of
every project slug (``sha256("git:<root commit>")``, or of the absolute path
for a folder that is not a repository). The readable part of a slug, as
captured, comes from the checkout (the ``origin`` remote's repository name,
else the folder's name), so two machines can *claim* different slugs for one
repository. The **canonical slug** of a tag, used for trace folders, manifest
rows and refs, is chosen by one rule over the events (docs/FORMATS.md):

    the claim of the earliest ``trace.started`` event carrying that tag,
    ordered by (time, claimed slug).

So every bucket holding the same events agrees on the names, whatever order
they arrived in, and a slug never depends on which machine wrote it.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

_TAG = re.compile(r"-([0-9a-f]{8})$")


def tag_of(slug: str) -> str:
    """The repository tag of a slug (the slug itself if it has none)."""
    m = _TAG.search(slug)
    return m.group(1) if m else slug


class Names:
    """``tag -> (first time, claimed slug)``: the rule's state, updated event by event."""

    def __init__(self, table: dict[str, Any] | None = None):
        self.table: dict[str, tuple[str, str]] = {}
        for tag, v in (table or {}).items():
            if isinstance(v, dict) and isinstance(v.get("first"), str) and isinstance(v.get("name"), str):
                self.table[tag] = (v["first"], v["name"])

    @classmethod
    def of(cls, events: Iterable[dict[str, Any]]) -> "Names":
        n = cls()
        n.observe(events)
        return n

    def observe(self, events: Iterable[dict[str, Any]]) -> set[str]:
        """Take ``events`` into account; returns the tags whose canonical slug changed."""
        changed = set()
        for ev in events:
            if ev["kind"] != "trace.started":
                continue
            tag = tag_of(ev["project"])
            cand = (ev["time"], ev["project"])
            cur = self.table.get(tag)
            if cur is None or cand < cur:
                if cur is not None and cur[1] != cand[1]:
                    changed.add(tag)
                self.table[tag] = cand
        return changed

    def canonical(self, slug: str) -> str:
        cur = self.table.get(tag_of(slug))
        return cur[1] if cur else slug

    def as_json(self) -> dict[str, Any]:
        return {tag: {"first": f, "name": n} for tag, (f, n) in sorted(self.table.items())}


def dedupe_claims(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One event per fact when one trace was captured under two claimed slugs.

    The same session captured from two checkouts of one repository gives
    events that differ only in ``project``: keep, of each such group, the
    one with the smallest event id (a choice every machine makes alike).
    """
    if len({ev["project"] for ev in events}) <= 1:
        return events
    import orjson

    best: dict[tuple, dict[str, Any]] = {}
    for ev in events:
        key = (ev["kind"], tag_of(ev["project"]), ev["trace_id"], ev["step"], ev["time"],
               orjson.dumps(ev["payload"], option=orjson.OPT_SORT_KEYS))
        cur = best.get(key)
        if cur is None or ev["event_id"] < cur["event_id"]:
            best[key] = ev
    return list(best.values())
