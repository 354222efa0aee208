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

import os
from pathlib import Path
from typing import Any, Mapping

from .. import agentfiles
from .common import ParserState, StepState, check_id, read_jsonl, text_of, to_int, token_usage
from .session import Message, ParsedSession, PatchRecord, SessionParseError

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


# --------------------------------------------------------------------------
# discovery


def default_root(home: Path, env: Mapping[str, str]) -> Path:
    """``$CLAUDE_CONFIG_DIR/projects`` when set, else ``<home>/.claude/projects``."""
    return agentfiles.default_root(home, env, "CLAUDE_CONFIG_DIR", ".claude", "projects")


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


def _recorded_ms(tur: Any) -> int | None:
    """The duration Claude Code recorded for a tool call (``toolUseResult.durationMs``, or
    ``totalDurationMs`` for a sub-agent), in whole milliseconds."""
    if not isinstance(tur, dict):
        return None
    for key in ("durationMs", "totalDurationMs"):
        v = tur.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0:
            return int(round(v))
    return None


def _blocks(content: Any) -> list[dict]:
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    if isinstance(content, str) and content:
        return [{"type": "text", "text": content}]
    return []


def _safe_id(value: str, what: str, name: str) -> str:
    return check_id(value, name, what, where=" in the transcript", tail="; refusing to parse it")


def _hunk_diff(structured: Any) -> str | None:
    """The ``@@`` hunks of a Claude ``structuredPatch`` (no file headers)."""
    if not isinstance(structured, list):
        return None
    out: list[str] = []
    for h in structured:
        if not isinstance(h, dict):
            continue
        out.append(
            f"@@ -{to_int(h.get('oldStart'))},{to_int(h.get('oldLines'))}"
            f" +{to_int(h.get('newStart'))},{to_int(h.get('newLines'))} @@"
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
# hooks


class _Hooks:
    """The hook runs a transcript records: Claude Code's own rows (``hook_progress``
    progress rows, ``hook_*`` attachments, ``stop_hook_summary`` system rows) and the
    ``opentraces_hook`` rows opentraces 0.4.x wrote. One run is counted once however
    many rows tell of it; runs for a tool call are listed under its id (the fold marks
    that call's patches ``hook_pretooluse``/``hook_posttooluse``)."""

    def __init__(self) -> None:
        self.events: dict[str, int] = {}
        self.runs: set[tuple] = set()
        self.tool_calls: dict[str, list[str]] = {}
        self.outcomes: dict[str, int] = {}
        self.stops: list[dict[str, Any]] = []

    def seen(self, event: Any, name: Any, tool_use_id: Any, row: Any, outcome: str | None = None) -> None:
        if not isinstance(event, str) or not event:
            event = name.split(":", 1)[0] if isinstance(name, str) and name else None
        if not event:
            return
        call = tool_use_id if isinstance(tool_use_id, str) and tool_use_id else None
        run = (event, name if isinstance(name, str) else None, call or row)
        if outcome:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if run in self.runs:
            return
        self.runs.add(run)
        self.events[event] = self.events.get(event, 0) + 1
        if call is not None and event in ("PreToolUse", "PostToolUse", "PostToolUseFailure"):
            seen = self.tool_calls.setdefault(call, [])
            if event not in seen:
                seen.append(event)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"events": dict(sorted(self.events.items())), "tool_calls": self.tool_calls}
        if self.outcomes:
            out["outcomes"] = dict(sorted(self.outcomes.items()))
        if self.stops:
            out["stops"] = self.stops
        return out


# --------------------------------------------------------------------------
# the parser


