"""What the agent parsers share: reading the lines, times, ids, steps.

Claude Code transcripts, Codex CLI rollouts and Pi sessions are all JSON
lines that become the same ``ParsedSession``. The agent modules differ in
what a row means; this module holds the parts that do not depend on the
agent:

- discovery: ``glob_files`` (an agent's folder is ``opentraces.agentfiles.default_root``);
- reading: ``read_jsonl`` (one object per line, bad lines skipped with a
  reason), ``call_input`` (tool arguments as a JSON object);
- values: ``to_int``, ``check_id`` (a session id safe as a path component),
  ``time_key`` / ``millis_between`` for normalized ``...Z`` times,
  ``resolve_path`` / ``diff_path`` for the paths tools name;
- ``StepState``: a TraceRecord Step being assembled, and its record;
- ``ParserState``: the bookkeeping of one parse (records, skipped lines,
  times, row types, steps, messages, tool calls, patches, context-tree
  repairs) and the steps every parser takes with it.

Like the parsers, everything here is a pure function of its arguments.
"""

from __future__ import annotations

import datetime as _dt
import json
import posixpath
from pathlib import Path
from typing import Any, Mapping

import orjson

from ..errors import RefusedError
from ..events import normalize_time
from ..ids import check_component
from .session import Message, ParsedSession, ParsedStep, PatchRecord, SessionParseError

SUMMARY_CHARS = 200  # length of an observation's output_summary
UNKNOWN = object()  # a file content the session has not shown


# --------------------------------------------------------------------------
# discovery


def glob_files(root: Path, pattern: str) -> list[Path]:
    """The files under ``root`` matching ``pattern``, sorted ([] without ``root``)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob(pattern) if p.is_file())


# --------------------------------------------------------------------------
# reading


def fix_surrogates(obj: Any) -> Any:
    """Replace lone UTF-16 surrogates (valid JSON escapes, invalid UTF-8)."""
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
            return obj
        except UnicodeEncodeError:
            return obj.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(obj, list):
        return [fix_surrogates(v) for v in obj]
    if isinstance(obj, dict):
        return {fix_surrogates(k): fix_surrogates(v) for k, v in obj.items()}
    return obj


def read_jsonl(data: bytes) -> tuple[list[tuple[int, dict]], list[tuple[int, str]]]:
    """(line number, object) for each JSON-object line; (line, reason) for the rest.

    Line numbers count from 1; a UTF-8 byte order mark and blank lines are
    ignored. The reasons are ``not UTF-8``, ``invalid JSON`` (a torn last
    line too), ``nested too deeply`` and ``not a JSON object``.
    """
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
            # orjson refuses lone surrogate escapes that the json module accepts
            try:
                obj = fix_surrogates(json.loads(raw.decode("utf-8")))
            except ValueError:
                skipped.append((no, "invalid JSON"))
                continue
            except RecursionError:  # nested deeper than any parser here follows: one skipped line
                skipped.append((no, "nested too deeply"))
                continue
        if not isinstance(obj, dict):
            skipped.append((no, "not a JSON object"))
            continue
        rows.append((no, obj))
    return rows, skipped


def text_of(
    content: Any, *, text_types: tuple[str, ...] | None = ("text",), images: tuple[str, ...] = (),
) -> str | None:
    """A message's text: the string itself, or its blocks' texts joined by newlines.

    A block counts when its type is one of ``text_types`` (any type when
    None) and it has a string ``text``; a block whose type is one of
    ``images`` reads ``[image]``. None when nothing counts.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for b in content:
            if not isinstance(b, dict):
                continue
            if (text_types is None or b.get("type") in text_types) and isinstance(b.get("text"), str):
                parts.append(b["text"])
            elif b.get("type") in images:
                parts.append("[image]")
        if parts:
            return "\n".join(parts)
    return None


def call_input(args: Any) -> dict:
    """A tool call's arguments as a dict: JSON text is decoded, other text kept under ``arguments``."""
    if isinstance(args, str):
        try:
            parsed = json.loads(args)
        except (ValueError, RecursionError):
            parsed = None
        return parsed if isinstance(parsed, dict) else {"arguments": args}
    return args if isinstance(args, dict) else {}


# --------------------------------------------------------------------------
# values


def to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return int(value)


