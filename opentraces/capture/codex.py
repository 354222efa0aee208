"""Codex CLI rollouts (``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``).

A rollout is JSON lines ``{"timestamp", "type", "payload"}`` with ``type``
one of ``session_meta`` (id, cwd, cli_version, git, base_instructions),
``turn_context`` (model, cwd, effort), ``response_item`` (what the model saw
and said: ``message``, ``reasoning``, ``function_call``,
``function_call_output``, ``custom_tool_call``, ``custom_tool_call_output``,
``local_shell_call``, ``web_search_call``), ``event_msg`` (UI events:
``user_message``, ``agent_message``, ``token_count``, ``exec_command_end``,
``patch_apply_end``, ``turn_aborted``...) and ``compacted`` (a summary that
replaces the history). Early rollouts (2025) had no wrapper: a bare meta
object first, then bare response items; both shapes are read.

``parse`` is a pure function of the bytes. Steps follow the TraceRecord
model, one per LLM call: a user prompt is a ``user`` step; the response
items the model emits between two inputs (a prompt or tool outputs) form one
``agent`` step, which also receives the outputs of its tool calls as
observations and the ``last_token_usage`` of the ``token_count`` event that
follows it. Every response item becomes a context ``Message`` with the
deterministic uuid ``L<line>``, chained to the previous item (a
``compacted`` row starts a new chain).

File changes come from ``apply_patch`` (the freeform custom tool, the JSON
function, or an ``apply_patch`` heredoc in a shell command): one
``PatchRecord`` per file of each call that succeeded, in the order their
success shows in the file. The pre-image is usually unknown, so the record
carries a unified diff built from the patch's hunks; a file the session
created (or whose content it already determined) has full contents.

Append-stability: every row that changes a step's record is counted in
``rev``; steps, messages and patches are only ever added at the end.
"""

from __future__ import annotations

import datetime as _dt
import json
import posixpath
import re
from pathlib import Path
from typing import Any, Mapping

import orjson

from ..errors import RefusedError
from ..events import normalize_time
from ..ids import check_component
from . import patchtext
from .session import Message, ParsedSession, ParsedStep, PatchRecord, SessionParseError

AGENT = "codex-cli"
SOURCE_FORMAT = "codex-rollout-jsonl"
SUMMARY_CHARS = 200
ENCRYPTED_REASONING = "[encrypted reasoning]"

# user "messages" Codex injects for the model, not typed by the user
_WRAPPER_PREFIXES = (
    "<environment_context>",
    "<user_instructions>",
    "# AGENTS.md instructions for ",
    "<INSTRUCTIONS>",
    "<user_shell_command>",
    "<turn_aborted>",
    "<permissions instructions>",
    "<subagent_notification>",
    "<collaboration_mode>",
)
_OUTPUT_ITEMS = ("reasoning", "function_call", "custom_tool_call", "local_shell_call", "web_search_call")
_RESULT_ITEMS = ("function_call_output", "custom_tool_call_output")
_RESPONSE_TYPES = ("message",) + _OUTPUT_ITEMS + _RESULT_ITEMS
_SHELL_TOOLS = ("shell", "container.exec", "shell_command", "exec_command", "local_shell", "unified_exec")
_UUID_IN_NAME = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl$")
_EXIT_CODE = re.compile(r"^(?:Exit code: |Process exited with code )(-?\d+)\s*$", re.M)


# --------------------------------------------------------------------------
# discovery


def default_root(home: Path, env: Mapping[str, str]) -> Path:
    """``$CODEX_HOME/sessions`` when set, else ``<home>/.codex/sessions``."""
    base = env.get("CODEX_HOME") or ""
    if base:
        if base == "~" or base.startswith("~/"):
            return Path(home) / base[2:] / "sessions"
        return Path(base) / "sessions"
    return Path(home) / ".codex" / "sessions"