class _Parser(ParserState):
    def __init__(self, name: str):
        super().__init__(name)
        self.session_id: str | None = None
        self.other_sessions: set[str] = set()
        self.agent_id: str | None = None
        self.subagent_file: bool | None = None
        self.version: str | None = None
        self.branch: str | None = None
        self.side_model: str | None = None
        self.git_commit: str | None = None
        self.task: str | None = None
        self.task_fallback: str | None = None
        self.hook_rows = 0
        self.hooks = _Hooks()
        self.boundaries: set[str] = set()
        self.step_by_msg: dict[str, StepState] = {}
        self.last_uuid: dict[bool, str | None] = {False: None, True: None}
        self.side_root: dict[str, str] = {}  # sidechain message uuid -> root uuid
        self.root_parent_step: dict[str, int] = {}
        self.pending_tasks: list[tuple[str, int]] = []  # (Task prompt, step index)

    # -- rows ------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        rows, self.skipped = read_jsonl(data)
        for no, obj in rows:
            self.records += 1
            self.row(no, obj)

    def row(self, no: int, obj: dict) -> None:
        kind = self.count_row(obj.get("type"))
        t = self.stamp(obj.get("timestamp"))
        if kind == "opentraces_hook":
            self.hook_row(obj, t)
            return
        if kind == "progress":
            data = obj.get("data")
            if isinstance(data, dict) and data.get("type") == "hook_progress":
                self.hooks.seen(data.get("hookEvent"), data.get("hookName"), obj.get("toolUseID"), obj.get("uuid"))
        elif kind == "attachment":
            att = obj.get("attachment")
            if isinstance(att, dict) and str(att.get("type", "")).startswith("hook_"):
                self.hooks.seen(att.get("hookEvent"), att.get("hookName"), att.get("toolUseID"), obj.get("uuid"),
                                outcome=att["type"][5:])
        elif kind == "system" and obj.get("subtype") == "stop_hook_summary":
            self.hooks.seen("Stop", None, obj.get("toolUseID"), obj.get("uuid"))
            errors = obj.get("hookErrors")
            self.hooks.stops.append({"time": t, "hooks": to_int(obj.get("hookCount")),
                                     "errors": len(errors) if isinstance(errors, list) else 0,
                                     "prevented_continuation": obj.get("preventedContinuation") is True})
        if kind not in _MESSAGE_TYPES:
            uuid = obj.get("uuid")
            if isinstance(uuid, str) and uuid not in self.msg_ids:
                self.alias[uuid] = self.resolve(obj.get("parentUuid"), bool(obj.get("isSidechain")))
            return
        if kind in ("user", "assistant", "system"):
            self.header(obj)
        if self.duplicate(obj.get("uuid")):
            return
        if kind == "user":
            self.user_row(no, obj, t)
        elif kind == "assistant":
            self.assistant_row(no, obj, t)
        elif kind == "system":
            boundary = obj.get("subtype") == "compact_boundary"
            msg = self.add_message(obj, "system", obj.get("content"), t, "meta", root=boundary)
            if boundary:
                cm = obj.get("compactMetadata") if isinstance(obj.get("compactMetadata"), dict) else {}
                self.compacted(t, cm.get("trigger"), cm.get("preTokens"))
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

    def hook_row(self, obj: dict, t: str | None) -> None:
        """A row an ``opentraces_hook`` (opentraces 0.4.x's hooks) wrote into the transcript."""
        self.hook_rows += 1
        data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
        event = obj.get("event")
        self.hooks.seen(event, None, data.get("tool_use_id"), f"line:{self.records}")
        trail = data.get("trail") if isinstance(data.get("trail"), dict) else {}
        head = trail.get("git_head") if isinstance(trail.get("git_head"), dict) else {}
        hexid = head.get("hex") if isinstance(head.get("hex"), str) and head.get("hex") else None
        if event == "Stop":
            git = data.get("git") if isinstance(data.get("git"), dict) else {}
            stop = {"time": t, "permission_mode": data.get("permission_mode"),
                    "git_head": git.get("sha") if isinstance(git.get("sha"), str) else hexid}
            if isinstance(git.get("dirty"), bool):
                stop["dirty"] = git["dirty"]
            if isinstance(git.get("files_changed"), int):
                stop["files_changed"] = git["files_changed"]
            self.hooks.stops.append(stop)
        if self.git_commit is None and hexid:
            self.git_commit = hexid

    # -- context tree ------------------------------------------------------

    def resolve(self, raw: Any, side: bool) -> str | None:
        """The Message uuid a row's ``parentUuid`` stands for.

        Rows that are not messages (progress, dropped rows) are looked
        through; a parent that names nothing known falls back to the last
        message of the same chain kind in file order.
        """
        return self.parent_of(raw, self.last_uuid[side])

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
        self.msg_ids.add(uuid)
        self.last_uuid[side] = uuid
        if side:
            self.side_root[uuid] = self.side_root.get(parent, uuid) if parent else uuid
        return msg

    # -- user rows -----------------------------------------------------------

    def new_step(self, no: int, role: str, side: bool, t: str | None) -> StepState:
        step = StepState(len(self.steps), role, t, no)
        step.agent_role = step.call_type = "subagent" if side else "main"
        self.steps.append(step)
        return step

    def user_row(self, no: int, obj: dict, t: str | None) -> None:
        message = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        content = message.get("content")
        side = bool(obj.get("isSidechain"))
        results = [b for b in _blocks(content) if b.get("type") == "tool_result"]
        if results:
            self.add_message(obj, "tool", content, t, "tool_result")
            self.tool_results(no, obj, results, t)
            return
        if obj.get("isCompactSummary") is True:
            parent = self.resolve(obj.get("parentUuid"), side)
            self.summary_rows += 1
            if parent not in self.boundaries:
                parent = None  # never follow the chain across a compaction
                self.compacted(t)  # a summary with no boundary row before it: still a compaction
            self.add_message(obj, "user", content, t, "compaction_summary", parent=parent, resolved=True)
            return
        text = text_of(content)
        harness = text is not None and text.lstrip().startswith(_HARNESS_PREFIXES)
        if obj.get("isMeta") is True or harness:
            self.add_message(obj, "user", content, t, "meta")
            return
        msg = self.add_message(obj, "user", content, t, "message")
        step = self.new_step(no, "user", side, t)
        step.content = text
        if side and msg is not None:
            root = self.side_root.get(msg.uuid, msg.uuid)
            if root == msg.uuid:
                self.link_sidechain(root, text)
            step.parent_step = self.root_parent_step.get(root)
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

    def tool_results(self, no: int, obj: dict, results: list[dict], t: str | None) -> None:
        tur = obj.get("toolUseResult") if len(results) == 1 else None
        for block in results:
            call_id = block.get("tool_use_id")
            call = self.answer(call_id)
            if call is None:
                continue
            is_error = block.get("is_error") is True
            text = text_of(block.get("content"))
            step = self.observe(no, call_id, call, text, "tool_error" if is_error else None, t,
                                _recorded_ms(tur))
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

    # -- assistant rows ------------------------------------------------------

    def assistant_row(self, no: int, obj: dict, t: str | None) -> None:
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
            step = self.new_step(no, "agent", side, t)
            step.leaf = parent
            if side:
                root = self.side_root.get(parent) if parent else None
                if root is not None:
                    step.parent_step = self.root_parent_step.get(root)
            self.step_by_msg[mid] = step
        step.lines.add(no)
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
            # one LLM call: every row repeats it; the last is final
            step.usage = token_usage(usage, cache_read="cache_read_input_tokens",
                                     cache_write="cache_creation_input_tokens")
        for b in blocks:
            if not step.add_text(b) and b.get("type") == "tool_use":
                self.tool_use(step, b, t)

    def tool_use(self, step: StepState, block: dict, t: str | None) -> None:
        call_id = block.get("id")
        name = block.get("name")
        if not isinstance(call_id, str) or not call_id or call_id in self.calls:
            return
        name = name if isinstance(name, str) else ""
        inp = block.get("input") if isinstance(block.get("input"), dict) else {}
        self.add_call(step, call_id, name, inp, t)
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
        rec = self.new_patch(call, call_id, path, time)
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
        metadata = self.metadata(SOURCE_FORMAT, hook_rows=self.hook_rows)
        if self.hooks.events:
            metadata["hooks"] = self.hooks.summary()
        if self.subagent_file:
            agent_id = _safe_id(self.agent_id or "", "agent id", self.name)
            metadata["parent_session_id"] = sid
            metadata["agent_id"] = agent_id
            sid = _safe_id(f"{sid}-agent-{agent_id}", "session id", self.name)
        if self.other_sessions:
            metadata["other_session_ids"] = sorted(self.other_sessions)
        self.add_repairs(metadata)
        span = self.span(f"Claude Code session {sid}")
        for patch in self.patches:
            patch.time = patch.time or span[0]
        return self.session(
            AGENT, sid, span, metadata,
            stamp_start=False,  # a step before the first timestamp keeps a null one in its record
            agent_version=self.version,
            model=self.model or self.side_model,
            git_branch=self.branch,
            git_commit=self.git_commit,
            task=self.task if self.task is not None else self.task_fallback,
        )


def parse(data: bytes, name: str) -> ParsedSession:
    """Parse one Claude Code transcript; see the module docstring."""
    parser = _Parser(name)
    parser.feed(data)
    return parser.result()
