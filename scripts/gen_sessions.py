#!/usr/bin/env python3
"""Generate realistic Claude Code session transcripts for benchmarks.

    python scripts/gen_sessions.py OUT_DIR --sessions N --steps S [--seed K]

Writes ``OUT_DIR/<project-dir>/<session-id>.jsonl`` laid out like
``~/.claude/projects`` (``<project-dir>`` is the session cwd with every
``/`` turned into ``-``; the cwd is ``/workspace/<project>``).

The rows copy the shapes of a real Claude Code 2.x transcript
(shared/fixtures/real-sessions/claude/claude-linear-edit-real-session.jsonl):

- a user prompt row (``message.content`` a string, ``promptId``,
  ``permissionMode``...);
- one assistant row per content block (thinking, text, tool_use), the rows
  of one LLM call sharing ``message.id``, ``requestId`` and ``usage``;
- tool_use blocks for Read, Edit, Write and Bash, each answered by a user
  row holding a ``tool_result`` block plus the ``toolUseResult`` side
  channel (Read: ``file``; Edit: ``originalFile`` + ``structuredPatch``;
  Write: ``type`` create/update + ``content``; Bash: ``stdout``/``stderr``).

Text is source-code-like Python, shell output and prose drawn from a fixed
vocabulary, so gzip ratios are in the range of real transcripts (not
``xxxx``). Thinking blocks carry an opaque base64 ``signature`` like real
ones (incompressible, as in real files). JSON is written compactly with
non-ASCII kept, as Claude Code's ``JSON.stringify`` does.

Everything is a pure function of (seed, sessions, steps, projects): the same
arguments give the same bytes. ``--steps`` counts LLM calls (assistant
messages); each session has exactly that many, give or take ``--jitter``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import difflib
import json
import os
import random
import sys
import uuid
from pathlib import Path

GENERATOR_VERSION = 1  # bump when the output for given arguments changes

MODEL = "claude-opus-4-8"
CLI_VERSION = "2.1.175"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

PROJECT_NAMES = [
    "billing-api", "web-dashboard", "ingest-worker", "auth-service", "data-pipeline",
    "mobile-backend", "search-indexer", "payments-core", "infra-tools", "ml-features",
    "notification-hub", "report-builder", "catalog-sync", "edge-proxy", "cli-toolkit",
    "event-router",
]
NOUNS = [
    "account", "invoice", "order", "customer", "session", "token", "record", "batch", "event",
    "payload", "config", "request", "response", "user", "item", "report", "metric", "cache",
    "queue", "job", "task", "worker", "schema", "index", "entry", "window", "buffer", "client",
    "handler", "manifest", "snapshot", "segment", "chunk", "profile", "ledger", "price",
    "discount", "address", "region", "tenant", "permission", "role", "policy", "rule", "limit",
    "quota", "bucket", "digest", "header", "cursor", "page", "result", "error", "retry",
]
VERBS = [
    "load", "parse", "build", "validate", "normalize", "fetch", "store", "update", "compute",
    "render", "resolve", "merge", "split", "encode", "decode", "apply", "collect", "filter",
    "group", "sort", "emit", "flush", "sync", "check", "format", "register", "schedule",
    "cancel", "refresh", "expire", "serialize", "compare", "reconcile", "dispatch", "handle",
]
ADJS = [
    "pending", "active", "stale", "cached", "raw", "final", "partial", "default", "current",
    "previous", "next", "local", "remote", "max", "min", "total", "valid", "expired", "new",
]
TYPES = ["str", "int", "float", "bool", "bytes", "dict[str, Any]", "list[str]", "list[int]",
         "Optional[str]", "Sequence[dict]", "Path", "datetime"]
ERRORS = ["ValueError", "KeyError", "RuntimeError", "TypeError", "LookupError", "PermissionError"]
MODULES = ["os", "re", "json", "time", "logging", "hashlib", "itertools", "functools",
           "dataclasses", "pathlib", "typing", "collections", "datetime", "decimal"]
WORDS = (
    "the a to of and in for is that this it with as on be by not are from at or which have "
    "function module test file value field call error case path check change update fix add "
    "return handle missing existing current new old instead so then now also only when if "
    "because should would will can need make sure keep run see look let me first next "
    "helper method class config default behaviour result output input type edge empty list "
    "none null string number key lookup order tests pass fail failing passing import "
    "refactor rename extract inline cleanup simplify guard validation parser serializer"
).split()
DIRS = ["src", "src/core", "src/api", "src/utils", "src/models", "src/services", "tests", "scripts"]


# --------------------------------------------------------------------------
# ids, times


def _b62(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_B62) for _ in range(n))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------
# text


def _ident(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        return f"{rng.choice(ADJS)}_{rng.choice(NOUNS)}"
    if r < 0.8:
        return rng.choice(NOUNS)
    return f"{rng.choice(NOUNS)}_{rng.choice(['id', 'ids', 'map', 'count', 'list', 'key', 'path'])}"


def _sentence(rng: random.Random, lo: int = 6, hi: int = 18) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    if rng.random() < 0.4:
        words.insert(rng.randrange(len(words)), f"`{rng.choice(VERBS)}_{rng.choice(NOUNS)}()`")
    s = " ".join(words)
    return s[0].upper() + s[1:] + rng.choice([".", ".", ".", ":", "?"])


def _prose(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng) for _ in range(sentences))


def _expr(rng: random.Random) -> str:
    r = rng.random()
    a = _ident(rng)
    if r < 0.25:
        return f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}({a}, {_ident(rng)})"
    if r < 0.45:
        return f"self.{a}.get({json.dumps(rng.choice(NOUNS))}, {rng.choice(['None', '0', '[]', '{}'])})"
    if r < 0.6:
        return f"[x for x in {a} if x.{rng.choice(ADJS)}]"
    if r < 0.75:
        return f"{a} + {rng.randint(1, 100)}"
    if r < 0.85:
        return f"f\"{rng.choice(NOUNS)}-{{{a}}}\""
    return f"{a}.{rng.choice(VERBS)}()"


def _stmt(rng: random.Random, indent: str, depth: int) -> list[str]:
    r = rng.random()
    if r < 0.35 or depth > 2:
        return [f"{indent}{_ident(rng)} = {_expr(rng)}"]
    if r < 0.5:
        body = [ln for _ in range(rng.randint(1, 3)) for ln in _stmt(rng, indent + "    ", depth + 1)]
        return [f"{indent}if {_ident(rng)} is None:"] + body
    if r < 0.62:
        body = [ln for _ in range(rng.randint(1, 3)) for ln in _stmt(rng, indent + "    ", depth + 1)]
        return [f"{indent}for {rng.choice(NOUNS)} in {_ident(rng)}:"] + body
    if r < 0.72:
        return [f"{indent}if not {_ident(rng)}:",
                f"{indent}    raise {rng.choice(ERRORS)}(f\"{_sentence(rng, 3, 7)[:-1].lower()}: {{{_ident(rng)}!r}}\")"]
    if r < 0.8:
        return [f"{indent}logger.debug(\"{rng.choice(VERBS)} %s\", {_ident(rng)})"]
    if r < 0.88:
        return [f"{indent}# {_sentence(rng, 4, 10)}"]
    if r < 0.94:
        return [f"{indent}try:", f"{indent}    {_ident(rng)} = {_expr(rng)}",
                f"{indent}except {rng.choice(ERRORS)}:", f"{indent}    {_ident(rng)} = None"]
    return [f"{indent}{_ident(rng)}.append({_expr(rng)})"]


def _function(rng: random.Random, method: bool) -> list[str]:
    indent = "    " if method else ""
    name = f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}"
    args = ["self"] if method else []
    for _ in range(rng.randint(0, 3)):
        args.append(f"{rng.choice(NOUNS)}: {rng.choice(TYPES)}")
    lines = [f"{indent}def {name}({', '.join(args)}) -> {rng.choice(TYPES)}:",
             f"{indent}    \"\"\"{_sentence(rng, 5, 12)}\"\"\""]
    for _ in range(rng.randint(2, 7)):
        lines += _stmt(rng, indent + "    ", 0)
    lines.append(f"{indent}    return {_ident(rng)}")
    return lines


def python_module(rng: random.Random, target_lines: int) -> str:
    lines = [f"\"\"\"{_sentence(rng, 6, 14)}\"\"\"", "", "from __future__ import annotations", ""]
    for m in sorted(rng.sample(MODULES, rng.randint(2, 5))):
        lines.append(f"import {m}")
    lines += ["from typing import Any, Optional, Sequence", "", "logger = logging.getLogger(__name__)", ""]
    lines.append(f"{rng.choice(ADJS).upper()}_{rng.choice(NOUNS).upper()} = {rng.randint(2, 5000)}")
    lines.append("")
    while len(lines) < target_lines:
        lines.append("")
        if rng.random() < 0.3:
            cls = "".join(w.capitalize() for w in (rng.choice(ADJS), rng.choice(NOUNS)))
            lines += [f"class {cls}:", f"    \"\"\"{_sentence(rng, 5, 10)}\"\"\"", ""]
            for _ in range(rng.randint(1, 3)):
                lines += _function(rng, True) + [""]
        else:
            lines += _function(rng, False)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------
# a project: a small tree of files that sessions read and edit


class Workspace:
    def __init__(self, rng: random.Random, name: str):
        self.root = f"/workspace/{name}"
        self.files: dict[str, str] = {}
        for _ in range(rng.randint(10, 18)):
            d = rng.choice(DIRS)
            stem = f"{rng.choice(NOUNS)}_{rng.choice(['utils', 'service', 'models', 'api', 'store', 'core'])}"
            if d == "tests":
                stem = "test_" + stem
            rel = f"{d}/{stem}.py"
            self.files[rel] = python_module(rng, rng.randint(40, 260))

    def abspath(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def copy(self) -> "Workspace":
        w = Workspace.__new__(Workspace)
        w.root = self.root
        w.files = dict(self.files)
        return w


def structured_patch(before: str, after: str) -> list[dict]:
    a = before.split("\n")
    b = after.split("\n")
    if a and a[-1] == "":
        a.pop()
    if b and b[-1] == "":
        b.pop()
    out = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(3):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        lines = []
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                lines += [" " + x for x in a[a1:a2]]
                continue
            if tag in ("replace", "delete"):
                lines += ["-" + x for x in a[a1:a2]]
            if tag in ("replace", "insert"):
                lines += ["+" + x for x in b[b1:b2]]
        out.append({"oldStart": i1 + 1, "oldLines": i2 - i1, "newStart": j1 + 1, "newLines": j2 - j1, "lines": lines})
    return out


def numbered(text: str) -> str:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return "\n".join(f"{i:>6}\t{ln}" for i, ln in enumerate(lines, 1))


# --------------------------------------------------------------------------
# one session


class Session:
    def __init__(self, rng: random.Random, ws: Workspace, session_id: str, start: dt.datetime):
        self.rng = rng
        self.ws = ws
        self.sid = session_id
        self.t = start
        self.rows: list[dict] = []
        self.parent: str | None = None
        self.prompt_id: str | None = None
        self.branch = rng.choice(["main", "main", f"feature/{rng.choice(VERBS)}-{rng.choice(NOUNS)}"])
        self.cache_read = rng.randint(8000, 20000)

    def tick(self, lo: float, hi: float) -> str:
        self.t += dt.timedelta(milliseconds=int(self.rng.uniform(lo, hi) * 1000))
        return _ts(self.t)

    def _common(self) -> dict:
        return {"userType": "external", "entrypoint": "cli", "cwd": self.ws.root, "sessionId": self.sid,
                "version": CLI_VERSION, "gitBranch": self.branch}

    def prompt(self, text: str) -> None:
        self.prompt_id = _uuid(self.rng)
        uid = _uuid(self.rng)
        row = {"parentUuid": self.parent, "isSidechain": False, "promptId": self.prompt_id, "type": "user",
               "message": {"role": "user", "content": text}, "uuid": uid, "timestamp": self.tick(5, 90),
               "permissionMode": "default", "promptSource": "typed", **self._common()}
        self.rows.append(row)
        self.parent = uid

    def _usage(self, out_tokens: int) -> dict:
        rng = self.rng
        inp = rng.choice([2, 2, 3, rng.randint(3, 5000)])
        create = rng.randint(50, 6000)
        read = self.cache_read
        self.cache_read += create
        return {
            "input_tokens": inp, "cache_creation_input_tokens": create, "cache_read_input_tokens": read,
            "output_tokens": out_tokens,
            "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
            "service_tier": "standard",
            "cache_creation": {"ephemeral_1h_input_tokens": create, "ephemeral_5m_input_tokens": 0},
            "inference_geo": "not_available",
            "iterations": [{"input_tokens": inp, "output_tokens": out_tokens, "cache_read_input_tokens": read,
                            "cache_creation_input_tokens": create,
                            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": create},
                            "type": "message"}],
            "speed": "standard",
        }

    def llm_call(self, blocks: list[dict], stop: str) -> list[str]:
        """One assistant message: one row per content block. Returns row uuids."""
        mid = "msg_01" + _b62(self.rng, 22)
        req = "req_011C" + _b62(self.rng, 20)
        usage = self._usage(self.rng.randint(20, 900))
        uuids = []
        self.tick(1, 12)
        for b in blocks:
            uid = _uuid(self.rng)
            row = {"parentUuid": self.parent, "isSidechain": False,
                   "message": {"model": MODEL, "id": mid, "type": "message", "role": "assistant", "content": [b],
                               "stop_reason": stop, "stop_sequence": None, "stop_details": None,
                               "usage": usage, "diagnostics": None},
                   "requestId": req, "type": "assistant", "uuid": uid, "timestamp": self.tick(0.05, 1.5),
                   **self._common()}
            self.rows.append(row)
            self.parent = uid
            uuids.append(uid)
        return uuids

    def tool_result(self, call_id: str, content: str, tur: dict, source_uuid: str, is_error: bool | None = None) -> None:
        block = {"tool_use_id": call_id, "type": "tool_result", "content": content}
        if is_error is not None:
            block["is_error"] = is_error
        uid = _uuid(self.rng)
        row = {"parentUuid": self.parent, "isSidechain": False, "promptId": self.prompt_id, "type": "user",
               "message": {"role": "user", "content": [block]}, "uuid": uid, "timestamp": self.tick(0.1, 20),
               "toolUseResult": tur, "sourceToolAssistantUUID": source_uuid, **self._common()}
        self.rows.append(row)
        self.parent = uid

    # -- tools ---------------------------------------------------------------

    def pre_blocks(self) -> list[dict]:
        rng = self.rng
        blocks = []
        if rng.random() < 0.35:
            blocks.append({"type": "thinking", "thinking": _prose(rng, rng.randint(0, 4)) if rng.random() < 0.6 else "",
                           "signature": base64.b64encode(rng.randbytes(rng.randint(180, 700))).decode()})
        if rng.random() < 0.5:
            blocks.append({"type": "text", "text": _prose(rng, rng.randint(1, 3))})
        return blocks

    def tool_step(self) -> None:
        rng = self.rng
        r = rng.random()
        if r < 0.33:
            self.read()
        elif r < 0.63:
            self.edit()
        elif r < 0.72:
            self.write()
        else:
            self.bash()

    def _call(self, name: str, inp: dict) -> tuple[str, str]:
        call_id = "toolu_01" + _b62(self.rng, 22)
        blocks = self.pre_blocks() + [{"type": "tool_use", "id": call_id, "name": name, "input": inp,
                                       "caller": {"type": "direct"}}]
        uuids = self.llm_call(blocks, "tool_use")
        return call_id, uuids[-1]

    def read(self) -> None:
        rel = self.rng.choice(sorted(self.ws.files))
        path = self.ws.abspath(rel)
        call_id, src = self._call("Read", {"file_path": path})
        text = self.ws.files[rel]
        n = text.count("\n") + (0 if text.endswith("\n") else 1)
        self.tool_result(call_id, numbered(text), {
            "type": "text",
            "file": {"filePath": path, "content": text, "numLines": n, "startLine": 1, "totalLines": n},
        }, src)

    def edit(self) -> None:
        rng = self.rng
        rel = rng.choice(sorted(self.ws.files))
        path = self.ws.abspath(rel)
        original = self.ws.files[rel]
        lines = original.split("\n")
        # a unique run of 2-6 lines to replace
        for _ in range(20):
            i = rng.randrange(0, max(1, len(lines) - 6))
            old = "\n".join(lines[i : i + rng.randint(2, 6)])
            if old.strip() and original.count(old) == 1:
                break
        else:
            self.read()
            return
        indent = " " * (len(old) - len(old.lstrip(" ")))
        new_lines = [ln for _ in range(rng.randint(1, 4)) for ln in _stmt(rng, indent, 1)]
        if rng.random() < 0.5:
            new = old + "\n" + "\n".join(new_lines)
        else:
            new = "\n".join(new_lines)
        updated = original.replace(old, new, 1)
        inp = {"replace_all": False, "file_path": path, "old_string": old, "new_string": new}
        call_id, src = self._call("Edit", inp)
        self.ws.files[rel] = updated
        self.tool_result(
            call_id,
            f"The file {path} has been updated successfully. (file state is current in your context — no need to Read it back)",
            {"filePath": path, "oldString": old, "newString": new, "originalFile": original,
             "structuredPatch": structured_patch(original, updated), "userModified": False, "replaceAll": False},
            src,
        )

    def write(self) -> None:
        rng = self.rng
        if rng.random() < 0.6:
            rel = f"{rng.choice(DIRS)}/{rng.choice(VERBS)}_{rng.choice(NOUNS)}_{rng.randint(1, 999)}.py"
        else:
            rel = rng.choice(sorted(self.ws.files))
        path = self.ws.abspath(rel)
        content = python_module(rng, rng.randint(20, 120))
        call_id, src = self._call("Write", {"file_path": path, "content": content})
        original = self.ws.files.get(rel)
        self.ws.files[rel] = content
        if original is None:
            tur = {"type": "create", "filePath": path, "content": content, "structuredPatch": [], "originalFile": None}
            msg = f"File created successfully at: {path}"
        else:
            tur = {"type": "update", "filePath": path, "content": content,
                   "structuredPatch": structured_patch(original, content), "originalFile": original}
            msg = f"The file {path} has been updated successfully."
        self.tool_result(call_id, msg, tur, src)

    def bash(self) -> None:
        rng = self.rng
        files = sorted(self.ws.files)
        kind = rng.choice(["pytest", "pytest", "grep", "git", "ls", "compile"])
        err = False
        if kind == "pytest":
            tests = [f for f in files if f.startswith("tests/")] or files[:3]
            cmd, desc = "python -m pytest -q tests/ 2>&1 | tail -40", "Run the test suite"
            out = []
            for f in tests:
                out.append(f"{f} " + "".join(rng.choice("....F.s") for _ in range(rng.randint(5, 40))))
            failed = rng.random() < 0.3
            if failed:
                name = f"test_{rng.choice(VERBS)}_{rng.choice(NOUNS)}"
                out += ["", "=" * 30 + " FAILURES " + "=" * 30, f"_____ {name} _____", "",
                        f"    def {name}():", f">       assert {_expr(rng)} == {rng.randint(0, 9)}",
                        f"E       AssertionError: assert {rng.randint(10, 99)} == {rng.randint(0, 9)}", "",
                        f"{rng.choice(tests)}:{rng.randint(10, 300)}: AssertionError"]
            out.append(f"{rng.randint(20, 400)} passed, {1 if failed else 0} failed, "
                       f"{rng.randint(0, 5)} skipped in {rng.uniform(0.5, 30):.2f}s")
            stdout = "\n".join(out)
            err = failed
        elif kind == "grep":
            word = rng.choice(NOUNS)
            cmd, desc = f"grep -rn \"{word}\" src/ | head -30", f"Find uses of {word}"
            out = []
            for _ in range(rng.randint(3, 30)):
                f = rng.choice(files)
                ln = rng.choice(self.ws.files[f].split("\n")) or word
                out.append(f"{f}:{rng.randint(1, 250)}:{ln}")
            stdout = "\n".join(out)
        elif kind == "git":
            cmd, desc = "git status --short && git diff --stat", "Show working tree changes"
            ch = rng.sample(files, min(len(files), rng.randint(1, 6)))
            stdout = "\n".join(f" M {f}" for f in ch) + "\n" + "\n".join(
                f" {f} | {rng.randint(1, 40)} {'+' * rng.randint(1, 20)}{'-' * rng.randint(0, 8)}" for f in ch
            ) + f"\n {len(ch)} files changed, {rng.randint(1, 200)} insertions(+), {rng.randint(0, 90)} deletions(-)"
        elif kind == "ls":
            cmd, desc = "ls -la src/ tests/", "List source folders"
            stdout = "\n".join(
                f"-rw-r--r-- 1 dev dev {len(self.ws.files[f]):>6} May {rng.randint(1, 28):>2} "
                f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} {f.rsplit('/', 1)[-1]}" for f in files
            )
        else:
            f = rng.choice(files)
            cmd, desc = f"python3 -m py_compile {f} && echo \"syntax OK\"", f"Syntax check {f}"
            stdout = "syntax OK"
        call_id, src = self._call("Bash", {"command": cmd, "description": desc})
        tur = {"stdout": stdout, "stderr": "", "interrupted": False, "isImage": False, "noOutputExpected": False}
        content = stdout if not err else f"Exit code 1\n{stdout}"
        self.tool_result(call_id, content, tur, src, is_error=err)

    def final(self) -> None:
        blocks = [{"type": "text", "text": _prose(self.rng, self.rng.randint(2, 6))}]
        self.llm_call(blocks, "end_turn")


def make_session(rng: random.Random, ws: Workspace, steps: int, start: dt.datetime) -> tuple[str, list[dict]]:
    sid = _uuid(rng)
    s = Session(rng, ws, sid, start)
    s.prompt(f"In this repo, {_prose(rng, rng.randint(1, 3))} Then run the tests.")
    done = 0
    while done < steps - 1:
        if done and rng.random() < 0.06:
            s.final()
            done += 1
            s.prompt(_prose(rng, rng.randint(1, 4)))
            continue
        s.tool_step()
        done += 1
    s.final()
    return sid, s.rows


def encode_rows(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows).encode("utf-8")


def project_dir_name(cwd: str) -> str:
    """Claude Code's folder name for a cwd: every non-alphanumeric becomes ``-``."""
    return "".join(c if c.isalnum() or c == "-" else "-" for c in cwd)


