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

A user message that comes before any turn started (``turn_context``,
``task_started`` or ``user_message``) and that the user never typed (no
``user_message`` event with its text) is context carried over from an
earlier transcript (a resumed or forked thread): it stays a user step (steps
never change as the file grows) but is listed in
``metadata.carried_context_steps`` and never becomes the task. Each turn's policy
(approval, sandbox, permission profile, model, effort) goes to
``metadata.turn_policy`` whenever it changes, with the first step it covers.

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

import json
import re
from pathlib import Path
from typing import Any, Mapping

from ..events import normalize_time
from .. import agentfiles
from . import common, patchtext
from .common import (
    UNKNOWN, ParserState, StepState, call_input, check_id, diff_path, read_jsonl, resolve_path, text_of, to_int,
)
from .session import Message, ParsedSession, PatchRecord

AGENT = "codex-cli"
SOURCE_FORMAT = "codex-rollout-jsonl"
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
# what a turn_context says about what the agent may do (kept per turn in metadata.turn_policy)
_POLICY_KEYS = ("approval_policy", "sandbox_policy", "permission_profile", "model", "effort")
_RESPONSE_TYPES = ("message",) + _OUTPUT_ITEMS + _RESULT_ITEMS
_SHELL_TOOLS = ("shell", "container.exec", "shell_command", "exec_command", "local_shell", "unified_exec")
_UUID_IN_NAME = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl$")
_EXIT_CODE = re.compile(r"^(?:Exit code: |Process exited with code )(-?\d+)\s*$", re.M)


# --------------------------------------------------------------------------
# discovery


def default_root(home: Path, env: Mapping[str, str]) -> Path:
    """``$CODEX_HOME/sessions`` when set, else ``<home>/.codex/sessions``."""
    return agentfiles.codex_sessions(home, env)


def discover(root: Path) -> list[Path]:
    """Every ``rollout-*.jsonl`` file under ``root``, sorted."""
    return common.glob_files(root, "**/rollout-*.jsonl")


# --------------------------------------------------------------------------
# Codex specifics


def _text_of(content: Any) -> str | None:
    """The text of any block that has one (input_text, output_text...); images as ``[image]``."""
    return text_of(content, text_types=None, images=("input_image", "image"))


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


def _duration_ms(d: Any) -> int | None:
    """``{"secs": 0, "nanos": 41200000}`` (exec_command_end) as whole milliseconds."""
    if isinstance(d, dict) and isinstance(d.get("secs"), int) and isinstance(d.get("nanos", 0), int):
        return int(round(d["secs"] * 1000 + d.get("nanos", 0) / 1e6))
    return None


def _output_ms(output: Any) -> int | None:
    """``metadata.duration_seconds`` of a function or custom tool output, as milliseconds."""
    if isinstance(output, str) and output.startswith("{") and "duration_seconds" in output:
        try:
            meta = json.loads(output).get("metadata")
        except (ValueError, AttributeError):
            return None
        v = meta.get("duration_seconds") if isinstance(meta, dict) else None
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
            return int(round(v * 1000))
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


