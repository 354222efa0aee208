"""The trace risk classifier: a score and reasons for a whole trace, never the text.

It runs after redaction, on what redaction found (counts per kind) and on
signals in the redacted text that say more secrets were likely on screen
than the patterns could name: a credentials file read, a command that
prints the environment or a token. A trace scoring at or above
``THRESHOLD`` is flagged: the push gate holds it back until the user
clears it (``opentraces bucket review --clear``).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

CLASSIFIER_VERSION = "opentraces-risk-1"
THRESHOLD = 0.5

# kinds of finding -> weight of one occurrence (several add up, see score)
KIND_WEIGHT = {
    "private_key": 0.6, "aws_secret_key": 0.5, "aws_access_key": 0.3, "azure_storage_key": 0.5,
    "gcp_service_account": 0.6, "url_password": 0.3, "secret_assignment": 0.15, "jwt": 0.15, "bearer_token": 0.15,
    "credit_card": 0.4, "us_ssn": 0.5, "iban": 0.3, "high_entropy": 0.05, "email": 0.02, "phone": 0.05,
}
DEFAULT_CREDENTIAL_WEIGHT = 0.25  # any provider token not listed above
LOW_KINDS = {"home_user", "user_name", "ip_address", "internal_host", "collaboration_url", "aws_account_id",
             "gcp_project", "azure_subscription", "business_term"}
# each signal: literal alternatives (the regex engine scans for their first characters fast),
# then a check of the character before the match in Python (a lookbehind first is many times slower)
SIGNALS: tuple[tuple[str, float, re.Pattern, str], ...] = (
    ("read a credentials file", 0.25, re.compile(
        r"(?:\.env(?:\.(?:local|prod|production|dev|staging))?|\.netrc|\.npmrc|\.pypirc|\.pgpass"
        r"|id_(?:rsa|ed25519|ecdsa)|\.aws/credentials|credentials\.json|service[-_]account[\w\-]*\.json|kubeconfig"
        r"|secrets?\.(?:ya?ml|json|toml))(?![\w.])"), " \t\n/\"'=~"),
    ("ran a command that prints the environment or a token", 0.3, re.compile(
        r"(?:printenv|env\s*\||export\s+-p|aws\s+configure\s+(?:get|list|export)|"
        r"gcloud\s+auth\s+print-(?:access|identity)-token|gh\s+auth\s+token|kubectl\s+get\s+secrets?|"
        r"vault\s+(?:read|kv\s+get)|op\s+(?:read|item\s+get)|security\s+find-generic-password)\b"), " \t\n\"'`;|&($"),
    ("a database dump or export", 0.25, re.compile(r"(?:pg_dump|mysqldump|mongoexport|mongodump)\b"),
     " \t\n\"'`;|&($"),
)


def _hits(pattern: re.Pattern, before: str, text: str) -> set[str]:
    found = set()
    for m in pattern.finditer(text):
        s = m.start()
        if s == 0 or text[s - 1] in before:
            found.add(m.group())
    return found  # distinct files or commands


def signal_hits(redacted_text: str) -> dict[str, list[str]]:
    """What each signal matched (file names, command names: never a secret), to merge with later parts."""
    return {reason: sorted(h) for reason, _w, pattern, before in SIGNALS if (h := _hits(pattern, before, redacted_text))}


def classify(counts: Counter, redacted_text: str, prior_hits: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """{"score", "reasons", "kinds", "flagged", "version", "hits"}; reasons name kinds and counts only.
    ``prior_hits``: the signal hits of a part classified before (an appended session's prefix)."""
    keep = 1.0
    reasons: list[str] = []
    kinds: list[str] = []
    for kind, n in sorted(counts.items()):
        if kind in LOW_KINDS or n <= 0:
            continue
        w = KIND_WEIGHT.get(kind, DEFAULT_CREDENTIAL_WEIGHT)
        keep *= (1 - w) ** min(n, 10)
        reasons.append(f"{n} {kind.replace('_', ' ')} finding(s) redacted")
        kinds.append(kind)
    found = signal_hits(redacted_text)
    for reason, old in (prior_hits or {}).items():
        found[reason] = sorted(set(found.get(reason, [])) | set(old))
    for reason, w, _pattern, _before in SIGNALS:
        hits = len(found.get(reason, []))
        if hits:
            keep *= (1 - w) ** min(hits, 3)
            reasons.append(f"{reason} ({hits}x)")
            kinds.append(reason)
    score = round(1 - keep, 3)
    return {"score": score, "reasons": reasons, "kinds": kinds, "flagged": score >= THRESHOLD,
            "version": CLASSIFIER_VERSION, "hits": found}