def discover(root: Path) -> list[Path]:
    """Every ``rollout-*.jsonl`` file under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("**/rollout-*.jsonl") if p.is_file())


# --------------------------------------------------------------------------
# helpers shared with pi.py


def _fix_surrogates(obj: Any) -> Any:
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


def read_rows(data: bytes) -> tuple[list[tuple[int, dict]], list[tuple[int, str]]]:
    """(line number, object) for each JSON-object line; (line, reason) for the rest."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("parse() takes the session file's bytes")
    lines = bytes(data).split(b"\n")
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]
    rows: list[tuple[int, dict]] = []
    skipped: list[tuple[int, str]] = []
    for no, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            skipped.append((no, "not UTF-8"))
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:
                obj = _fix_surrogates(json.loads(raw.decode("utf-8")))
            except ValueError:
                skipped.append((no, "invalid JSON"))
                continue
        if not isinstance(obj, dict):
            skipped.append((no, "not a JSON object"))
            continue
        rows.append((no, obj))
    return rows, skipped


def time_key(t: str) -> tuple[str, str]:
    """Order key of a normalized ``...Z`` time (fractions of any length)."""
    base, _, frac = t[:-1].partition(".")
    return base, frac.ljust(9, "0")


def millis_between(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    try:
        a = _dt.datetime.fromisoformat("{}.{}+00:00".format(*_frac6(start)))
        b = _dt.datetime.fromisoformat("{}.{}+00:00".format(*_frac6(end)))
    except ValueError:
        return None
    if b < a:
        return None
    return int((b - a) / _dt.timedelta(milliseconds=1))


def _frac6(t: str) -> tuple[str, str]:
    base, frac = time_key(t)
    return base, frac[:6]


def safe_session_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise SessionParseError(f"{name}: the session has no id")
    try:
        return check_component(value, "session id")
    except RefusedError as exc:
        raise SessionParseError(f"{name}: unsafe session id {value!r} ({exc.message})") from None


def to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return int(value)


def resolve_path(path: str, base: str | None, root: str | None) -> str:
    """A tool's file path, absolute when it can be.

    Relative paths are taken from ``base`` (the tool's working directory,
    itself relative to ``root`` when not absolute) or ``root`` (the session
    cwd). The capture relativizes absolute paths against the project root,
    which need not be the cwd; without any absolute base the path stays
    relative (normalized).
    """
    path = path.strip()
    if not posixpath.isabs(path):
        start = base if base and posixpath.isabs(base) else None
        if start is None and root and posixpath.isabs(root):
            start = posixpath.join(root, base) if base else root
        if start:
            path = posixpath.join(start, path)
    return posixpath.normpath(path)


def diff_path(path: str, root: str | None) -> str:
    """The name a unified diff uses for ``path``: relative to ``root`` (the cwd)."""
    if posixpath.isabs(path) and root and posixpath.isabs(root):
        r = posixpath.normpath(root).rstrip("/")
        if path.startswith(r + "/"):
            return path[len(r) + 1 :]
    return path.lstrip("/")


def new_step_record(step: "StepState") -> dict[str, Any]:
    usage = step.usage or {}
    agent = step.role == "agent"
    return {
        "step_index": step.index,
        "role": step.role,
        "content": ("\n".join(step.texts) or None) if agent else step.content,
        "reasoning_content": "\n".join(step.thinks) or None,
        "model": step.model,
        "system_prompt_hash": None,
        "agent_role": (step.agent_role or "main") if agent else None,
        "parent_step": None,
        "call_type": step.call_type,
        "subagent_trajectory_ref": None,
        "tools_available": [],
        "tool_calls": [dict(c) for c in step.calls],
        "observations": [dict(o) for o in step.obs],
        "snippets": [],
        "token_usage": {
            "input_tokens": to_int(usage.get("input_tokens")),
            "output_tokens": to_int(usage.get("output_tokens")),
            "cache_read_tokens": to_int(usage.get("cache_read_tokens")),
            "cache_write_tokens": to_int(usage.get("cache_write_tokens")),
            "prefix_reuse_tokens": 0,
        },
        "timestamp": step.time,
    }


class StepState:
    """A step being assembled; ``lines`` are the rows that shaped it."""

    __slots__ = (
        "index", "role", "time", "texts", "thinks", "content", "model", "calls", "obs",
        "usage", "lines", "leaf", "agent_role", "call_type",
    )

    def __init__(self, index: int, role: str, time: str | None, line: int):
        self.index = index
        self.role = role
        self.time = time
        self.texts: list[str] = []
        self.thinks: list[str] = []
        self.content: str | None = None
        self.model: str | None = None
        self.calls: list[dict] = []
        self.obs: list[dict] = []
        self.usage: dict[str, int] | None = None
        self.lines: set[int] = {line}
        self.leaf: str | None = None
        self.agent_role: str | None = None
        self.call_type: str | None = "main"

    def parsed(self, fallback_time: str) -> ParsedStep:
        return ParsedStep(
            index=self.index,
            time=self.time or fallback_time,
            record=new_step_record(self) | {"timestamp": self.time or fallback_time},
            rev=len(self.lines),
            context_leaf=self.leaf if self.role == "agent" else None,
        )


def observation(call_id: str, text: str | None, error: str | None) -> dict[str, Any]:
    return {
        "source_call_id": call_id,
        "content": text,
        "output_summary": text[:SUMMARY_CHARS] if text else None,
        "error": error,
    }


# --------------------------------------------------------------------------
# Codex specifics


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for b in content:
            if not isinstance(b, dict):
                continue
            if isinstance(b.get("text"), str):
                parts.append(b["text"])
            elif b.get("type") in ("input_image", "image"):
                parts.append("[image]")
        if parts:
            return "\n".join(parts)
    return None


def _is_wrapper(text: str | None) -> bool:
    return text is not None and text.lstrip().startswith(_WRAPPER_PREFIXES)


def _reasoning_text(p: dict) -> str | None:
    parts = [
        s["text"] for s in (p.get("summary") or []) if isinstance(s, dict) and isinstance(s.get("text"), str) and s["text"]
    ]
    if not parts and isinstance(p.get("content"), list):
        parts = [
            c["text"] for c in p["content"] if isinstance(c, dict) and isinstance(c.get("text"), str) and c["text"]
        ]
    if parts:
        return "\n".join(parts)
    if p.get("encrypted_content"):
        return ENCRYPTED_REASONING
    return None


def _output_info(output: Any) -> tuple[str | None, int | None, bool | None]:
    """(text, exit code, success flag) of a tool output, whichever are known."""
    success: bool | None = None
    code: int | None = None
    if isinstance(output, dict):
        if isinstance(output.get("success"), bool):
            success = output["success"]
        inner = output.get("content", output.get("output"))
        text, code2, success2 = _output_info(inner)
        return text, code2, success if success is not None else success2
    if isinstance(output, list):
        return _text_of(output), None, None
    if not isinstance(output, str):
        return None, None, None
    text = output
    if text.startswith("{") and '"output"' in text:
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("output"), str):
            text = obj["output"]
            meta = obj.get("metadata")
            if isinstance(meta, dict) and isinstance(meta.get("exit_code"), int):
                code = meta["exit_code"]
    if code is None:
        # exec outputs start with a header ("Exit code: N" / "Process exited with
        # code N" ... "Output:"); never read the program's own output for it
        head = text.split("\nOutput:\n", 1)[0] if "\nOutput:\n" in text else text.split("\n", 1)[0]
        m = _EXIT_CODE.search(head)
        if m:
            code = int(m.group(1))
    return text, code, success