class _Parser(ParserState):
    def __init__(self, name: str):
        super().__init__(name)
        self.meta: dict | None = None
        self.meta_time: str | None = None
        self.codex_rows = 0
        self.turn_model: str | None = None
        self.turn_cwd: str | None = None
        self.effort: str | None = None
        self.current: StepState | None = None  # agent step still receiving output items
        self.last_agent: StepState | None = None
        self.prev_uuid: str | None = None
        self.known: dict[str, str | None] = {}  # path -> known content (None: absent)
        self.failed_patches = 0
        self.unparsed_patches = 0
        self.layers: dict[str, Any] = {}
        self.policies: list[dict[str, Any]] = []  # turn policies as they changed, with the first step they cover
        self.first_turn: float = float("inf")  # line of the first row that starts a turn
        self.prompts: set[str] = set()  # what the user typed (``user_message`` events)
        self.carried: set[int] = set()  # user steps carried over from an earlier transcript
        self.last_context: int | None = None  # tokens of the latest LLM call's context

    # -- rows --------------------------------------------------------------

    def run(self, data: bytes) -> ParsedSession:
        rows, self.skipped = read_jsonl(data)
        norm = [self.normalize(no, obj) for no, obj in rows]
        self.records = len(rows)
        for no, rtype, payload, ts in norm:
            if rtype == "session_meta" and self.meta is None:
                self.meta = payload
                self.meta_time = normalize_time(payload.get("timestamp")) or normalize_time(ts)
            etype = payload.get("type") if rtype == "event_msg" else None
            if rtype == "turn_context" or etype in ("task_started", "user_message"):
                self.first_turn = min(self.first_turn, no)
            if etype == "user_message" and isinstance(payload.get("message"), str):
                self.prompts.add(payload["message"].strip())
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
        self.count_row(rtype)
        t = self.stamp(ts, p.get("timestamp") if rtype == "session_meta" else None) or self.meta_time
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
            policy = {k: p[k] for k in _POLICY_KEYS if p.get(k) is not None}
            if policy and (not self.policies or {k: v for k, v in self.policies[-1].items() if k != "from_step"} != policy):
                self.policies.append({"from_step": len(self.steps), **policy})
        elif rtype == "response_item":
            self.item(no, p, t)
        elif rtype == "event_msg":
            self.event(no, p, t)
        elif rtype == "compacted":
            self.compacted(t, p.get("trigger"), self.last_context)
            self.summary_rows += 1
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
                if no < self.first_turn < float("inf") and text.strip() not in self.prompts:
                    # before any turn began and never typed by the user: context carried
                    # over from an earlier transcript (a resumed or forked thread)
                    self.carried.add(len(self.steps))
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
            inp = call_input(p.get("arguments"))
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
        call = self.add_call(step, call_id, name, inp, t, patch=None, decided=False, exit=None)
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
        call = self.answer(call_id)
        if call is None:
            return
        if call.get("writes"):
            self.known.clear()  # it ran by now: anything learned meanwhile is stale too
        text, code, success = _output_info(p.get("output"))
        if code is None and call["exit"] is not None:
            code = call["exit"]
        failed = (code is not None and code != 0) or success is False
        if call["patch"] is not None and not failed and code is None:
            failed = not _patch_succeeded(text, code, success)
        self.observe(no, call_id, call, text, "tool_error" if failed else None, t, _output_ms(p.get("output")))
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
            if isinstance(last, dict):
                total = last.get("total_tokens")
                self.last_context = total if isinstance(total, int) and not isinstance(total, bool) else None
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
            ms = _duration_ms(p.get("duration"))
            if call["answered"]:
                self.record_duration(no, call_id, call, ms)
            elif ms is not None:
                call["recorded_ms"] = ms
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
        rec = self.new_patch(call, call_id, path, t, tool_name=call["name"] or "apply_patch")
        prev = self.known.get(path, UNKNOWN)
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
                raise self.not_a_session("Codex CLI rollout", "session_meta row")
            meta = {"id": m.group(1)}
        sid = check_id(meta.get("id"), self.name)
        span = self.span(f"Codex rollout {sid}")
        git = meta.get("git") if isinstance(meta.get("git"), dict) else {}
        metadata = self.metadata(SOURCE_FORMAT)
        for key in ("originator", "model_provider"):
            if isinstance(meta.get(key), str) and meta[key]:
                metadata[key] = meta[key]
        if isinstance(meta.get("source"), (str, dict)):
            metadata["session_source"] = meta["source"]
        if self.effort:
            metadata["reasoning_effort"] = self.effort
        if isinstance(git.get("repository_url"), str) and git["repository_url"]:
            metadata["repository_url"] = git["repository_url"]
        if self.policies:
            metadata["turn_policy"] = self.policies
        if self.carried:
            metadata["carried_context_steps"] = sorted(self.carried)
        if self.failed_patches:
            metadata["failed_patches"] = self.failed_patches
        if self.unparsed_patches:
            metadata["unparsed_patches"] = self.unparsed_patches
        task = next((s.content for s in self.steps if s.role == "user" and s.content and s.index not in self.carried),
                    None)
        version = meta.get("cli_version")
        return self.session(
            AGENT, sid, span, metadata,
            agent_version=version if isinstance(version, str) and version else None,
            git_branch=git.get("branch") if isinstance(git.get("branch"), str) and git.get("branch") else None,
            git_commit=git.get("commit_hash") if isinstance(git.get("commit_hash"), str) and git.get("commit_hash") else None,
            task=task,
            layers=self.layers,
        )


def parse(data: bytes, name: str) -> ParsedSession:
    """Parse one Codex CLI rollout; see the module docstring."""
    return _Parser(name).run(data)
