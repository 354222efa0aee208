"""High-entropy tokens: secrets no pattern names.

A token is a run of base64/base64url characters of 20 to 128 characters.
It is reported when its Shannon entropy is close to the most its length
allows and it does not look like something ordinary:

- hex only (Git object ids, SHA-256 digests, content addresses): hashes
  are everywhere in a coding session and carry no secret by themselves;
- a UUID, or a token that follows ``sha1-``/``sha256-``/``sha512-``
  (lock-file integrity) or ``base64,`` (a data URL: images);
- longer than 128 characters (base64 images and bundles; key blocks are
  the pattern tool's job);
- made of words: identifiers, paths and camelCase names split into
  segments of three letters or more on average;
- without a digit, or in one letter case only while shorter than 32;
- an id an agent or model API minted (``toolu_…``, ``msg_…``, ``call_…``),
  or the value of a key named ``id``/``…Id``/``uuid``/``hash``/``signature``:
  redacting those would break the links between a tool call and its result.
"""

from __future__ import annotations

import math
import re
from collections import Counter

TOKEN = re.compile(r"(?<![A-Za-z0-9+/_\-=])[A-Za-z0-9+/_\-]{20,}={0,2}(?![A-Za-z0-9+/_\-=])")
HEX = re.compile(r"^[0-9a-fA-F]+$")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
SEGMENT = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# ids agents and model APIs mint (tool calls, messages, requests): random by design, not secrets
AGENT_ID = re.compile(r"^(?:toolu|srvtoolu|msg|req|call|fc|resp|rs|ws|item|run|thread|asst|file|batch|evt|sess|conv"
                      r"|chatcmpl|ctc|tu|tool|step|span|trace)[_\-][A-Za-z0-9]+$")
ID_KEY = re.compile(r"(?:[iI][dD]|uuid|Uuid|UUID|hash|Hash|sha|digest|etag|ETag|nonce|signature)\W{0,4}$")
SKIP_BEFORE = ("base64,", "sha256:", "sha1:")  # a token right after these is a data URL or a digest
INTEGRITY = ("sha1-", "sha256-", "sha384-", "sha512-", "md5-")  # lock files: "integrity": "sha512-..."
MAX_LEN = 128
RATIO = 0.86  # of the largest entropy the length allows


def shannon(token: str) -> float:
    n = len(token)
    return -sum(c / n * math.log2(c / n) for c in Counter(token).values())


def wordy(token: str) -> bool:
    segs = SEGMENT.findall(token)
    letters = [s for s in segs if s.isalpha()]
    if not letters:
        return False
    avg = sum(len(s) for s in letters) / len(letters)
    return avg >= 3.4


_DIGIT = re.compile(r"\d")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")


def is_secret_like(token: str) -> bool:
    core = token.rstrip("=")
    n = len(core)
    if n < 20 or n > MAX_LEN or not _DIGIT.search(core) or HEX.match(core) or UUID.search(core):
        return False
    if n < 32 and not (_UPPER.search(core) and _LOWER.search(core)):
        return False
    if "/" in core and core.count("/") >= 2 and wordy(core.replace("/", "_")):
        return False  # a path
    if wordy(core):
        return False
    return shannon(core) >= RATIO * math.log2(min(n, 64))


def find(text: str) -> list[tuple[int, int]]:
    out = []
    for m in TOKEN.finditer(text):
        s = m.start()
        if text[max(0, s - 8):s].endswith(SKIP_BEFORE) or m.group().startswith(INTEGRITY) or AGENT_ID.match(m.group()):
            continue
        if ID_KEY.search(text, max(0, s - 16), s):
            continue
        if is_secret_like(m.group()):
            out.append((s, m.end()))
    return out
