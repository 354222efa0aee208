"""The push gate: which traces may not leave the machine yet, read from the manifest rows only.

A trace is held back when it is

- ``unfiltered``: captured before any policy (no ``security`` in its row);
- ``stale``: filtered by an older security version, or without a tool that
  is on and ready now (a policy was tightened after the capture);
- ``flagged``: the classifier scored it at or above its threshold and no
  one has cleared it yet.

The gate is open when no trace is held, and off when no tool is on (policy
``off``: the user chose no redaction; the CLI says so on every push). It
never reads a trace's content, so ``bucket status`` can show it for free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import RefusedError
from .redact import SECURITY_VERSION

SHOWN = 8  # traces named in the one-line refusal; --json and 'bucket status' list all


@dataclass
class Held:
    trace_id: str
    project: str
    reason: str  # unfiltered | stale | flagged
    detail: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return {"trace_id": self.trace_id, "project": self.project, "reason": self.reason, "detail": self.detail,
                "fix": self.fix}


@dataclass
class Gate:
    state: str  # open | closed | off
    required_tools: list[str]
    version: str
    held: list[Held] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"unfiltered": 0, "stale": 0, "flagged": 0}
        for h in self.held:
            out[h.reason] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "required_tools": self.required_tools, "version": self.version,
                "held": self.counts(), "traces": [h.as_dict() for h in self.held]}


class GateClosedError(RefusedError):
    """Push refused before a byte is sent: some traces are not safe to send."""

    def __init__(self, gate: Gate):
        c = gate.counts()
        parts = ", ".join(f"{n} {k}" for k, n in c.items() if n)
        shown = "; ".join(f"{h.trace_id[:12]} {h.reason} -> {h.fix}" for h in gate.held[:SHOWN])
        more = f"; and {len(gate.held) - SHOWN} more" if len(gate.held) > SHOWN else ""
        super().__init__(f"push refused, nothing sent: {len(gate.held)} trace(s) held back by the security gate "
                         f"({parts}): {shown}{more}",
                         "fix each as shown ('opentraces bucket status --json' lists all)")
        self.details = {"gate": gate.as_dict()}


def stale_reason(version: str | None, tools: list[str], required: list[str]) -> str | None:
    """Why a trace filtered by ``tools`` under ``version`` must be filtered again, or None."""
    if version != SECURITY_VERSION:
        return f"filtered by security version {version}, now {SECURITY_VERSION}"
    missing = sorted(set(required) - set(tools))
    return f"filtered without {', '.join(missing)}" if missing else None


def evaluate(rows: Iterable[dict[str, Any]], ready: list[str]) -> Gate:
    """The gate for ``rows`` (manifest rows) given the tools ready on this machine now."""
    required = sorted(ready)
    if not required:
        return Gate("off", [], SECURITY_VERSION)
    held: list[Held] = []
    for row in rows:
        tid, project = row["trace_id"], row["project"]
        sec = row.get("security")
        refilter = f"opentraces bucket refilter --trace {tid}"
        if not sec:
            held.append(Held(tid, project, "unfiltered", "captured before any security policy", refilter))
            continue
        why = stale_reason(sec.get("version"), sec.get("tools") or [], required)
        if why:
            held.append(Held(tid, project, "stale", why, refilter))
            continue
        if sec.get("flagged"):
            held.append(Held(tid, project, "flagged", f"risk score {sec.get('score')}",
                             f"opentraces bucket review {tid} (then --clear)"))
    return Gate("closed" if held else "open", required, SECURITY_VERSION, held)


def from_summary(summary: dict[str, Any], ready: list[str]) -> dict[str, Any]:
    """The gate's state from the manifest head's summary (no trace is read): counts, not names."""
    required = sorted(ready)
    if not required:
        return {"state": "off", "required_tools": [], "version": SECURITY_VERSION,
                "held": {"unfiltered": 0, "stale": 0, "flagged": 0}}
    sec = summary.get("security") or {}
    stamps = sec.get("stamps") or {}
    filtered = sum(stamps.values())
    stale = 0
    for stamp, n in stamps.items():
        version, _, tools = stamp.partition("|")
        if stale_reason(version, list(filter(None, tools.split(","))), required):
            stale += n
    held = {"unfiltered": max(0, summary.get("trace_count", 0) - filtered), "stale": stale,
            "flagged": sec.get("flagged", 0)}
    return {"state": "closed" if any(held.values()) else "open", "required_tools": required,
            "version": SECURITY_VERSION, "held": held}