def check_id(value: Any, name: str, what: str = "session id", *, where: str = "", tail: str = "") -> str:
    """``value`` when it is safe as one path component, else ``SessionParseError``.

    ``where`` and ``tail`` go around the reason in the error message.
    """
    if not isinstance(value, str) or not value:
        raise SessionParseError(f"{name}: the session has no id")
    try:
        return check_component(value, what)
    except RefusedError as exc:
        raise SessionParseError(f"{name}: unsafe {what} {value!r}{where} ({exc.message}){tail}") from None


def time_key(t: str) -> tuple[str, str]:
    """Order key of a normalized ``...Z`` time (fractions of any length)."""
    base, _, frac = t[:-1].partition(".")
    return base, frac.ljust(9, "0")


def _to_datetime(t: str) -> _dt.datetime:
    base, frac = time_key(t)
    return _dt.datetime.fromisoformat(f"{base}.{frac[:6]}+00:00")


def millis_between(start: str | None, end: str | None) -> int | None:
    """Whole milliseconds from ``start`` to ``end`` (None: unknown or negative)."""
    if not start or not end:
        return None
    try:
        a, b = _to_datetime(start), _to_datetime(end)
    except ValueError:
        return None
    if b < a:
        return None
    return int((b - a) / _dt.timedelta(milliseconds=1))


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


# --------------------------------------------------------------------------
# steps


def token_usage(
    usage: Mapping[str, Any] | None, *, input: str = "input_tokens", output: str = "output_tokens",
    cache_read: str = "cache_read_tokens", cache_write: str = "cache_write_tokens",
) -> dict[str, int]:
    """A Step's ``token_usage`` from an agent's usage mapping, read under the agent's key names."""
    usage = usage or {}
    return {
        "input_tokens": to_int(usage.get(input)),
        "output_tokens": to_int(usage.get(output)),
        "cache_read_tokens": to_int(usage.get(cache_read)),
        "cache_write_tokens": to_int(usage.get(cache_write)),
        "prefix_reuse_tokens": 0,
    }


def observation(call_id: str, text: str | None, error: str | None) -> dict[str, Any]:
    return {
        "source_call_id": call_id,
        "content": text,
        "output_summary": text[:SUMMARY_CHARS] if text else None,
        "error": error,
    }


