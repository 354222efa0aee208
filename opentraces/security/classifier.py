"""The trace risk classifier: a score and reasons for a whole trace, never the text.

It runs after redaction, on what redaction found (counts per kind) and on
signals in the redacted text that say more secrets were likely on screen
than the patterns could name: a credentials file read, a command that
prints the environment or a token. A trace scoring at or above
``THRESHOLD`` is flagged: the push gate holds it back until the user
clears it (``opentraces bucket review --clear``).
"""

from __future__ import annotations

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
# each signal: literal keywords found with str.find (memory speed), the characters around each
# hit checked in Python; a regex of alternatives starting with common letters scans far slower
_PATH_BEFORE = " \t\n/\"'=~"
_CMD_BEFORE = " \t\n\"'`;|&($"
_CRED_FILES = (".env", ".env.local", ".env.prod", ".env.production", ".env.dev", ".env.staging", ".netrc", ".npmrc",
               ".pypirc", ".pgpass", "id_rsa", "id_ed25519", "id_ecdsa", ".aws/credentials", "credentials.json",
               "kubeconfig", "secrets.yaml", "secrets.yml", "secrets.json", "secrets.toml", "secret.yaml",
               "secret.yml", "secret.json", "service-account.json", "service_account.json")
_CMDS = ("printenv", "env |", "env|", "export -p", "aws configure get", "aws configure list", "aws configure export",
         "gcloud auth print-access-token", "gcloud auth print-identity-token", "gh auth token", "kubectl get secret",
         "vault read", "vault kv get", "op read", "op item get", "security find-generic-password")
_DUMPS = ("pg_dump", "mysqldump", "mongoexport", "mongodump")
SIGNALS: tuple[tuple[str, float, tuple[str, ...], str, bool], ...] = (
    ("read a credentials file", 0.25, _CRED_FILES, _PATH_BEFORE, True),
    ("ran a command that prints the environment or a token", 0.3, _CMDS, _CMD_BEFORE, False),
    ("a database dump or export", 0.25, _DUMPS, _CMD_BEFORE, False),
)
_WORDISH = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _hits(keywords: tuple[str, ...], before: str, whole: bool, text: str) -> set[str]:
    """The keywords found with ``before`` characters (or the start) in front; ``whole``: and
    neither a word character nor a dot right after (``.env`` but not ``.envrc``)."""
    found = set()
    for kw in keywords:
        i = text.find(kw)
        while i >= 0:
            e = i + len(kw)
            nxt = text[e] if e < len(text) else " "
            if (i == 0 or text[i - 1] in before) and (not whole or (nxt not in _WORDISH and nxt != ".")) \
                    and (kw[-1] in " |" or nxt not in _WORDISH):
                found.add(kw)
                break
            i = text.find(kw, i + 1)
    return found


def signal_hits(redacted_text: str) -> dict[str, list[str]]:
    """What each signal matched (file names, command names: never a secret), to merge with later parts."""
    return {reason: sorted(h) for reason, _w, kws, before, whole in SIGNALS
            if (h := _hits(kws, before, whole, redacted_text))}


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
    for reason, w, _kws, _before, _whole in SIGNALS:
        hits = len(found.get(reason, []))
        if hits:
            keep *= (1 - w) ** min(hits, 3)
            reasons.append(f"{reason} ({hits}x)")
            kinds.append(reason)
    score = round(1 - keep, 3)
    return {"score": score, "reasons": reasons, "kinds": kinds, "flagged": score >= THRESHOLD,
            "version": CLASSIFIER_VERSION, "hits": found}
