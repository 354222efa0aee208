"""Pi coding agent sessions (``~/.pi/agent/sessions/--<cwd>--/*.jsonl``).

Session format v3: a header row ``{"type": "session", "version": 3, "id",
"timestamp", "cwd"}``, then tree entries with ``id``/``parentId``:
``message`` rows (``message.role`` ``user``, ``assistant`` with content
blocks ``text``/``thinking``/``toolCall`` plus ``provider``, ``model`` and
``usage``, ``toolResult`` with ``toolCallId``/``isError``, and
``bashExecution``/``custom``/summary roles), ``model_change``,
``thinking_level_change``, ``compaction``, ``branch_summary``,
``custom_message`` and bookkeeping rows (``custom``, ``label``,
``session_info``). Older files without ids are read as a linear chain.

``parse`` is a pure function of the bytes. Each user message is a ``user``
step; each assistant message is one LLM call, an ``agent`` step, which
receives its tool results as observations. Messages keep Pi's own ids and
parents (rows the model never sees, such as model changes, are looked
through). ``edit`` and ``write`` calls that succeeded become patches; their
pre-image is known when the session showed the whole file earlier (a full
``read`` result, or an earlier write/edit with known result) and no
possibly-writing ``bash`` command ran since, in which case the post-image
is the pre-image with the edit applied.

Append-stability: a step's record depends only on its rows, counted by
``rev``; steps, messages and patches are only ever added at the end.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from .. import agentfiles
from . import common, patchtext
from .common import (
    UNKNOWN, ParserState, StepState, call_input, check_id, diff_path, read_jsonl, resolve_path, text_of, token_usage,
)
from .session import Message, ParsedSession, PatchRecord

AGENT = "pi"
SOURCE_FORMAT = "pi-session-jsonl"

_EDIT_TOOLS = ("edit", "multiedit", "multi_edit", "str_replace")
_WRITE_TOOLS = ("write", "create")
_READ_TOOLS = ("read", "read_file")
_SHELL_TOOLS = ("bash", "shell")
_VERSION_KEYS = ("pi_version", "piVersion", "appVersion", "agentVersion", "cliVersion")
# the notices Pi's read tool appends when it shows only part of a file
_PARTIAL_READ = re.compile(
    r"\n\n\[(?:Showing lines \d+|\d+ more lines? in file|Line \d+ is|Use offset=|.*?Use offset=\d+ to continue)[^\n]*\]\s*$"
)


# --------------------------------------------------------------------------
# discovery


def default_root(home: Path, env: Mapping[str, str]) -> Path:
    """``$PI_CODING_AGENT_DIR/sessions`` when set, else ``<home>/.pi/agent/sessions``."""
    return agentfiles.default_root(home, env, "PI_CODING_AGENT_DIR", ".pi/agent", "sessions")


def discover(root: Path) -> list[Path]:
    """Every ``*.jsonl`` file under ``root``, sorted."""
    return common.glob_files(root, "**/*.jsonl")


# --------------------------------------------------------------------------
# helpers


def _text_of(content: Any) -> str | None:
    """The text blocks' text; images as ``[image]``."""
    return text_of(content, images=("image",))