def generate(out_dir: Path, sessions: int, steps: int, seed: int = 0, projects: int | None = None,
             jitter: int = 0, base: dt.datetime | None = None) -> list[Path]:
    """Write the sessions; return their paths (sorted). ``base``: when the first one starts."""
    out_dir = Path(out_dir)
    nproj = projects or max(1, min(len(PROJECT_NAMES), sessions // 25 or 1))
    base = base or dt.datetime(2026, 5, 4, 8, 0, 0, tzinfo=dt.timezone.utc)
    spaces = []
    for p in range(nproj):
        name = PROJECT_NAMES[p % len(PROJECT_NAMES)] + (f"-{p // len(PROJECT_NAMES)}" if p >= len(PROJECT_NAMES) else "")
        spaces.append(Workspace(random.Random(f"{seed}:project:{p}"), name))
    paths = []
    for i in range(sessions):
        rng = random.Random(f"{seed}:session:{i}")
        ws = spaces[i % nproj].copy()
        n = steps + (rng.randint(-jitter, jitter) if jitter else 0)
        start = base + dt.timedelta(minutes=37 * i, seconds=rng.randint(0, 59))
        sid, rows = make_session(rng, ws, max(1, n), start)
        folder = out_dir / project_dir_name(ws.root)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{sid}.jsonl"
        path.write_bytes(encode_rows(rows))
        paths.append(path)
    return sorted(paths)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--steps", type=int, default=50, help="LLM calls (assistant messages) per session")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--projects", type=int, default=None, help="default: one per 25 sessions, at most 16")
    ap.add_argument("--jitter", type=int, default=0, help="vary steps per session by up to +-J")
    a = ap.parse_args(argv)
    if a.sessions < 0 or a.steps < 1:
        ap.error("--sessions must be >= 0 and --steps >= 1")
    paths = generate(a.out_dir, a.sessions, a.steps, a.seed, a.projects, a.jitter)
    total = sum(os.path.getsize(p) for p in paths)
    print(f"wrote {len(paths)} session(s), {total / 1e6:.1f} MB, under {a.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
