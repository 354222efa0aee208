"""Redaction of a session file's bytes, before anything is parsed or stored.

``Redactor.redact_session(data)`` returns the bytes capture goes on with:
the same JSON lines with every finding replaced, so the events, the context
blobs, the raw source blob and everything the mirror derives from them hold
only redacted text. How a line is redacted:

1. The pattern and entropy tools run once over the whole file, in which JSON
   escapes (``\\n``, ``\\"``, ``\\\\``) are masked to spaces of the same
   length: one regex pass per rule, not one per string, and a token right
   after an escape still starts on a boundary.
2. A line with findings gets them replaced in place (``[REDACTED:<kind>]``, a
   home folder's user name by its pseudonym). If that would break the line's
   JSON, or the line uses ``\\uXXXX``/``\\/`` escapes (a secret could hide
   behind them), or a tool works on decoded text (the NER filter), the line
   is parsed, every string in it redacted as decoded text, and dumped again.
3. A line that is not JSON is redacted as text (it is stored in the raw
   source blob even though no parser reads it).

Redaction is a pure function of the bytes, the enabled tools, the bucket's
pseudonym key and the user's term list, and it works line by line, so a
session that grows is redacted to a file that grows too: the capture's
append detection (a SHA-256 of the stored prefix) still works and never
sees an unredacted byte.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import orjson

from . import entropy, rules

SECURITY_VERSION = "1"  # bump when a change to the rules should re-filter older traces
MARK = "[REDACTED:{}]"


def mask_escapes(text: str) -> str:
    """``text`` with JSON escapes turned into spaces of the same length (offsets unchanged).

    ``\\n``, ``\\t``, ``\\r``, ``\\"`` first, so JSON inside a JSON string (Codex tool
    arguments: a newline reads ``\\\\n`` in the file) gets its boundary too; then escaped
    backslashes. Chained ``str.replace`` runs at memory speed (a regex with a callback was
    the slowest step of redaction)."""
    if "\\" not in text:
        return text
    for esc in ("\\n", "\\t", "\\r", '\\"', "\\\\"):
        text = text.replace(esc, "  ")
    return text


DECODE_NEEDED = re.compile(r"\\u[0-9a-fA-F]{4}|\\/")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str
    replacement: str


@dataclass
class SessionRedaction:
    data: bytes
    counts: Counter = field(default_factory=Counter)
    users: set = field(default_factory=set)  # home-folder user names seen (kept in memory only)
    hits: dict = field(default_factory=dict)  # classifier signal hits of a prefix redacted before
    hits_done: int = 0  # bytes of ``data`` those hits cover
    hits_all: dict = field(default_factory=dict)  # the whole file's, once classified


def pseudonym(key: bytes, user: str) -> str:
    return "user-" + hmac.new(key, user.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:8]


def _words(names: Iterable[str], flags: int = 0) -> re.Pattern | None:
    names = sorted({n for n in names if n}, key=len, reverse=True)
    if not names:
        return None
    # the boundary check after the first character keeps the literal-prefix scan fast
    alts = [re.escape(n[0]) + r"(?<![A-Za-z0-9_.\-]" + re.escape(n[0]) + ")" + re.escape(n[1:]) for n in names]
    return re.compile("(?:" + "|".join(alts) + r")(?![A-Za-z0-9_\-])", flags)


class _UserWords:
    """A user name outside a path, where it is one for sure: before ``@`` (a prompt, ``user@host``),
    after ``USER=``/``LOGNAME=``/``user: ``/``Author: ``, or alone on a line (``whoami``). Replacing it
    as any bare word would rewrite every "mark" or "will" of a user named so. The names are found
    by a plain literal search and the context checked around each hit (a regex that checks the
    context first scans many times slower)."""

    AFTER = ("USER=", "LOGNAME=", "user: ", "Author: ")
    WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")

    def __init__(self, names: list[str]):
        self.pattern = re.compile("|".join(map(re.escape, names)))

    def finditer(self, scan: str, text: str | None = None):
        """Hits in ``scan``; ``text`` is the unmasked text at the same offsets (a JSON line, where
        a line break reads ``\\n``)."""
        text = scan if text is None else text
        for m in self.pattern.finditer(scan):
            s, e = m.span()
            before = "\n" if s == 0 or text.endswith(("\\n", "\\r"), 0, s) else text[s - 1]
            after = "\n" if e >= len(text) or text.startswith(("\\n", "\\r"), e) else text[e]
            if before in self.WORD or (after in self.WORD and after != "."):
                continue
            if after == "@" and e + 1 < len(text) and text[e + 1] in self.WORD:
                yield m
            elif before in '\n"' and after in '\n\r"':
                yield m  # alone on a line, or the whole of a string (whoami's output)
            elif any(text.endswith(a, 0, s) for a in self.AFTER):
                yield m


def _user_words(users: Iterable[str]) -> _UserWords | None:
    names = sorted({u for u in users if len(u) >= 3 and u.lower() not in rules.COMMON_NAMES}, key=len, reverse=True)
    return _UserWords(names) if names else None


def _resolve(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans, earliest first, the longest where two start together."""
    out: list[Span] = []
    end = -1
    for s in sorted(spans, key=lambda s: (s.start, s.start - s.end)):
        if s.start >= end and s.end > s.start:
            out.append(s)
            end = s.end
    return out


