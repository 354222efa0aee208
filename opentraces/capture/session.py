"""What an agent parser returns: one session, agent-neutral.

Each agent module (``claude_code``, ``codex``, ``pi``) turns a session file's
bytes into a ``ParsedSession``. ``emit.py`` turns that into events and blobs;
parsers never see the bucket. Everything here must be a pure function of the
file's bytes (no clock, no host, no absolute home paths) so that the same
session captured on two machines gives the same events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Message:
    """One item of what the model saw (a context-tree leaf).

    ``uuid`` is unique within the session; ``parent`` is the uuid of the item
    before it in the conversation (None at a root or after a compaction).
    ``content`` is JSON-able and kept as the agent wrote it.
    """

    uuid: str
    parent: str | None
    role: str  # user | assistant | tool | system | summary | developer
    content: Any
    time: str | None = None
    kind: str = "message"  # message | tool_result | compaction_summary | reasoning | meta
    sidechain: bool = False  # a sub-agent branch


@dataclass
class PatchRecord:
    """One file change the agent made (Edit/Write/MultiEdit/apply_patch...).

    ``path`` is relative to the project root when the file is under it,
    otherwise absolute. ``before``/``after`` are the full file contents when
    known (None: file did not exist / content unknown, see ``before_known``).
    ``hunk_diff`` is a unified diff to use when full contents are unknown.
    """

    step: int
    seq: int  # order of this patch within the session, from 0
    tool_name: str
    tool_call_id: str | None
    path: str
    time: str
    before: bytes | None
    after: bytes | None
    before_known: bool = True
    after_known: bool = True
    hunk_diff: str | None = None
    operation: str = "modify"  # modify | create | delete


@dataclass
class ParsedStep:
    """A TraceRecord Step as a dict (schema field names), plus bookkeeping.

    ``record`` holds the Step fields except ``context_node_id``.
    ``rev`` counts the source records that contributed (it grows only when
    the step gains content, so a re-capture of an unchanged step gives the
    same event). ``context_leaf`` is the uuid of the last Message the model
    saw before producing this step (None for user steps).
    """

    index: int
    time: str
    record: dict[str, Any]
    rev: int
    context_leaf: str | None = None


@dataclass
class ParsedSession:
    agent: str  # "claude-code" | "codex-cli" | "pi"
    session_id: str
    cwd: str | None
    started_at: str
    ended_at: str
    agent_version: str | None = None
    model: str | None = None
    git_branch: str | None = None
    git_commit: str | None = None
    task: str | None = None
    steps: list[ParsedStep] = field(default_factory=list)
    patches: list[PatchRecord] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    # context layers known for the whole session: layer type -> JSON content
    layers: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    records: int = 0  # source records parsed
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)
    success: bool | None = None
    terminal_state: str | None = None


class SessionParseError(ValueError):
    """The file is not a session of this agent at all (not a partial skip)."""