def _patch_succeeded(text: str | None, code: int | None, success: bool | None) -> bool:
    if code is not None:
        return code == 0
    if success is not None:
        return success
    low = (text or "").strip().lower()
    if low.startswith("success") or "updated the following files" in low:
        return True
    bad = ("verification failed", "failed to", "error", "rejected", "aborted", "invalid patch", "not found")
    return not any(b in low for b in bad)


def _command_text(command: Any) -> str | None:
    if isinstance(command, str):
        return command
    if isinstance(command, list) and all(isinstance(c, str) for c in command):
        if len(command) >= 3 and command[1] in ("-lc", "-c"):
            return command[2]
        return " ".join(command)
    return None


class _Parser:
    def __init__(self, name: str):
        self.name = name
        self.records = 0
        self.skipped: list[tuple[int, str]] = []
        self.times: list[str] = []
        self.last_time: str | None = None
        self.meta: dict | None = None
        self.meta_time: str | None = None
        self.codex_rows = 0
        self.row_types: dict[str, int] = {}
        self.model: str | None = None
        self.turn_model: str | None = None
        self.turn_cwd: str | None = None
        self.effort: str | None = None
        self.cwd: str | None = None
        self.steps: list[StepState] = []
        self.current: StepState | None = None  # agent step still receiving output items
        self.last_agent: StepState | None = None
        self.messages: list[Message] = []
        self.prev_uuid: str | None = None
        self.calls: dict[str, dict] = {}  # call_id -> {step, name, time, patch, exit}
        self.known: dict[str, str | None] = {}  # path -> known content (None: absent)
        self.patches: list[PatchRecord] = []
        self.failed_patches = 0
        self.unparsed_patches = 0
        self.compactions = 0
        self.terminal_state: str | None = None
        self.layers: dict[str, Any] = {}

    # -- rows --------------------------------------------------------------

    def run(self, data: bytes) -> ParsedSession:
        rows, self.skipped = read_rows(data)
        norm = [self.normalize(no, obj) for no, obj in rows]
        self.records = len(rows)
        for no, rtype, payload, ts in norm:
            if rtype == "session_meta" and self.meta is None:
                self.meta = payload
                self.meta_time = normalize_time(payload.get("timestamp")) or normalize_time(ts)
        self.session_header()
        for no, rtype, payload, ts in norm:
            self.row(no, rtype, payload, ts)
        return self.result()

    def normalize(self, no: int, obj: dict) -> tuple[int, str, dict, Any]:
        rtype = obj.get("type")
        payload = obj.get("payload")
        if isinstance(rtype, str) and isinstance(payload, dict):
            if rtype in ("session_meta", "turn_context", "response_item", "event_msg", "compacted"):
                self.codex_rows += 1
            return no, rtype, payload, obj.get("timestamp")
        if rtype is None and "record_type" not in obj and isinstance(obj.get("id"), str) and "timestamp" in obj:
            self.codex_rows += 1
            return no, "session_meta", obj, obj.get("timestamp")  # 2025 rollouts: bare meta line
        if isinstance(rtype, str) and rtype in _RESPONSE_TYPES and payload is None:
            self.codex_rows += 1
            return no, "response_item", obj, obj.get("timestamp")
        return no, rtype if isinstance(rtype, str) else "?", {}, obj.get("timestamp")

    def session_header(self) -> None:
        meta = self.meta or {}
        cwd = meta.get("cwd")
        self.cwd = cwd if isinstance(cwd, str) and cwd else None
        base = meta.get("base_instructions")
        text = base.get("text") if isinstance(base, dict) else base
        if not isinstance(text, str) or not text:
            text = meta.get("instructions") if isinstance(meta.get("instructions"), str) else None
        if not text and isinstance(meta.get("developer_instructions"), str):
            text = meta["developer_instructions"]
        if text:
            self.layers["system"] = text
        tools = meta.get("tools", meta.get("dynamic_tools"))
        if isinstance(tools, list) and tools:
            self.layers["tools"] = tools

    def row(self, no: int, rtype: str, p: dict, ts: Any) -> None:
        self.row_types[rtype] = self.row_types.get(rtype, 0) + 1
        t = normalize_time(ts)
        if t is None and rtype == "session_meta":
            t = normalize_time(p.get("timestamp"))
        if t is not None:
            self.times.append(t)
            self.last_time = t
        t = t or self.last_time or self.meta_time
        if rtype == "turn_context":
            model = p.get("model")
            if isinstance(model, str) and model:
                self.turn_model = model
                if self.model is None:
                    self.model = model
            if isinstance(p.get("cwd"), str) and p["cwd"]:
                self.turn_cwd = p["cwd"]
            if self.effort is None and isinstance(p.get("effort"), str):
                self.effort = p["effort"]
        elif rtype == "response_item":
            self.item(no, p, t)
        elif rtype == "event_msg":
            self.event(no, p, t)
        elif rtype == "compacted":
            self.compactions += 1
            self.add_message(no, "summary", p, t, "compaction_summary", root=True)
            self.current = None
            self.last_agent = None  # the summary call's tokens are no step's

    # -- context tree --------------------------------------------------------

    def add_message(self, no: int, role: str, content: Any, t: str | None, kind: str, root: bool = False) -> str:
        uuid = f"L{no}"
        self.messages.append(Message(uuid=uuid, parent=None if root else self.prev_uuid, role=role,
                                     content=content, time=t, kind=kind))
        self.prev_uuid = uuid
        return uuid

    # -- response items ------------------------------------------------------

    def item(self, no: int, p: dict, t: str | None) -> None:
        ptype = p.get("type")
        if ptype == "message":
            role = p.get("role") if isinstance(p.get("role"), str) else "user"
            text = _text_of(p.get("content"))
            if role == "assistant":
                step = self.agent_step(no, t)
                self.add_message(no, "assistant", p, t, "message")
                if text:
                    step.texts.append(text)
                return
            if role == "user" and not _is_wrapper(text) and text and text.strip():
                self.add_message(no, "user", p, t, "message")
                step = StepState(len(self.steps), "user", t, no)
                step.content = text
                step.call_type = self.call_type()
                self.steps.append(step)
                self.current = None
                return
            self.add_message(no, role, p, t, "meta")
            self.current = None
            return
        if ptype == "reasoning":
            step = self.agent_step(no, t)
            self.add_message(no, "assistant", p, t, "reasoning")
            text = _reasoning_text(p)
            if text:
                step.thinks.append(text)
            return
        if ptype in ("function_call", "custom_tool_call", "local_shell_call", "web_search_call"):
            step = self.agent_step(no, t)
            self.add_message(no, "assistant", p, t, "message")
            self.tool_call(no, step, p, t)
            return
        if ptype in _RESULT_ITEMS:
            self.add_message(no, "tool", p, t, "tool_result")
            self.tool_output(no, p, t)
            self.current = None
            return
        # other items (ghost snapshots, unknown kinds) are not model context

    def call_type(self) -> str:
        source = (self.meta or {}).get("source")
        return "subagent" if isinstance(source, dict) and "subagent" in source else "main"

    def agent_step(self, no: int, t: str | None) -> StepState:
        step = self.current
        if step is None:
            step = StepState(len(self.steps), "agent", t, no)
            step.leaf = self.prev_uuid
            step.model = self.turn_model
            step.call_type = self.call_type()
            step.agent_role = "subagent" if step.call_type == "subagent" else "main"
            self.steps.append(step)
            self.current = step
            self.last_agent = step
        step.lines.add(no)
        return step

    def tool_call(self, no: int, step: StepState, p: dict, t: str | None) -> None:
        ptype = p.get("type")
        call_id = p.get("call_id") or p.get("id")
        call_id = call_id if isinstance(call_id, str) and call_id else f"L{no}"
        if ptype == "function_call":
            name = p.get("name") if isinstance(p.get("name"), str) else ""
            args = p.get("arguments")
            if isinstance(args, str):
                try:
                    parsed = json.loads(args)
                except ValueError:
                    parsed = None
                inp = parsed if isinstance(parsed, dict) else {"arguments": args}
            else:
                inp = args if isinstance(args, dict) else {}
        elif ptype == "custom_tool_call":
            name = p.get("name") if isinstance(p.get("name"), str) else ""
            inp = {"input": p.get("input")}
        elif ptype == "local_shell_call":
            name = "local_shell"
            inp = p.get("action") if isinstance(p.get("action"), dict) else {}
        else:
            name = "web_search"
            inp = p.get("action") if isinstance(p.get("action"), dict) else {}
        if call_id in self.calls:
            call_id = f"{call_id}#L{no}"
        step.calls.append({"tool_call_id": call_id, "tool_name": name, "input": inp, "duration_ms": None})
        call: dict[str, Any] = {"step": step.index, "name": name, "time": t, "patch": None, "decided": False,
                                "exit": None, "answered": False}
        self.calls[call_id] = call
        patch_text, workdir, command = self.patch_source(ptype, name, inp)
        if patch_text is not None:
            try:
                call["patch"] = (patchtext.parse_apply_patch(patch_text), workdir)
            except patchtext.PatchTextError:
                self.unparsed_patches += 1
                call["decided"] = True
        elif command is not None and not patchtext.is_read_only_command(command):
            call["writes"] = True
            self.known.clear()  # the command may change files: contents seen so far go stale

    def patch_source(self, ptype: Any, name: str, inp: dict) -> tuple[str | None, str | None, Any]:
        workdir = inp.get("workdir") or inp.get("working_directory") or inp.get("cwd")
        workdir = workdir if isinstance(workdir, str) and workdir else None
        if name == "apply_patch":
            text = inp.get("input", inp.get("patch", inp.get("arguments")))
            return (text if isinstance(text, str) else None), workdir, None
        if ptype == "local_shell_call" or name in _SHELL_TOOLS:
            command = inp.get("command", inp.get("cmd"))
            text = _command_text(command)
            if text and ("apply_patch" in text or "applypatch" in text) and patchtext.BEGIN in text:
                return patchtext.extract_apply_patch(text), workdir, None
            return None, workdir, command
        return None, workdir, None

    def tool_output(self, no: int, p: dict, t: str | None) -> None:
        call_id = p.get("call_id")
        call = self.calls.get(call_id) if isinstance(call_id, str) else None
        if call is None or call["answered"]:
            return
        call["answered"] = True
        if call.get("writes"):
            self.known.clear()  # it ran by now: anything learned meanwhile is stale too
        step = self.steps[call["step"]]
        text, code, success = _output_info(p.get("output"))
        if code is None and call["exit"] is not None:
            code = call["exit"]
        failed = (code is not None and code != 0) or success is False
        if call["patch"] is not None and not failed and code is None:
            failed = not _patch_succeeded(text, code, success)
        step.obs.append(observation(call_id, text, "tool_error" if failed else None))
        for c in step.calls:
            if c["tool_call_id"] == call_id:
                c["duration_ms"] = millis_between(call["time"], t)
        step.lines.add(no)
        self.decide_patch(call_id, call, not failed, t)

    # -- events --------------------------------------------------------------

    def event(self, no: int, p: dict, t: str | None) -> None:
        etype = p.get("type")
        if etype == "token_count":
            info = p.get("info")
            last = info.get("last_token_usage") if isinstance(info, dict) else None
            # the usage of the LLM call that just ended: the latest step, when it
            # is an agent step (not after a new prompt or a compaction)
            step = self.last_agent if self.steps and self.steps[-1] is self.last_agent else None
            if not isinstance(last, dict) or step is None:
                return
            cached = to_int(last.get("cached_input_tokens"))
            usage = {
                "input_tokens": max(to_int(last.get("input_tokens")) - cached, 0),
                "output_tokens": to_int(last.get("output_tokens")),
                "cache_read_tokens": cached,
                "cache_write_tokens": 0,
            }
            if usage != step.usage:
                step.usage = usage
                step.lines.add(no)
        elif etype == "exec_command_end":
            call_id = p.get("call_id")
            call = self.calls.get(call_id) if isinstance(call_id, str) else None
            code = p.get("exit_code")
            if call is None or not isinstance(code, int):
                return
            call["exit"] = code
            if code != 0 and call["answered"]:
                step = self.steps[call["step"]]
                for o in step.obs:
                    if o["source_call_id"] == call_id and o["error"] is None:
                        o["error"] = "tool_error"
                        step.lines.add(no)
        elif etype == "patch_apply_end":
            call_id = p.get("call_id")
            call = self.calls.get(call_id) if isinstance(call_id, str) else None
            if call is not None and isinstance(p.get("success"), bool):
                self.decide_patch(call_id, call, p["success"], t)
        elif etype == "turn_aborted":
            self.terminal_state = "interrupted"
        elif etype == "task_complete":
            self.terminal_state = None

    # -- patches -------------------------------------------------------------

    def decide_patch(self, call_id: str, call: dict, ok: bool, t: str | None) -> None:
        if call["patch"] is None or call["decided"]:
            return
        call["decided"] = True
        if not ok:
            self.failed_patches += 1
            return
        ops, workdir = call["patch"]
        base = workdir or self.turn_cwd or self.cwd
        for op in ops:
            self.patches.append(self.patch_record(op, base, call, call_id, t or call["time"] or ""))

    def patch_record(self, op: patchtext.FileOp, base: str | None, call: dict, call_id: str, t: str) -> PatchRecord:
        path = resolve_path(op.path, base, self.cwd)
        dpath = diff_path(path, self.cwd)
        rec = PatchRecord(step=call["step"], seq=len(self.patches), tool_name=call["name"] or "apply_patch",
                          tool_call_id=call_id, path=path, time=t, before=None, after=None)
        prev = self.known.get(path, _UNKNOWN)
        if op.kind == "add":
            content = op.content or ""
            rec.operation = "create"
            rec.after = content.encode("utf-8")
            rec.hunk_diff = patchtext.new_file_diff(dpath, content)
            self.known[path] = content
        elif op.kind == "delete":
            rec.operation = "delete"
            if isinstance(prev, str):
                rec.before = prev.encode("utf-8")
                rec.hunk_diff = patchtext.unified_diff(dpath, None, prev, None)
            else:
                rec.before_known = False
            self.known[path] = None
        else:
            new_path = resolve_path(op.move_to, base, self.cwd) if op.move_to else path
            new_dpath = diff_path(new_path, self.cwd)
            rec.path = new_path
            after = patchtext.apply_update(prev, op.chunks) if isinstance(prev, str) else None
            if after is not None:
                rec.before = prev.encode("utf-8")
                rec.after = after.encode("utf-8")
                rec.hunk_diff = patchtext.unified_diff(dpath, new_dpath, prev, after)
            else:
                rec.before_known = rec.after_known = False
                rec.hunk_diff = patchtext.chunks_diff(dpath, op.chunks, new_dpath if new_path != path else None)
            if new_path != path:
                self.known[path] = None
            if after is not None:
                self.known[new_path] = after
            else:
                self.known.pop(new_path, None)
        return rec

    # -- result --------------------------------------------------------------

    def result(self) -> ParsedSession:
        meta = self.meta
        if meta is None:
            m = _UUID_IN_NAME.search(self.name or "")
            if not self.codex_rows or m is None:
                raise SessionParseError(
                    f"{self.name or 'session'}: not a Codex CLI rollout (no session_meta row"
                    f"{'; ' + str(len(self.skipped)) + ' unreadable lines' if self.skipped else ''})"
                )
            meta = {"id": m.group(1)}
        sid = safe_session_id(meta.get("id"), self.name)
        if not self.times:
            raise SessionParseError(f"{self.name}: Codex rollout {sid} has no timestamps")
        ordered = sorted(set(self.times), key=time_key)
        started, ended = ordered[0], ordered[-1]
        git = meta.get("git") if isinstance(meta.get("git"), dict) else {}
        metadata: dict[str, Any] = {
            "source_format": SOURCE_FORMAT,
            "skipped_lines": len(self.skipped),
            "row_types": dict(sorted(self.row_types.items())),
            "compactions": self.compactions,
        }
        for key in ("originator", "model_provider"):
            if isinstance(meta.get(key), str) and meta[key]:
                metadata[key] = meta[key]
        if isinstance(meta.get("source"), (str, dict)):
            metadata["session_source"] = meta["source"]
        if self.effort:
            metadata["reasoning_effort"] = self.effort
        if isinstance(git.get("repository_url"), str) and git["repository_url"]:
            metadata["repository_url"] = git["repository_url"]
        if self.failed_patches:
            metadata["failed_patches"] = self.failed_patches
        if self.unparsed_patches:
            metadata["unparsed_patches"] = self.unparsed_patches
        task = next((s.content for s in self.steps if s.role == "user" and s.content), None)
        version = meta.get("cli_version")
        return ParsedSession(
            agent=AGENT,
            session_id=sid,
            cwd=self.cwd,
            started_at=started,
            ended_at=ended,
            agent_version=version if isinstance(version, str) and version else None,
            model=self.model,
            git_branch=git.get("branch") if isinstance(git.get("branch"), str) and git.get("branch") else None,
            git_commit=git.get("commit_hash") if isinstance(git.get("commit_hash"), str) and git.get("commit_hash") else None,
            task=task,
            steps=[s.parsed(started) for s in self.steps],
            patches=self.patches,
            messages=self.messages,
            layers=self.layers,
            metadata=metadata,
            records=self.records,
            skipped=self.skipped,
            terminal_state=self.terminal_state,
        )


_UNKNOWN = object()


def parse(data: bytes, name: str) -> ParsedSession:
    """Parse one Codex CLI rollout; see the module docstring."""
    return _Parser(name).run(data)
