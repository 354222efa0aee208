"""Claude Code transcripts (``~/.claude/projects/<slug>/<session>.jsonl``).

``parse`` turns a transcript's bytes into a ``ParsedSession``: TraceRecord
steps (one per LLM call, i.e. per ``message.id``), the context tree (one
``Message`` per row with a ``uuid``) and the file changes made by ``Edit``,
``MultiEdit`` and ``Write``. It is a pure function of the bytes: no clock,
no filesystem, no environment (``name`` only appears in error messages).
Bad lines are skipped and reported, never raised; only a file with no
session row at all raises ``SessionParseError``.

Decisions worth knowing:

- Append-stability: a step's record depends only on the rows that
  contribute to it (its assistant rows and the tool results it receives)
  and ``rev`` counts them, so parsing a longer version of the same file
  never changes an earlier step without raising its ``rev``. Patches are
  numbered in the order their successful tool results appear, so a longer
  file only appends patches.
- Context tree: ``Message.parent`` always names an earlier Message or is
  None. Rows that are not messages (``progress``...) are looked through; a
  ``parentUuid`` naming a row absent from the file falls back to the last
  message of the same chain (main or sidechain) in file order. A compaction
  starts a fresh chain: the ``compact_boundary`` row is a root and the
  compact summary hangs off it (``logicalParentUuid`` is never followed).
  Tool-result rows have role ``tool``; system rows, ``isMeta`` rows,
  harness output (``<local-command-stdout>``...) and attachments are kind
  ``meta`` and never steps.
- Sub-agent files (``<session>/subagents/agent-<id>.jsonl``, every row
  ``isSidechain`` with an ``agentId``) repeat the parent's ``sessionId``;
  their session id is ``<sessionId>-agent-<agentId>`` so they make their
  own trace, and a ``Task`` result naming that agent sets the calling
  step's ``subagent_trajectory_ref`` to it. Inline sidechains (older
  layout) stay in the session as ``call_type="subagent"`` steps whose
  ``parent_step`` is the step that issued the matching ``Task`` prompt.
- ``hunk_diff`` (only when before or after is unknown) holds the ``@@``
  hunks of Claude's ``structuredPatch`` without ``---``/``+++`` headers:
  the parser only knows the absolute path, the emitter adds the headers.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any, Mapping

import orjson

from ..errors import RefusedError
from ..events import normalize_time
from ..ids import check_component
from .session import Message, ParsedSession, ParsedStep, PatchRecord, SessionParseError

AGENT = "claude-code"
SOURCE_FORMAT = "claude-code-jsonl"

_EDIT_TOOLS = ("Edit", "MultiEdit", "Write")
_TASK_TOOLS = ("Task", "Agent")
_SYNTHETIC_MODEL = "<synthetic>"
_MESSAGE_TYPES = ("user", "assistant", "system", "summary", "attachment")
_THINKING_BLOCKS = ("thinking", "redacted_thinking")
# User rows that are harness output rather than something the user typed.
_HARNESS_PREFIXES = (
    "<local-command-stdout>", "<local-command-stderr>", "<local-command-caveat>",
    "<bash-stdout>", "<bash-stderr>",
)
# ...and rows the user typed that are commands rather than a task.
_COMMAND_PREFIXES = ("<command-name>", "<command-message>", "<bash-input>") + _HARNESS_PREFIXES
SUMMARY_CHARS = 200


# --------------------------------------------------------------------------
# discovery


def default_root(home: Path, env: Mapping[str, str]) -> Path:
    """``$CLAUDE_CONFIG_DIR/projects`` when set, else ``<home>/.claude/projects``."""
    config = env.get("CLAUDE_CONFIG_DIR") or ""
    if config:
        if config == "~" or config.startswith("~/"):
            return Path(home) / config[2:] / "projects"
        return Path(config) / "projects"
    return Path(home) / ".claude" / "projects"


def discover(root: Path) -> list[Path]:
    """Every ``*.jsonl`` file under ``root`` (sub-agent files included).

    Sorted by path text, so a session file comes just before its
    ``<session>/subagents/`` files.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in files:
            if name.endswith(".jsonl"):
                path = Path(folder) / name
                if path.is_file():
                    found.append(path)
    return sorted(found, key=lambda p: p.as_posix())


# --------------------------------------------------------------------------
# small helpers


