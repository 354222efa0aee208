"""The bucket security policy: named bundles over ``security.<tool>.enabled`` (the seed's table).

The flags are machine-global (``opentraces.config``): the same flags
capture-time redaction reads. Applying a policy sets every tool's flag to
exactly the bundle, so it can turn off a tool enabled for another purpose;
``apply`` reports which, so the CLI can warn.
"""

from __future__ import annotations

from typing import Any

from .. import config as config_mod
from ..errors import RefusedError

TOOLS = ("regex", "entropy", "trufflehog", "privacy_filter", "business_logic", "path_anonymizer", "classifier")
POLICIES: dict[str, tuple[str, ...]] = {
    "off": (),
    "basic": ("regex", "entropy"),
    "recommended": ("regex", "entropy", "business_logic", "path_anonymizer", "classifier"),
    "strict": ("regex", "entropy", "trufflehog", "privacy_filter", "business_logic", "path_anonymizer", "classifier"),
}
DEFAULT_POLICY = "recommended"


def enabled(doc: dict[str, Any]) -> dict[str, bool]:
    return {t: bool(config_mod.get(doc, f"security.{t}.enabled", False)) for t in TOOLS}


def policy_of(flags: dict[str, bool]) -> str:
    on = {t for t, v in flags.items() if v}
    for name, tools in POLICIES.items():
        if on == set(tools):
            return name
    return "custom"


def set_flags(doc: dict[str, Any], flags: dict[str, bool]) -> dict[str, list[str]]:
    """Write ``flags`` into ``doc``; returns {"enabled": [...], "disabled": [...]} (changes only)."""
    before = enabled(doc)
    for tool, value in flags.items():
        if tool not in TOOLS:
            raise RefusedError(f"unknown security tool {tool!r}", f"use one of {', '.join(TOOLS)}")
        config_mod.put(doc, f"security.{tool}.enabled", bool(value))
    after = enabled(doc)
    return {"enabled": sorted(t for t in TOOLS if after[t] and not before[t]),
            "disabled": sorted(t for t in TOOLS if before[t] and not after[t])}


def apply_policy(doc: dict[str, Any], name: str, *, enable: tuple[str, ...] = (),
                 disable: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Set the flags to the bundle ``name``, then the explicit overrides."""
    if name not in POLICIES and name != "custom":
        raise RefusedError(f"unknown policy {name!r}", f"use one of {', '.join(POLICIES)}")
    flags = {t: t in POLICIES.get(name, ()) for t in TOOLS} if name != "custom" else enabled(doc)
    for t in enable:
        flags[t] = True
    for t in disable:
        flags[t] = False
    return set_flags(doc, flags)


def describe(doc: dict[str, Any]) -> dict[str, Any]:
    flags = enabled(doc)
    return {"enabled": any(flags.values()), "tools": flags, "scope": "bucket", "policy": policy_of(flags),
            "available_policies": list(POLICIES)}
