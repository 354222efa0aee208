"""The tools' states and the filter capture runs, both from the machine-global config.

A tool is ``disabled`` (its flag is off), ``enabled`` (on and ready),
``missing`` (on, but a program it runs is not installed: trufflehog) or
``unavailable`` (on, but what it needs does not load: privacy_filter). Only
ready tools filter; the stamp on each trace names exactly those, and the
push gate compares a trace's stamp with what would run now.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from .. import config as config_mod
from ..errors import ConfigError
from . import ner, trufflehog
from .classifier import CLASSIFIER_VERSION, classify
from .policy import TOOLS, enabled, policy_of
from .redact import SECURITY_VERSION, Redactor, SessionRedaction, pseudonym
from . import rules

KEY_PATH = "security.path_anonymizer.key"  # hex; keys the home-folder pseudonyms (never stored in the bucket)
TERMS_PATH = "security.business_logic.terms"
MODEL_PATH = "security.privacy_filter.model"

READY = "enabled"
REASONS = {
    "regex": "built-in patterns: provider credentials, private keys, JWTs, bearer tokens, URL passwords, e-mail, "
             "phone, card (Luhn), IBAN, SSN, IP",
    "entropy": "built-in: high-entropy tokens, hashes/UUIDs/integrity/base64 images excluded",
    "business_logic": "built-in: internal hosts, collaboration URLs, cloud account ids, your terms",
    "path_anonymizer": "built-in: home-folder user names to stable pseudonyms",
    "classifier": f"built-in: trace risk score ({CLASSIFIER_VERSION})",
}


def tool_states(doc: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    flags = enabled(doc)
    out: dict[str, dict[str, str]] = {}
    for t in TOOLS:
        if not flags[t]:
            out[t] = {"state": "disabled", "reason": f"security.{t}.enabled is false"}
        elif t == "trufflehog":
            exe = trufflehog.binary(environ)
            out[t] = ({"state": READY, "reason": f"runs {exe}"} if exe else
                      {"state": "missing", "reason": "trufflehog is not on PATH; install TruffleHog v3 "
                                                     "(https://github.com/trufflesecurity/trufflehog)"})
        elif t == "privacy_filter":
            model, reason = ner.probe(config_mod.get(doc, MODEL_PATH))
            out[t] = {"state": READY if model else "unavailable", "reason": reason}
        else:
            out[t] = {"state": READY, "reason": REASONS[t]}
    return out


def ready_tools(doc: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    return sorted(t for t, s in tool_states(doc, environ).items() if s["state"] == READY)


def ensure_key(home: Path, doc: dict[str, Any]) -> bytes:
    """The pseudonym key, created (and saved, 0600) on first use."""
    value = config_mod.get(doc, KEY_PATH)
    if value is None:
        value = secrets.token_hex(32)
        config_mod.put(doc, KEY_PATH, value)
        config_mod.save(home, doc)
    try:
        key = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        key = b""
    if len(key) != 32:  # never a new key silently: every pseudonym would change
        raise ConfigError(f"{KEY_PATH} in {config_mod.config_path(home)} is damaged (64 hex digits expected)",
                          "restore it from a backup, or delete the key to start new pseudonyms")
    return key


@dataclass
class CaptureFilter:
    """What capture runs on each session file's bytes before parsing them."""

    redactor: Redactor
    classifier: bool
    stamp: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Changes whenever the same bytes could be redacted differently (tools, rules, key, terms)."""
        r = self.redactor
        h = hashlib.sha256(orjson.dumps([sorted(r.tools), SECURITY_VERSION, r.key.hex(),
                                         r.terms.pattern if r.terms is not None else None, sorted(r.known_users)]))
        return h.hexdigest()[:16]

    def run(self, data: bytes, prev: dict[str, Any] | None = None,
            prefix: Callable[[int], bytes | None] | None = None) -> SessionRedaction:
        """Redact ``data``. ``prev`` (this file's last redaction, kept in the capture cursor) and
        ``prefix`` (the stored redacted bytes, by length) let a grown file redact only what was
        appended: the prefix must hash as before, under the same filter and the same user names."""
        red = self._incremental(data, prev, prefix) if prev and prefix else None
        return red if red is not None else self.redactor.redact_session(data)

    def _incremental(self, data: bytes, prev: dict[str, Any], prefix) -> SessionRedaction | None:
        n, m = prev.get("n", 0), prev.get("m", 0)
        if (prev.get("stamp") != self.fingerprint or not 0 < n <= len(data)
                or hashlib.sha256(data[:n]).hexdigest() != prev.get("sha")):
            return None
        users = self.redactor.session_users(data)
        if self._user_tags(users) != prev.get("users"):
            return None  # a user named only now may be in the prefix outside a path
        head = prefix(m)
        if head is None or len(head) != m:
            return None
        tail = self.redactor.redact_session(data[n:], users=users)
        return SessionRedaction(head + tail.data, Counter(prev.get("counts") or {}) + tail.counts, users,
                                hits=prev.get("hits") or {}, hits_done=m)

    def cursor(self, data: bytes, red: SessionRedaction) -> dict[str, Any]:
        """What the next capture of this file needs to redact only its new lines (local .state only:
        hashes, lengths, counts, user names; never the text)."""
        n = data.rfind(b"\n") + 1
        m = red.data.rfind(b"\n") + 1
        return {"stamp": self.fingerprint, "n": n, "sha": hashlib.sha256(data[:n]).hexdigest(), "m": m,
                "counts": dict(red.counts), "users": self._user_tags(red.users), "hits": red.hits_all}

    def _user_tags(self, users: set[str]) -> list[str]:
        """The user names as their pseudonyms: the cursor never holds a name."""
        return sorted(pseudonym(self.redactor.key, u) for u in users)

    def payload(self, red: SessionRedaction) -> dict[str, Any]:
        """The ``security.filtered`` event payload: what ran and what it found (never the text)."""
        body: dict[str, Any] = {**self.stamp, "redactions": dict(sorted(red.counts.items()))}
        if self.classifier:
            result = classify(red.counts, red.data[red.hits_done:].decode("utf-8", "replace"), red.hits)
            red.hits_all = result.pop("hits")
            body["classifier"] = result
        return body

    def mask_home(self, path: str) -> str:
        """``path`` with its home folder's user name pseudonymized, as in a redacted session."""
        if "path_anonymizer" not in self.redactor.tools or not path:
            return path
        return rules.HOME_PATH.sub(
            lambda m: m.group(0) if m.group(1).lower() in rules.NOT_USERS
            else m.group(0)[: m.start(1) - m.start(0)] + pseudonym(self.redactor.key, m.group(1)), path)

    def unmask_home(self, path: str | None, users: set[str]) -> str | None:
        """The real path behind a pseudonymized one (the session's users only)."""
        if not path or "path_anonymizer" not in self.redactor.tools:
            return path
        back = {pseudonym(self.redactor.key, u): u for u in users}

        def sub(m):
            u = back.get(m.group(1))
            return m.group(0) if u is None else m.group(0)[: m.start(1) - m.start(0)] + u

        return rules.HOME_PATH.sub(sub, path)


def capture_filter(home: Path, environ: dict[str, str] | None = None,
                   user_home: Path | None = None, doc: dict[str, Any] | None = None) -> CaptureFilter | None:
    """The filter for this machine's policy, or None when no tool is on (policy ``off``).
    ``doc``: config.json as the caller already read it."""
    doc = config_mod.load(home) if doc is None else doc
    flags = enabled(doc)
    if not any(flags.values()):
        return None
    ready = ready_tools(doc, environ)
    key = ensure_key(home, doc) if "path_anonymizer" in ready else b""
    users = set()
    env = environ or {}
    for name in (env.get("USER"), env.get("LOGNAME"), Path(user_home).name if user_home else None):
        if name and name.lower() not in rules.NOT_USERS:
            users.add(name)
    terms = config_mod.get(doc, TERMS_PATH) or []
    if isinstance(terms, str):
        terms = [t.strip() for t in terms.split(",")]
    literal_finder: Callable | None = None
    if "trufflehog" in ready:
        exe = trufflehog.binary(environ)
        literal_finder = lambda data, exe=exe: trufflehog.scan(data, exe)  # noqa: E731
    ner_fn = None
    if "privacy_filter" in ready:
        model, _ = ner.probe(config_mod.get(doc, MODEL_PATH))
        ner_fn = ner.load(model) if model else None
    redactor = Redactor(ready, key=key, terms=[t for t in terms if isinstance(t, str) and t.strip()], users=users,
                        literal_finder=literal_finder, ner=ner_fn)
    stamp = {"policy": policy_of(flags), "tools": ready, "version": SECURITY_VERSION,
             "not_ready": sorted(t for t, on in flags.items() if on and t not in ready)}
    return CaptureFilter(redactor, "classifier" in ready, stamp)