def _time_key(t: str) -> tuple[str, str]:
    """Order key of a normalized ``...Z`` time (fractions of any length)."""
    body = t[:-1]
    base, _, frac = body.partition(".")
    return base, frac.ljust(9, "0")


def _to_datetime(t: str) -> _dt.datetime | None:
    base, frac = _time_key(t)
    try:
        return _dt.datetime.fromisoformat(f"{base}.{frac[:6]}+00:00")
    except ValueError:
        return None


def _millis_between(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    a, b = _to_datetime(start), _to_datetime(end)
    if a is None or b is None or b < a:
        return None
    return int((b - a) / _dt.timedelta(milliseconds=1))


def _fix_surrogates(obj: Any) -> Any:
    """Replace lone UTF-16 surrogates (valid JSON escapes, invalid UTF-8)."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
            return obj
        except UnicodeEncodeError:
            return obj.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(obj, list):
        return [_fix_surrogates(v) for v in obj]
    if isinstance(obj, dict):
        return {_fix_surrogates(k): _fix_surrogates(v) for k, v in obj.items()}
    return obj


def _load_line(raw: bytes) -> tuple[Any, str | None]:
    """(object, None) or (None, reason)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8"
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson refuses lone surrogate escapes that the json module accepts.
        try:
            obj = _fix_surrogates(json.loads(raw.decode("utf-8")))
        except ValueError:
            return None, "invalid JSON"
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    return obj, None


def _text_of(content: Any) -> str | None:
    """A message's text: the string itself, or its text blocks joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            b["text"]
            for b in content
            if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        ]
        if parts:
            return "\n".join(parts)
    return None


def _blocks(content: Any) -> list[dict]:
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    if isinstance(content, str) and content:
        return [{"type": "text", "text": content}]
    return []


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return int(value)


def _safe_id(value: str, what: str, name: str) -> str:
    try:
        return check_component(value, what)
    except RefusedError as exc:
        raise SessionParseError(
            f"{name}: unsafe {what} {value!r} in the transcript ({exc.message}); refusing to parse it"
        ) from None


def _hunk_diff(structured: Any) -> str | None:
    """The ``@@`` hunks of a Claude ``structuredPatch`` (no file headers)."""
    if not isinstance(structured, list):
        return None
    out: list[str] = []
    for h in structured:
        if not isinstance(h, dict):
            continue
        out.append(
            f"@@ -{_int(h.get('oldStart'))},{_int(h.get('oldLines'))}"
            f" +{_int(h.get('newStart'))},{_int(h.get('newLines'))} @@"
        )
        out.extend(str(line) for line in h.get("lines") or [] if isinstance(line, str))
    return "\n".join(out) + "\n" if out else None


def _replace(text: str, old: Any, new: Any, replace_all: Any) -> str | None:
    """Apply one Edit to ``text``; None when it cannot apply."""
    if not isinstance(old, str) or not isinstance(new, str):
        return None
    if old == "":
        return new if text == "" else None
    if old not in text:
        return None
    return text.replace(old, new) if replace_all is True else text.replace(old, new, 1)


# --------------------------------------------------------------------------
# the parser


class _Step:
    __slots__ = (
        "index", "role", "side", "time", "texts", "thinks", "model", "calls", "obs", "usage", "rev", "leaf", "content", "parent_step", "traj_ref",
    )

    def __init__(self, index: int, role: str, side: bool, time: str | None):
        self.index = index
        self.role = role
        self.side = side
        self.time = time
        self.texts: list[str] = []
        self.thinks: list[str] = []
        self.model: str | None = None
        self.calls: list[dict] = []
        self.obs: list[dict] = []
        self.usage: dict | None = None
        self.rev = 0
        self.leaf: str | None = None
        self.content: str | None = None
        self.parent_step: int | None = None
        self.traj_ref: str | None = None

    def record(self) -> dict[str, Any]:
        usage = self.usage or {}
        return {
            "step_index": self.index,
            "role": self.role,
            "content": ("\n".join(self.texts) or None) if self.role == "agent" else self.content,
            "reasoning_content": "\n".join(self.thinks) or None,
            "model": self.model,
            "system_prompt_hash": None,
            "agent_role": "subagent" if self.side else "main",
            "parent_step": self.parent_step,
            "call_type": "subagent" if self.side else "main",
            "subagent_trajectory_ref": self.traj_ref,
            "tools_available": [],
            "tool_calls": [dict(c) for c in self.calls],
            "observations": [dict(o) for o in self.obs],
            "snippets": [],
            "token_usage": {
                "input_tokens": _int(usage.get("input_tokens")),
                "output_tokens": _int(usage.get("output_tokens")),
                "cache_read_tokens": _int(usage.get("cache_read_input_tokens")),
                "cache_write_tokens": _int(usage.get("cache_creation_input_tokens")),
                "prefix_reuse_tokens": 0,
            },
            "timestamp": self.time,
        }


class _Parser:
    def __init__(self, name: str):
        self.name = name
        self.records = 0
        self.skipped: list[tuple[int, str]] = []
        self.times: list[str] = []
        self.last_time: str | None = None
        self.session_id: str | None = None
        self.other_sessions: set[str] = set()
        self.agent_id: str | None = None
        self.subagent_file: bool | None = None
        self.cwd: str | None = None
        self.version: str | None = None
        self.branch: str | None = None
        self.model: str | None = None
        self.side_model: str | None = None
        self.git_commit: str | None = None
        self.task: str | None = None
        self.task_fallback: str | None = None
        self.hook_rows = 0
        self.row_types: dict[str, int] = {}
        self.compactions = 0
        self.boundaries: set[str] = set()
        self.repaired_parents = 0
        self.duplicate_rows = 0
        self.orphan_results = 0
        self.steps: list[_Step] = []
        self.step_by_msg: dict[str, _Step] = {}
        self.tools: dict[str, dict] = {}  # tool_use id -> {step, name, input, time}
        self.messages: list[Message] = []
        self.msg_by_uuid: dict[str, Message] = {}
        self.alias: dict[str, str | None] = {}  # non-message row uuid -> resolved parent
        self.last_uuid: dict[bool, str | None] = {False: None, True: None}
        self.side_root: dict[str, str] = {}  # sidechain message uuid -> root uuid
        self.root_parent_step: dict[str, int] = {}
        self.pending_tasks: list[tuple[str, int]] = []  # (Task prompt, step index)
        self.patches: list[PatchRecord] = []

    # -- rows ------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        lines = data.split(b"\n")
        if lines and lines[0].startswith(b"\xef\xbb\xbf"):
            lines[0] = lines[0][3:]
        for no, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            obj, reason = _load_line(raw)
            if reason is not None:
                self.skipped.append((no, reason))
                continue
            self.records += 1
            self.row(obj)

    def row(self, obj: dict) -> None:
        kind = obj.get("type")
        kind = kind if isinstance(kind, str) else "?"
        self.row_types[kind] = self.row_types.get(kind, 0) + 1
        t = normalize_time(obj.get("timestamp"))
        if t is not None:
            self.times.append(t)
            self.last_time = t
        if kind == "opentraces_hook":
            self.hook_row(obj)
            return
        if kind not in _MESSAGE_TYPES:
            uuid = obj.get("uuid")
            if isinstance(uuid, str) and uuid not in self.msg_by_uuid:
                self.alias[uuid] = self.resolve(obj.get("parentUuid"), bool(obj.get("isSidechain")))
            return
        if kind in ("user", "assistant", "system"):
            self.header(obj)
        uuid = obj.get("uuid")
        if isinstance(uuid, str) and (uuid in self.msg_by_uuid or uuid in self.alias):
            self.duplicate_rows += 1
            return
        t = t or self.last_time
        if kind == "user":
            self.user_row(obj, t)
        elif kind == "assistant":
            self.assistant_row(obj, t)
        elif kind == "system":
            boundary = obj.get("subtype") == "compact_boundary"
            msg = self.add_message(obj, "system", obj.get("content"), t, "meta", root=boundary)
            if boundary:
                self.compactions += 1
                if msg is not None:
                    self.boundaries.add(msg.uuid)
        elif kind == "summary":
            self.add_message(obj, "summary", obj.get("summary"), t, "compaction_summary", root=True)
        else:  # attachment: context the harness injects for the model
            self.add_message(obj, "user", obj.get("attachment"), t, "meta")

    def header(self, obj: dict) -> None:
        sid = obj.get("sessionId")
        if isinstance(sid, str) and sid:
            if self.session_id is None:
                self.session_id = sid
                agent_id = obj.get("agentId")
                self.subagent_file = bool(obj.get("isSidechain")) and isinstance(agent_id, str) and bool(agent_id)
                if self.subagent_file:
                    self.agent_id = agent_id
            elif sid != self.session_id:
                self.other_sessions.add(sid)
        if self.cwd is None and isinstance(obj.get("cwd"), str) and obj["cwd"]:
            self.cwd = obj["cwd"]
        if self.version is None and isinstance(obj.get("version"), str) and obj["version"]:
            self.version = obj["version"]
        if self.branch is None and isinstance(obj.get("gitBranch"), str) and obj["gitBranch"]:
            self.branch = obj["gitBranch"]

    def hook_row(self, obj: dict) -> None:
        self.hook_rows += 1
        if self.git_commit is not None:
            return
        data = obj.get("data")
        trail = data.get("trail") if isinstance(data, dict) else None
        head = trail.get("git_head") if isinstance(trail, dict) else None
        hexid = head.get("hex") if isinstance(head, dict) else None
        if isinstance(hexid, str) and hexid:
            self.git_commit = hexid

    # -- context tree ------------------------------------------------------

    def resolve(self, raw: Any, side: bool) -> str | None:
        """The Message uuid a row's ``parentUuid`` stands for.

        Rows that are not messages (progress, dropped rows) are looked
        through; a parent that names nothing known falls back to the last
        message of the same chain kind in file order.
        """
        p = raw if isinstance(raw, str) and raw else None
        if p is None:
            return None
        if p in self.alias:
            return self.alias[p]
        if p in self.msg_by_uuid:
            return p
        self.repaired_parents += 1
        return self.last_uuid[side]

    def add_message(
        self, obj: dict, role: str, content: Any, t: str | None, kind: str, *, root: bool = False,
        parent: str | None = None, resolved: bool = False,
    ) -> Message | None:
        uuid = obj.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            return None
        side = bool(obj.get("isSidechain"))
        if not resolved:
            parent = None if root else self.resolve(obj.get("parentUuid"), side)
        msg = Message(uuid=uuid, parent=parent, role=role, content=content, time=t, kind=kind, sidechain=side)
        self.messages.append(msg)
        self.msg_by_uuid[uuid] = msg
        self.last_uuid[side] = uuid
        if side:
            self.side_root[uuid] = self.side_root.get(parent, uuid) if parent else uuid
        return msg

    # -- user rows -----------------------------------------------------------

    def user_row(self, obj: dict, t: str | None) -> None:
        message = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        content = message.get("content")
        side = bool(obj.get("isSidechain"))
        results = [b for b in _blocks(content) if b.get("type") == "tool_result"]
        if results:
            self.add_message(obj, "tool", content, t, "tool_result")
            self.tool_results(obj, results, t)
            return
        if obj.get("isCompactSummary") is True:
            parent = self.resolve(obj.get("parentUuid"), side)
            if parent not in self.boundaries:
                parent = None  # never follow the chain across a compaction
            self.add_message(obj, "user", content, t, "compaction_summary", parent=parent, resolved=True)
            return
        text = _text_of(content)
        harness = text is not None and text.lstrip().startswith(_HARNESS_PREFIXES)
        if obj.get("isMeta") is True or harness:
            self.add_message(obj, "user", content, t, "meta")
            return
        msg = self.add_message(obj, "user", content, t, "message")
        step = _Step(len(self.steps), "user", side, t)
        step.content = text
        step.rev = 1
        if side and msg is not None:
            root = self.side_root.get(msg.uuid, msg.uuid)
            if root == msg.uuid:
                self.link_sidechain(root, text)
            step.parent_step = self.root_parent_step.get(root)
        self.steps.append(step)
        if not side or self.subagent_file:
            if text and text.strip():
                if not text.lstrip().startswith(_COMMAND_PREFIXES):
                    if self.task is None:
                        self.task = text
                elif self.task_fallback is None:
                    self.task_fallback = text

    def link_sidechain(self, root: str, prompt: str | None) -> None:
        """Tie an inline sub-agent chain to the step whose Task call started it."""
        if prompt is None:
            return
        for i, (want, step_index) in enumerate(self.pending_tasks):
            if want == prompt:
                self.root_parent_step[root] = step_index
                del self.pending_tasks[i]
                return

    def tool_results(self, obj: dict, results: list[dict], t: str | None) -> None:
        touched: list[_Step] = []
        tur = obj.get("toolUseResult") if len(results) == 1 else None
        for block in results:
            call_id = block.get("tool_use_id")
            call = self.tools.get(call_id) if isinstance(call_id, str) else None
            if call is None:
                self.orphan_results += 1
                continue
            step = self.steps[call["step"]]
            if call.get("answered"):
                continue
            call["answered"] = True
            text = _text_of(block.get("content"))
            is_error = block.get("is_error") is True
            step.obs.append(
                {
                    "source_call_id": call_id,
                    "content": text,
                    "output_summary": text[:SUMMARY_CHARS] if text else None,
                    "error": "tool_error" if is_error else None,
                }
            )
            for c in step.calls:
                if c["tool_call_id"] == call_id:
                    c["duration_ms"] = _millis_between(call["time"], t)
            if step not in touched:
                touched.append(step)
            if is_error:
                continue
            if call["name"] in _TASK_TOOLS and isinstance(tur, dict) and step.traj_ref is None:
                agent_id = tur.get("agentId")
                if isinstance(agent_id, str) and agent_id and self.session_id:
                    step.traj_ref = f"{self.session_id}-agent-{agent_id}"
            if call["name"] in _EDIT_TOOLS:
                patch = self.patch_for(call, call_id, tur, t)
                if patch is not None:
                    self.patches.append(patch)
        for step in touched:
            step.rev += 1

    # -- assistant rows ------------------------------------------------------

    def assistant_row(self, obj: dict, t: str | None) -> None:
        message = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        blocks = _blocks(message.get("content"))
        side = bool(obj.get("isSidechain"))
        reasoning = bool(blocks) and all(b.get("type") in _THINKING_BLOCKS for b in blocks)
        parent = self.resolve(obj.get("parentUuid"), side)
        self.add_message(
            obj, "assistant", message.get("content"), t, "reasoning" if reasoning else "message",
            parent=parent, resolved=True,
        )
        mid = message.get("id")
        if not isinstance(mid, str) or not mid:
            uuid = obj.get("uuid")
            mid = f"row:{uuid}" if isinstance(uuid, str) else f"row#{self.records}"
        step = self.step_by_msg.get(mid)
        if step is None:
            step = _Step(len(self.steps), "agent", side, t)
            step.leaf = parent
            if side:
                root = self.side_root.get(parent) if parent else None
                if root is not None:
                    step.parent_step = self.root_parent_step.get(root)
            self.steps.append(step)
            self.step_by_msg[mid] = step
        step.rev += 1
        model = message.get("model")
        if isinstance(model, str) and model:
            if step.model is None:
                step.model = model
            if model != _SYNTHETIC_MODEL:
                if side and not self.subagent_file:
                    self.side_model = self.side_model or model
                elif self.model is None:
                    self.model = model
        usage = message.get("usage")
        if isinstance(usage, dict):
            step.usage = usage  # one LLM call: every row repeats it; the last is final
        for b in blocks:
            btype = b.get("type")
            if btype == "text" and isinstance(b.get("text"), str) and b["text"]:
                step.texts.append(b["text"])
            elif btype == "thinking" and isinstance(b.get("thinking"), str) and b["thinking"]:
                step.thinks.append(b["thinking"])
            elif btype == "tool_use":
                self.tool_use(step, b, t)

    def tool_use(self, step: _Step, block: dict, t: str | None) -> None:
        call_id = block.get("id")
        name = block.get("name")
        if not isinstance(call_id, str) or not call_id or call_id in self.tools:
            return
        name = name if isinstance(name, str) else ""
        inp = block.get("input") if isinstance(block.get("input"), dict) else {}
        step.calls.append({"tool_call_id": call_id, "tool_name": name, "input": inp, "duration_ms": None})
        self.tools[call_id] = {"step": step.index, "name": name, "input": inp, "time": t}
        if name in _TASK_TOOLS and isinstance(inp.get("prompt"), str):
            self.pending_tasks.append((inp["prompt"], step.index))

    # -- patches -------------------------------------------------------------

    def patch_for(self, call: dict, call_id: str, tur: Any, t: str | None) -> PatchRecord | None:
        name, inp = call["name"], call["input"]
        tur = tur if isinstance(tur, dict) else {}
        path = inp.get("file_path") if isinstance(inp.get("file_path"), str) else tur.get("filePath")
        if not isinstance(path, str) or not path:
            return None
        time = t or call["time"] or self.steps[call["step"]].time or ""
        original = tur.get("originalFile")
        if not isinstance(original, str):
            original = tur.get("originalFileContents")
        original = original if isinstance(original, str) else None
        rec = PatchRecord(
            step=call["step"], seq=len(self.patches), tool_name=name, tool_call_id=call_id,
            path=path, time=time, before=None, after=None,
        )
        if name == "Write":
            content = tur.get("content") if isinstance(tur.get("content"), str) else inp.get("content")
            if isinstance(content, str):
                rec.after = content.encode("utf-8")
            else:
                rec.after_known = False
            if tur.get("type") == "create":
                rec.operation = "create"
            elif original is not None:
                rec.before = original.encode("utf-8")
            else:
                rec.before_known = False
        else:
            if name == "Edit":
                old = tur.get("oldString", inp.get("old_string"))
                new = tur.get("newString", inp.get("new_string"))
                rall = tur.get("replaceAll", inp.get("replace_all"))
                edits = [(old, new, rall)]
            else:
                raw = tur.get("edits") if isinstance(tur.get("edits"), list) else inp.get("edits")
                edits = [
                    (e.get("old_string"), e.get("new_string"), e.get("replace_all"))
                    for e in (raw if isinstance(raw, list) else [])
                    if isinstance(e, dict)
                ]
            if original is None and len(edits) == 1 and edits[0][0] == "" and isinstance(edits[0][1], str):
                # an Edit with an empty old_string creates the file
                rec.operation = "create"
                rec.after = edits[0][1].encode("utf-8")
                return rec
            after = original
            for old, new, rall in edits:
                if after is None:
                    break
                after = _replace(after, old, new, rall)
            if not edits:
                after = None
            if original is None:
                rec.before_known = False
            else:
                rec.before = original.encode("utf-8")
            if after is None:
                rec.after_known = False
            else:
                rec.after = after.encode("utf-8")
        if not (rec.before_known and rec.after_known):
            rec.hunk_diff = _hunk_diff(tur.get("structuredPatch"))
        return rec

    # -- result --------------------------------------------------------------

    def result(self) -> ParsedSession:
        if self.session_id is None:
            unreadable = f", {len(self.skipped)} unreadable lines" if self.skipped else ""
            raise SessionParseError(
                f"{self.name}: not a Claude Code session (no user/assistant/system row with a sessionId"
                f"{unreadable})"
            )
        sid = _safe_id(self.session_id, "session id", self.name)
        metadata: dict[str, Any] = {
            "source_format": SOURCE_FORMAT,
            "hook_rows": self.hook_rows,
            "skipped_lines": len(self.skipped),
            "row_types": dict(sorted(self.row_types.items())),
            "compactions": self.compactions,
        }
        if self.subagent_file:
            agent_id = _safe_id(self.agent_id or "", "agent id", self.name)
            metadata["parent_session_id"] = sid
            metadata["agent_id"] = agent_id
            sid = _safe_id(f"{sid}-agent-{agent_id}", "session id", self.name)
        if self.other_sessions:
            metadata["other_session_ids"] = sorted(self.other_sessions)
        if self.repaired_parents:
            metadata["repaired_parents"] = self.repaired_parents
        if self.duplicate_rows:
            metadata["duplicate_rows"] = self.duplicate_rows
        if self.orphan_results:
            metadata["orphan_tool_results"] = self.orphan_results
        if not self.times:
            raise SessionParseError(f"{self.name}: Claude Code session {sid} has no timestamps")
        ordered = sorted(set(self.times), key=_time_key)
        started, ended = ordered[0], ordered[-1]
        for patch in self.patches:
            patch.time = patch.time or started
        steps = [
            ParsedStep(
                index=s.index,
                time=s.time or started,
                record=s.record(),
                rev=s.rev,
                context_leaf=s.leaf if s.role == "agent" else None,
            )
            for s in self.steps
        ]
        return ParsedSession(
            agent=AGENT,
            session_id=sid,
            cwd=self.cwd,
            started_at=started,
            ended_at=ended,
            agent_version=self.version,
            model=self.model or self.side_model,
            git_branch=self.branch,
            git_commit=self.git_commit,
            task=self.task if self.task is not None else self.task_fallback,
            steps=steps,
            patches=self.patches,
            messages=self.messages,
            layers={},
            metadata=metadata,
            records=self.records,
            skipped=self.skipped,
        )


def parse(data: bytes, name: str) -> ParsedSession:
    """Parse one Claude Code transcript; see the module docstring."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("parse() takes the session file's bytes")
    parser = _Parser(name)
    parser.feed(bytes(data))
    return parser.result()
