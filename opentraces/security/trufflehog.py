"""The ``trufflehog`` tool: the TruffleHog v3 binary over a temporary dump.

The session's bytes go to a file in a private temporary folder (0700, removed
afterwards); ``trufflehog filesystem --json --no-verification --no-update``
scans it and prints one JSON object per finding on stdout. The ``Raw`` value
of each finding (and ``RawV2`` when it is a substring of the file) is what
gets redacted, wherever it occurs. Nothing is verified against the provider:
verification would send the secret over the network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from typing import Iterable

import orjson

TIMEOUT_S = 120


def binary(environ: dict[str, str] | None = None) -> str | None:
    return shutil.which("trufflehog", path=(environ or {}).get("PATH"))


def parse_output(lines: Iterable[bytes], data: bytes) -> list[tuple[str, str]]:
    """(secret text, kind) for every finding in TruffleHog's JSON lines output."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line in lines:
        line = line.strip()
        if not line.startswith(b"{"):
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(doc, dict):
            continue
        detector = re.sub(r"[^a-z0-9]+", "_", str(doc.get("DetectorName") or "secret").lower()).strip("_") or "secret"
        for field in ("Raw", "RawV2"):
            value = doc.get(field)
            if not isinstance(value, str) or len(value) < 6 or value in seen:
                continue
            if field == "RawV2" and value.encode("utf-8", "surrogateescape") not in data:
                continue  # some detectors join id and secret in RawV2
            seen.add(value)
            out.append((value, f"trufflehog_{detector}"))
    return out


def scan(data: bytes, exe: str) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="opentraces-th-") as tmp:
        os.chmod(tmp, 0o700)
        path = os.path.join(tmp, "session.jsonl")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        proc = subprocess.run([exe, "filesystem", "--json", "--no-verification", "--no-update", path],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=TIMEOUT_S, check=False)
    return parse_output(proc.stdout.splitlines(), data)