def _only_text(content: Any) -> str | None:
    """The text of a tool result made of text blocks only (else None)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        return None
    parts = []
    for b in content:
        if not isinstance(b, dict) or b.get("type") != "text" or not isinstance(b.get("text"), str):
            return None
        parts.append(b["text"])
    return "".join(parts) if len(parts) == 1 else "\n".join(parts)


def _model_name(provider: Any, model: Any) -> str | None:
    if isinstance(model, str) and model:
        if isinstance(provider, str) and provider:
            return f"{provider}/{model}"
        return model
    return None


def _str_arg(args: dict, *keys: str) -> str | None:
    for k in keys:
        v = args.get(k)
        if isinstance(v, str) and v:
            return v
    return None


def _edits_of(args: dict) -> list[tuple[str, str]] | None:
    raw = args.get("edits")
    pairs: list[tuple[str, str]] = []
    if isinstance(raw, list):
        for e in raw:
            if not isinstance(e, dict):
                return None
            old = e.get("oldText", e.get("old_string", e.get("old_str")))
            new = e.get("newText", e.get("new_string", e.get("new_str")))
            if not isinstance(old, str) or not isinstance(new, str):
                return None
            pairs.append((old, new))
        return pairs or None
    old = args.get("oldText", args.get("old_string", args.get("old_str")))
    new = args.get("newText", args.get("new_string", args.get("new_str")))
    if isinstance(old, str) and isinstance(new, str):
        return [(old, new)]
    return None


# --------------------------------------------------------------------------
# the parser


class _Parser(ParserState):
    def __init__(self, name: str):
        super().__init__(name)
        self.header: dict | None = None
        self.version: str | None = None
        self.cur_provider: str | None = None
        self.cur_model: str | None = None
        self.thinking_level: str | None = None
        self.last_uuid: str | None = None
        self.known: dict[str, str | None] = {}  # path -> known content (None: absent)

    def run(self, data: bytes) -> ParsedSession:
        rows, self.skipped = read_jsonl(data)
        self.records = len(rows)
        for no, obj in rows:
            if obj.get("type") == "session" and self.header is None:
                self.header = obj
        if self.header is not None:
            cwd = self.header.get("cwd")
            self.cwd = cwd if isinstance(cwd, str) and cwd else None
            for k in _VERSION_KEYS:
                if isinstance(self.header.get(k), str) and self.header[k]:
                    self.version = self.header[k]
                    break
        for no, obj in rows:
            self.row(no, obj)
        return self.result()

    # -- rows --------------------------------------------------------------

    def row(self, no: int, obj: dict) -> None:
        kind = self.count_row(obj.get("type"))
        t = self.stamp(obj.get("timestamp"))
        if kind == "session":
            return
        uuid = obj.get("id")
        uuid = uuid if isinstance(uuid, str) and uuid else None
        if self.duplicate(uuid):
            return
        if kind == "model_change":
            provider, model = obj.get("provider"), obj.get("modelId", obj.get("model"))
            if isinstance(model, str) and model:
                self.cur_provider = provider if isinstance(provider, str) else None
                self.cur_model = model
                if self.model is None:
                    self.model = _model_name(provider, model)
            self.look_through(uuid, obj)
        elif kind == "thinking_level_change":
            if self.thinking_level is None and isinstance(obj.get("thinkingLevel"), str):
                self.thinking_level = obj["thinkingLevel"]
            self.look_through(uuid, obj)
        elif kind == "message" and isinstance(obj.get("message"), dict):
            self.message_row(no, uuid, obj, obj["message"], t)
        elif kind == "compaction":
            self.compacted(t, None, obj.get("tokensBefore"))
            self.summary_rows += 1
            content = {k: obj.get(k) for k in ("summary", "firstKeptEntryId", "tokensBefore") if k in obj}
            self.add_message(no, uuid, obj, "summary", content, t, "compaction_summary", root=True)
        elif kind == "branch_summary":
            self.add_message(no, uuid, obj, "summary", {k: obj.get(k) for k in ("summary", "fromId") if k in obj},
                             t, "meta")
        elif kind == "custom_message":
            self.add_message(no, uuid, obj, "user", {k: obj.get(k) for k in ("customType", "content") if k in obj},
                             t, "meta")
        else:  # custom, label, session_info...: bookkeeping the model never sees
            self.look_through(uuid, obj)

    # -- context tree --------------------------------------------------------

    def resolve(self, obj: dict) -> str | None:
        if "parentId" not in obj and "id" not in obj:
            return self.last_uuid  # pre-tree files: a linear chain
        return self.parent_of(obj.get("parentId"), self.last_uuid)

    def look_through(self, uuid: str | None, obj: dict) -> None:
        if uuid is not None:
            self.alias[uuid] = self.resolve(obj)

    def add_message(self, no: int, uuid: str | None, obj: dict, role: str, content: Any, t: str | None,
                    kind: str, root: bool = False) -> str:
        parent = None if root else self.resolve(obj)
        uuid = uuid or f"L{no}"
        self.messages.append(Message(uuid=uuid, parent=parent, role=role, content=content, time=t, kind=kind))
        self.msg_ids.add(uuid)
        self.last_uuid = uuid
        return uuid

    # -- messages ------------------------------------------------------------

    def message_row(self, no: int, uuid: str | None, obj: dict, msg: dict, t: str | None) -> None:
        role = msg.get("role")
        if role == "user":
            self.add_message(no, uuid, obj, "user", msg, t, "message")
            step = StepState(len(self.steps), "user", t, no)
            step.content = _text_of(msg.get("content"))
            self.steps.append(step)
        elif role == "assistant":
            self.assistant(no, uuid, obj, msg, t)
        elif role == "toolResult":
            self.add_message(no, uuid, obj, "tool", msg, t, "tool_result")
            self.tool_result(no, msg, t)
        elif role in ("compactionSummary", "branchSummary"):
            self.add_message(no, uuid, obj, "summary", msg, t,
                             "compaction_summary" if role == "compactionSummary" else "meta",
                             root=role == "compactionSummary")
        else:  # bashExecution (a command the user ran), custom extension messages
            self.add_message(no, uuid, obj, "user", msg, t, "meta")
            if role == "bashExecution" and not patchtext.is_read_only_command(msg.get("command")):
                self.known.clear()

    def assistant(self, no: int, uuid: str | None, obj: dict, msg: dict, t: str | None) -> None:
        leaf = self.resolve(obj)
        blocks = msg.get("content") if isinstance(msg.get("content"), list) else []
        blocks = [b for b in blocks if isinstance(b, dict)]
        reasoning = bool(blocks) and all(b.get("type") == "thinking" for b in blocks)
        self.add_message(no, uuid, obj, "assistant", msg, t, "reasoning" if reasoning else "message")
        step = StepState(len(self.steps), "agent", t, no)
        step.agent_role = "main"
        step.leaf = leaf
        model = _model_name(msg.get("provider"), msg.get("model"))
        step.model = model or _model_name(self.cur_provider, self.cur_model)
        if self.model is None and model:
            self.model = model
        usage = msg.get("usage")
        if isinstance(usage, dict):
            step.usage = token_usage(usage, input="input", output="output", cache_read="cacheRead",
                                     cache_write="cacheWrite")
            cost = usage.get("cost")
            self.record_cost(step, cost.get("total") if isinstance(cost, dict) else cost)
        if isinstance(msg.get("content"), str) and msg["content"]:
            step.texts.append(msg["content"])
        for b in blocks:
            if not step.add_text(b) and b.get("type") == "toolCall":
                self.tool_call(no, step, b, t)
        self.steps.append(step)
        stop = msg.get("stopReason")
        self.terminal_state = {"aborted": "interrupted", "error": "error"}.get(stop) if isinstance(stop, str) else None

    def tool_call(self, no: int, step: StepState, block: dict, t: str | None) -> None:
        call_id = block.get("id")
        call_id = call_id if isinstance(call_id, str) and call_id else f"L{no}#{len(step.calls)}"
        if call_id in self.calls:
            return
        name = block.get("name") if isinstance(block.get("name"), str) else ""
        args = call_input(block.get("arguments"))
        writes = name.lower() in _SHELL_TOOLS and not patchtext.is_read_only_command(args.get("command"))
        if writes:
            self.known.clear()
        self.add_call(step, call_id, name, args, t, writes=writes)

    def tool_result(self, no: int, msg: dict, t: str | None) -> None:
        call_id = msg.get("toolCallId")
        call = self.answer(call_id)
        if call is None:
            return
        is_error = msg.get("isError") is True
        self.observe(no, call_id, call, _text_of(msg.get("content")), "tool_error" if is_error else None, t)
        if call["writes"]:
            self.known.clear()
        if is_error:
            return
        lname = call["name"].lower()
        args = call["input"]
        raw_path = _str_arg(args, "path", "file_path", "filePath")
        if raw_path is None:
            return
        path = resolve_path(raw_path, None, self.cwd)
        if lname in _READ_TOOLS:
            self.read_result(path, args, msg)
        elif lname in _EDIT_TOOLS:
            self.patches.append(self.edit_patch(path, call_id, call, msg, t))
        elif lname in _WRITE_TOOLS:
            rec = self.write_patch(path, call_id, call, t)
            if rec is not None:
                self.patches.append(rec)

    def read_result(self, path: str, args: dict, msg: dict) -> None:
        offset, limit = args.get("offset"), args.get("limit")
        if (offset not in (None, 0, 1)) or limit is not None:
            return
        text = _only_text(msg.get("content"))
        if text is None or _PARTIAL_READ.search(text):
            self.known.pop(path, None)
            return
        self.known[path] = text

    # -- patches -------------------------------------------------------------

    def edit_patch(self, path: str, call_id: str, call: dict, msg: dict, t: str | None) -> PatchRecord:
        rec = self.new_patch(call, call_id, path, t or call["time"] or "")
        dpath = diff_path(path, self.cwd)
        details = msg.get("details") if isinstance(msg.get("details"), dict) else {}
        reported = details.get("patch") if isinstance(details.get("patch"), str) else None
        prev = self.known.get(path, UNKNOWN)
        edits = _edits_of(call["input"])
        after = None
        if isinstance(prev, str) and edits is not None:
            after = patchtext.apply_replacements(prev, edits, call["input"].get("replace_all") is True)
            if after is not None and reported and not patchtext.check_unified_against(reported, prev):
                after = None  # Pi saw a different file than the one we know
        if after is not None:
            rec.before = prev.encode("utf-8")
            rec.after = after.encode("utf-8")
            rec.hunk_diff = patchtext.unified_diff(dpath, dpath, prev, after)
            self.known[path] = after
        else:
            rec.before_known = rec.after_known = False
            rec.hunk_diff = patchtext.normalize_unified(reported, dpath) if reported else None
            self.known.pop(path, None)
        return rec

    def write_patch(self, path: str, call_id: str, call: dict, t: str | None) -> PatchRecord | None:
        content = call["input"].get("content")
        if not isinstance(content, str):
            return None
        rec = self.new_patch(call, call_id, path, t or call["time"] or "")
        dpath = diff_path(path, self.cwd)
        prev = self.known.get(path, UNKNOWN)
        rec.after = content.encode("utf-8")
        if isinstance(prev, str):
            rec.before = prev.encode("utf-8")
            rec.hunk_diff = patchtext.unified_diff(dpath, dpath, prev, content)
        else:
            # Pi's write does not say whether the file existed; it is meant for
            # new files, so the diff creates it, but the pre-image is unknown
            rec.operation = "create"
            rec.before_known = prev is None
            rec.hunk_diff = patchtext.new_file_diff(dpath, content)
        self.known[path] = content
        return rec

    # -- result --------------------------------------------------------------

    def result(self) -> ParsedSession:
        if self.header is None:
            raise self.not_a_session("Pi session", "session header row")
        sid = check_id(self.header.get("id"), self.name)
        span = self.span(f"Pi session {sid}")
        metadata = self.metadata(SOURCE_FORMAT)
        if isinstance(self.header.get("version"), int):
            metadata["session_format_version"] = self.header["version"]
        if isinstance(self.header.get("parentSession"), str) and self.header["parentSession"]:
            metadata["parent_session"] = Path(self.header["parentSession"]).name
        if self.thinking_level:
            metadata["thinking_level"] = self.thinking_level
        self.add_repairs(metadata)
        task = next((s.content for s in self.steps if s.role == "user" and s.content and s.content.strip()), None)
        return self.session(AGENT, sid, span, metadata, agent_version=self.version, task=task)


def parse(data: bytes, name: str) -> ParsedSession:
    """Parse one Pi session file; see the module docstring."""
    return _Parser(name).run(data)