class StepState:
    """A step being assembled; ``lines`` are the source lines that shaped it.

    ``rev`` is the number of those lines, so a step's record changes only
    together with its ``rev``. ``usage`` holds Step ``token_usage`` names.
    ``agent_role`` and ``call_type`` go to the record as they are.
    """

    __slots__ = (
        "index", "role", "time", "texts", "thinks", "content", "model", "calls", "obs", "usage", "lines",
        "leaf", "agent_role", "call_type", "parent_step", "traj_ref",
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
        self.parent_step: int | None = None
        self.traj_ref: str | None = None

    def add_text(self, block: dict) -> bool:
        """Take a non-empty ``text`` or ``thinking`` block; False for any other block."""
        btype = block.get("type")
        if btype == "text" and isinstance(block.get("text"), str) and block["text"]:
            self.texts.append(block["text"])
        elif btype == "thinking" and isinstance(block.get("thinking"), str) and block["thinking"]:
            self.thinks.append(block["thinking"])
        else:
            return False
        return True

    def record(self, timestamp: str | None) -> dict[str, Any]:
        """The Step fields (all but ``context_node_id``)."""
        return {
            "step_index": self.index,
            "role": self.role,
            "content": ("\n".join(self.texts) or None) if self.role == "agent" else self.content,
            "reasoning_content": "\n".join(self.thinks) or None,
            "model": self.model,
            "system_prompt_hash": None,
            "agent_role": self.agent_role,
            "parent_step": self.parent_step,
            "call_type": self.call_type,
            "subagent_trajectory_ref": self.traj_ref,
            "tools_available": [],
            "tool_calls": [dict(c) for c in self.calls],
            "observations": [dict(o) for o in self.obs],
            "snippets": [],
            "token_usage": token_usage(self.usage),
            "timestamp": timestamp,
        }

    def parsed(self, started: str, *, stamp_start: bool = True) -> ParsedStep:
        """The finished step; a step with no time of its own takes ``started``
        (in its record too, unless ``stamp_start`` is False)."""
        time = self.time or started
        return ParsedStep(
            index=self.index,
            time=time,
            record=self.record(time if stamp_start else self.time),
            rev=len(self.lines),
            context_leaf=self.leaf if self.role == "agent" else None,
        )


# --------------------------------------------------------------------------
# the parse


class ParserState:
    """What every agent parser keeps while it reads one file.

    ``calls`` maps a tool call id to ``{step, name, input, time, answered}``
    plus what the agent module adds. ``msg_ids``, ``alias`` (a row the
    model never sees -> the message it stands for) and the repair counters
    serve agents whose rows carry their own ids and parents.
    """

    def __init__(self, name: str):
        self.name = name
        self.records = 0
        self.skipped: list[tuple[int, str]] = []
        self.times: list[str] = []
        self.last_time: str | None = None
        self.row_types: dict[str, int] = {}
        self.compactions = 0
        self.compaction_log: list[dict[str, Any]] = []  # what each compaction recorded
        self.summary_rows = 0  # rows holding a compaction's summary
        self.recorded_costs: dict[int, float] = {}  # step index -> USD the agent recorded
        self.cwd: str | None = None
        self.model: str | None = None
        self.steps: list[StepState] = []
        self.messages: list[Message] = []
        self.calls: dict[str, dict] = {}
        self.patches: list[PatchRecord] = []
        self.terminal_state: str | None = None
        self.msg_ids: set[str] = set()
        self.alias: dict[str, str | None] = {}
        self.repaired_parents = 0
        self.duplicate_rows = 0
        self.orphan_results = 0

    # -- rows ----------------------------------------------------------------

    def count_row(self, kind: Any) -> str:
        """Count a row under its type (``?`` when it has none); returns the type."""
        kind = kind if isinstance(kind, str) else "?"
        self.row_types[kind] = self.row_types.get(kind, 0) + 1
        return kind

    def stamp(self, *raw: Any) -> str | None:
        """A row's time: the first of ``raw`` that is a time, normalized and
        recorded; else the last time seen (None before any)."""
        for value in raw:
            t = normalize_time(value)
            if t is not None:
                self.times.append(t)
                self.last_time = t
                return t
        return self.last_time

    def span(self, what: str) -> tuple[str, str]:
        """(first, last) time of the session; ``what`` names it in the error."""
        if not self.times:
            raise SessionParseError(f"{self.name}: {what} has no timestamps")
        ordered = sorted(set(self.times), key=time_key)
        return ordered[0], ordered[-1]

    def duplicate(self, uuid: Any) -> bool:
        """True (and counted) when a row repeats the id of an earlier row."""
        if isinstance(uuid, str) and (uuid in self.msg_ids or uuid in self.alias):
            self.duplicate_rows += 1
            return True
        return False

    def parent_of(self, parent: Any, fallback: str | None) -> str | None:
        """The message a row's parent id stands for.

        Rows that are not messages are looked through (``alias``); a parent
        that names nothing known is repaired to ``fallback``.
        """
        if not isinstance(parent, str) or not parent:
            return None
        if parent in self.alias:
            return self.alias[parent]
        if parent in self.msg_ids:
            return parent
        self.repaired_parents += 1
        return fallback

    def compacted(self, t: str | None, trigger: Any = None, pre_tokens: Any = None) -> None:
        """Count a compaction with what the transcript recorded about it (its
        trigger, ``manual``/``auto``, and the context's tokens before it)."""
        self.compactions += 1
        self.compaction_log.append({
            "time": t, "trigger": trigger if isinstance(trigger, str) and trigger else None,
            "pre_tokens": int(pre_tokens) if isinstance(pre_tokens, (int, float)) and not isinstance(pre_tokens, bool)
            else None,
        })

    def record_cost(self, step: StepState, usd: Any) -> None:
        """The cost in USD the agent recorded for a step's LLM call."""
        if isinstance(usd, (int, float)) and not isinstance(usd, bool) and usd >= 0:
            self.recorded_costs[step.index] = float(usd)

    # -- tool calls ----------------------------------------------------------

    def add_call(self, step: StepState, call_id: str, name: str, inp: dict, t: str | None, **extra: Any) -> dict:
        """Record a tool call in ``step`` and among the calls waiting for a result."""
        step.calls.append({"tool_call_id": call_id, "tool_name": name, "input": inp, "duration_ms": None})
        call = {"step": step.index, "name": name, "input": inp, "time": t, "answered": False, **extra}
        self.calls[call_id] = call
        return call

    def answer(self, call_id: Any) -> dict | None:
        """The call a tool result answers, now marked answered; None when the
        call is unknown (counted in ``orphan_results``) or answered before."""
        call = self.calls.get(call_id) if isinstance(call_id, str) else None
        if call is None:
            self.orphan_results += 1
            return None
        if call["answered"]:
            return None
        call["answered"] = True
        return call

    def observe(self, line: int, call_id: str, call: dict, text: str | None, error: str | None,
                t: str | None, recorded_ms: int | None = None) -> StepState:
        """Give the calling step the result as an observation and the call its duration: the one
        the agent recorded (``recorded_ms``, or one recorded earlier in ``call["recorded_ms"]``),
        else the time between the call's row and the result's row."""
        step = self.steps[call["step"]]
        step.obs.append(observation(call_id, text, error))
        if recorded_ms is not None:
            call["recorded_ms"] = recorded_ms
        duration = call.get("recorded_ms")
        if duration is None:
            duration = millis_between(call["time"], t)
        for c in step.calls:
            if c["tool_call_id"] == call_id:
                c["duration_ms"] = duration
        step.lines.add(line)
        return step

    def record_duration(self, line: int, call_id: str, call: dict, ms: int | None) -> None:
        """The agent recorded how long a call ran (it may say so after the result row)."""
        if ms is None or ms < 0:
            return
        call["recorded_ms"] = ms
        step = self.steps[call["step"]]
        for c in step.calls:
            if c["tool_call_id"] == call_id and c["duration_ms"] != ms:
                c["duration_ms"] = ms
                step.lines.add(line)

    def new_patch(self, call: dict, call_id: str, path: str, time: str, tool_name: str | None = None) -> PatchRecord:
        """The next patch of the session, made by ``call``; contents still unset."""
        return PatchRecord(
            step=call["step"], seq=len(self.patches), tool_name=call["name"] if tool_name is None else tool_name,
            tool_call_id=call_id, path=path, time=time, before=None, after=None,
        )

    # -- result --------------------------------------------------------------

    def not_a_session(self, what: str, missing: str) -> SessionParseError:
        unreadable = f"; {len(self.skipped)} unreadable lines" if self.skipped else ""
        return SessionParseError(f"{self.name or 'session'}: not a {what} (no {missing}{unreadable})")

    def metadata(self, source_format: str, **first: Any) -> dict[str, Any]:
        """The metadata every parser reports (``first`` goes after the format):
        ``compaction`` when the session was compacted (each compaction's time,
        trigger and tokens before it, and the summary rows), ``recorded_cost``
        when the agent recorded what its calls cost (the fold prices the rest)."""
        meta: dict[str, Any] = {
            "source_format": source_format,
            **first,
            "skipped_lines": len(self.skipped),
            "row_types": dict(sorted(self.row_types.items())),
            "compactions": self.compactions,
        }
        if self.compactions or self.summary_rows:
            meta["compaction"] = {"count": self.compactions, "summary_rows": self.summary_rows,
                                  "events": self.compaction_log}
        if self.recorded_costs:
            meta["recorded_cost"] = {"usd": round(sum(self.recorded_costs.values()), 9),
                                     "steps": sorted(self.recorded_costs)}
        return meta

    def session(self, agent: str, session_id: str, span: tuple[str, str], metadata: dict[str, Any], *,
                stamp_start: bool = True, **fields: Any) -> ParsedSession:
        """The ``ParsedSession`` of what was read; ``fields`` add to or override it."""
        started, ended = span
        values: dict[str, Any] = {
            "agent": agent,
            "session_id": session_id,
            "cwd": self.cwd,
            "started_at": started,
            "ended_at": ended,
            "model": self.model,
            "steps": [s.parsed(started, stamp_start=stamp_start) for s in self.steps],
            "patches": self.patches,
            "messages": self.messages,
            "metadata": metadata,
            "records": self.records,
            "skipped": self.skipped,
            "terminal_state": self.terminal_state,
        }
        values.update(fields)
        return ParsedSession(**values)

    def add_repairs(self, metadata: dict[str, Any]) -> None:
        """Report the context-tree repairs and orphan results, when any."""
        for key, n in (("repaired_parents", self.repaired_parents), ("duplicate_rows", self.duplicate_rows),
                       ("orphan_tool_results", self.orphan_results)):
            if n:
                metadata[key] = n