def _apply(text: str, spans: list[Span], base: int = 0) -> str:
    parts = []
    pos = base
    for s in spans:
        parts.append(text[pos - base:s.start - base])
        parts.append(s.replacement)
        pos = s.end
    parts.append(text[pos - base:])
    return "".join(parts)


class Redactor:
    """The enabled tools, ready to run. Build one with ``tools.build_redactor``."""

    def __init__(self, tools: Iterable[str], *, key: bytes, terms: Iterable[str] = (), users: Iterable[str] = (),
                 literal_finder: Callable[[bytes], list[tuple[str, str]]] | None = None,
                 ner: Callable[[str], list[tuple[int, int, str]]] | None = None) -> None:
        self.tools = frozenset(tools)
        self.key = key
        self.rules = [r for r in (*rules.REGEX_RULES, *rules.BUSINESS_RULES) if r.tool in self.tools]
        self.terms = _words(terms, re.I) if "business_logic" in self.tools else None
        self.known_users = {u for u in users if u}
        self.literal_finder = literal_finder if "trufflehog" in self.tools else None
        self.ner = ner if "privacy_filter" in self.tools else None

    @property
    def active(self) -> bool:
        return bool(self.tools - {"classifier"})

    # ------------------------------------------------------------------ finding

    def _users(self, text: str) -> set[str]:
        if "path_anonymizer" not in self.tools:
            return set()
        found = {m.group(1) for m in rules.home_matches(text)}
        return {u for u in found | self.known_users
                if u.lower() not in rules.NOT_USERS and not re.fullmatch(r"user-[0-9a-f]{8}", u)}

    def _spans(self, text: str, scan: str, *, decoded: bool, users: set[str], bare: re.Pattern | None,
               literals: list[tuple[str, str]]) -> list[Span]:
        """Findings in ``text``; ``scan`` is the text the patterns run over
        (``text`` itself, or with JSON escapes masked)."""
        spans: list[Span] = []
        low = scan.lower()
        same = len(low) == len(scan)  # lowercasing kept every offset (true unless rare non-ASCII letters)
        numeric = [r for r in self.rules if r.numeric]
        windows = rules.numeric_windows(scan) if numeric else []
        for rule in self.rules:
            if rule.keywords and not any(k in low for k in rule.keywords):
                continue
            pattern = rules.PEM_DECODED if decoded and rule.kind == "private_key" else rule.pattern
            target = scan
            if rule.on_lower:
                target = low if same else scan
                if not same:
                    pattern = re.compile(pattern.pattern, re.I)
            matches = pattern.finditer(target) if not rule.numeric else (
                m for ws, we in windows for m in pattern.finditer(target, ws, we))
            for m in matches:
                s, e = m.span(rule.group)
                if s < 0:
                    continue
                if rule.left is not None:
                    while s > 0 and scan[s - 1] in rule.left:
                        s -= 1
                    while s < m.start() and scan[s] in ".-_%+":  # a name starts with a letter or digit
                        s += 1
                    if s >= m.start():
                        continue
                value = scan[s:e]
                if rule.check is not None and not rule.check(value):
                    continue
                if not decoded and "\n" in value:
                    e = s + value.index("\n")
                spans.append(Span(s, e, rule.kind, MARK.format(rule.kind)))
        if self.terms is not None:
            spans += [Span(m.start(), m.end(), "business_term", MARK.format("business_term"))
                      for m in self.terms.finditer(scan)]
        if "entropy" in self.tools:
            spans += [Span(s, e, "high_entropy", MARK.format("high_entropy")) for s, e in entropy.find(scan)]
        if users:
            for m in rules.home_matches(text):
                u = m.group(1)
                if u in users:
                    spans.append(Span(m.start(1), m.end(1), "home_user", pseudonym(self.key, u)))
            if bare is not None:
                spans += [Span(m.start(), m.end(), "user_name", pseudonym(self.key, m.group()))
                          for m in bare.finditer(scan, text)]
        for value, kind in literals:
            start = text.find(value)
            while start >= 0:
                spans.append(Span(start, start + len(value), kind, MARK.format(kind)))
                start = text.find(value, start + len(value))
        if decoded and self.ner is not None:
            spans += [Span(s, e, kind, MARK.format(kind)) for s, e, kind in self.ner(text)]
        return spans

    # ---------------------------------------------------------------- redacting

    def redact_text(self, text: str, counts: Counter | None = None, *, users: Iterable[str] = ()) -> str:
        """``text`` as decoded prose or code (not JSON), every finding replaced."""
        us = self._users(text) | set(users)
        bare = _user_words(us)
        spans = _resolve(self._spans(text, mask_escapes(text), decoded=True, users=us, bare=bare, literals=[]))
        if counts is not None:
            counts.update(s.kind for s in spans)
        return _apply(text, spans) if spans else text

    def session_users(self, data: bytes) -> set[str]:
        """The home-folder user names a session file names (and this machine's)."""
        return self._users(bytes(data).decode("utf-8", "surrogateescape"))

    def redact_session(self, data: bytes, *, users: set[str] | None = None) -> SessionRedaction:
        """``data`` redacted; ``users``: the names to pseudonymize outside paths (default: the ones
        ``data`` itself names; an appended part passes the whole file's)."""
        if not self.active:
            return SessionRedaction(data)
        text = bytes(data).decode("utf-8", "surrogateescape")
        users = self._users(text) if users is None else users
        bare = _user_words(users)
        literals: list[tuple[str, str]] = []
        if self.literal_finder is not None:
            for value, kind in self.literal_finder(bytes(data)):
                literals.append((value, kind))
                try:  # the decoded form, for lines redacted as JSON
                    dec = orjson.loads(b'"' + value.encode("utf-8", "surrogateescape") + b'"')
                    if dec != value:
                        literals.append((dec, kind))
                except orjson.JSONDecodeError:
                    pass
        masked = mask_escapes(text)
        found = _resolve(self._spans(text, masked, decoded=False, users=users, bare=bare, literals=literals))
        line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        decode_lines = self._decode_lines(text, line_starts) if self.ner is None else None
        out = SessionRedaction(data, users=users)
        pieces: list[str] = []
        pos = 0
        by_line: dict[int, list[Span]] = {}
        for s in found:
            by_line.setdefault(bisect.bisect_right(line_starts, s.start) - 1, []).append(s)
        targets = set(by_line) | (set(range(len(line_starts))) if decode_lines is None else decode_lines)
        for no in sorted(targets):
            ls = line_starts[no]
            le = text.find("\n", ls)
            le = len(text) if le < 0 else le
            line = text[ls:le]
            if not line.strip():
                continue
            new = self._redact_line(line, by_line.get(no, []), ls, users, bare, literals, out.counts,
                                    force_decode=decode_lines is None or no in decode_lines)
            if new != line:
                pieces.append(text[pos:ls])
                pieces.append(new)
                pos = le
        if not pieces:
            return out
        pieces.append(text[pos:])
        out.data = "".join(pieces).encode("utf-8", "surrogateescape")
        return out

    @staticmethod
    def _decode_lines(text: str, line_starts: list[int]) -> set[int]:
        lines = set()
        for m in DECODE_NEEDED.finditer(text):
            i = m.start()
            run = 0
            while i - run - 1 >= 0 and text[i - run - 1] == "\\":
                run += 1
            if run % 2 == 0:  # the backslash starts an escape (not the second half of "\\\\")
                lines.add(bisect.bisect_right(line_starts, m.start()) - 1)
        return lines

    def _redact_line(self, line: str, spans: list[Span], base: int, users: set[str], bare, literals,
                     counts: Counter, *, force_decode: bool) -> str:
        obj: Any = None
        parsed = False
        try:
            obj = orjson.loads(line.encode("utf-8", "surrogateescape"))
            parsed = True
        except (orjson.JSONDecodeError, UnicodeEncodeError):
            pass
        if not force_decode or not parsed:
            new = _apply(line, spans, base) if spans else line
            if not parsed:
                counts.update(s.kind for s in spans)
                return new
            try:
                orjson.loads(new.encode("utf-8", "surrogateescape"))
                counts.update(s.kind for s in spans)
                return new
            except (orjson.JSONDecodeError, UnicodeEncodeError):
                pass  # a replacement cut an escape: redact the decoded strings instead
        local: Counter = Counter()

        def walk(v: Any) -> Any:
            if isinstance(v, str):
                if not v:
                    return v
                sp = _resolve(self._spans(v, mask_escapes(v), decoded=True, users=users, bare=bare, literals=literals))
                if not sp:
                    return v
                local.update(s.kind for s in sp)
                return _apply(v, sp)
            if isinstance(v, list):
                return [walk(x) for x in v]
            if isinstance(v, dict):
                return {walk(k): walk(x) for k, x in v.items()}
            return v

        new_obj = walk(obj)
        if not local:
            return line
        counts.update(local)
        return orjson.dumps(new_obj).decode("utf-8")
