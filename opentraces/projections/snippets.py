"""Step ``snippets``: the code a step read or wrote, as the schema's Snippet.

Derived at fold time from the step's own record (its tool calls and their
observations), so a snippet is never a second stored copy of anything: it
is rebuilt with ``trace.json`` and, under a security policy, it comes from
the redacted session like the rest of the record. Pure.

What counts (only calls whose observation reports no error):

- a file read: Claude Code ``Read`` (``N<TAB>line`` or ``N→line`` numbering),
  Pi ``read`` (``offset``/``limit``, its ``[N more lines ...]`` trailer
  dropped), a Codex shell ``cat FILE`` or ``sed -n 'A,Bp' FILE``: the text
  with its first and last line numbers;
- a file written whole: Claude Code/Pi ``Write``/``write``, Codex
  ``apply_patch`` ``*** Add File``: lines 1..n;
- an edit: the new text of Claude Code ``Edit``/``MultiEdit``, Pi ``edit``
  and each ``*** Update File`` of a Codex ``apply_patch`` (the hunks' new
  side); line numbers unknown (null).

``text`` is cut at 5,000 characters (the schema's bound); ``language``
comes from the file's extension.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from typing import Any, Iterator

MAX_TEXT = 5000

LANGUAGES = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".ts": "typescript", ".tsx": "tsx", ".jsx": "jsx", ".rs": "rust", ".go": "go", ".java": "java",
    ".kt": "kotlin", ".swift": "swift", ".rb": "ruby", ".php": "php", ".c": "c", ".h": "c", ".cc": "cpp",
    ".cpp": "cpp", ".hpp": "cpp", ".cs": "csharp", ".scala": "scala", ".sh": "bash", ".bash": "bash",
    ".zsh": "zsh", ".ps1": "powershell", ".sql": "sql", ".html": "html", ".css": "css", ".scss": "scss",
    ".vue": "vue", ".svelte": "svelte", ".md": "markdown", ".rst": "rst", ".json": "json", ".jsonl": "json",
    ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".ini": "ini", ".cfg": "ini", ".xml": "xml",
    ".lua": "lua", ".r": "r", ".jl": "julia", ".ex": "elixir", ".exs": "elixir", ".erl": "erlang",
    ".hs": "haskell", ".ml": "ocaml", ".dart": "dart", ".tf": "hcl", ".proto": "protobuf", ".nix": "nix",
}
NAMES = {"dockerfile": "dockerfile", "makefile": "make", "cmakelists.txt": "cmake"}

_NUMBERED = re.compile(r"^ *(\d+)(?:\t|→)(.*)$", re.M)
_PI_TRAILER = re.compile(r"\n*\[\d+ more lines? in file\. Use offset=\d+ to continue\.?\]\s*$")
_SED_RANGE = re.compile(r"^'?(\d+)(?:,(\d+))?p'?$")


def language_of(path: str) -> str | None:
    base = posixpath.basename(path.replace("\\", "/")).lower()
    if base in NAMES:
        return NAMES[base]
    return LANGUAGES.get(posixpath.splitext(base)[1])


def _snippet(path: str, text: str, start: int | None, end: int | None, step: int) -> dict[str, Any]:
    return {"file_path": path, "start_line": start, "end_line": end, "language": language_of(path),
            "text": text[:MAX_TEXT], "source_step": step}


def _lines(text: str) -> int:
    return text.count("\n") + (0 if text.endswith("\n") or not text else 1)


def _numbered(text: str) -> tuple[str, int, int] | None:
    """A ``cat -n``-style listing (every line numbered) as (text, first line, last line)."""
    body = text.strip("\n")
    found = _NUMBERED.findall(body)
    if not found or len(found) != body.count("\n") + 1:
        return None
    return "\n".join(line for _, line in found) + "\n", int(found[0][0]), int(found[-1][0])


def _path_of(inp: dict) -> str | None:
    for key in ("file_path", "path", "filePath", "notebook_path"):
        if isinstance(inp.get(key), str) and inp[key]:
            return inp[key]
    return None


def _shell_read(inp: dict) -> tuple[str, int | None] | None:
    """(path, first line) of a plain ``cat FILE`` or ``sed -n 'A,Bp' FILE`` command."""
    cmd = inp.get("cmd", inp.get("command"))
    if isinstance(cmd, list):
        cmd = cmd[-1] if cmd and all(isinstance(c, str) for c in cmd) else None
    if not isinstance(cmd, str) or any(c in cmd for c in "|;&><`$"):
        return None
    try:
        argv = shlex.split(cmd)
    except ValueError:
        return None
    if len(argv) == 2 and argv[0] == "cat" and not argv[1].startswith("-"):
        return argv[1], 1
    if len(argv) == 4 and argv[0] == "sed" and argv[1] == "-n":
        m = _SED_RANGE.match(argv[2])
        if m and not argv[3].startswith("-"):
            return argv[3], int(m.group(1))
    return None


def _shell_output(text: str) -> str | None:
    """A Codex exec output's body (after its ``Output:`` header), None when it failed."""
    head, sep, body = text.partition("\nOutput:\n")
    if sep and len(head) < 400:
        code = re.search(r"Process exited with code (\d+)", head)
        if code and code.group(1) != "0":
            return None
        return body
    return text


def _patch_files(patch: str) -> Iterator[tuple[str, str, bool]]:
    """(path, new-side text, whole file) for each Add/Update of an apply_patch text."""
    path = None
    whole = False
    lines: list[str] = []
    for line in patch.split("\n"):
        head = re.match(r"^\*\*\* (Add|Update|Delete) File: (.+)$", line)
        if head or line.startswith("*** End Patch") or line.startswith("*** Move to: "):
            if line.startswith("*** Move to: ") and path is not None:
                path = line[len("*** Move to: "):].strip()
                continue
            if path is not None and lines:
                yield path, "\n".join(lines) + "\n", whole
            path, whole, lines = None, False, []
            if head and head.group(1) != "Delete":
                path, whole = head.group(2).strip(), head.group(1) == "Add"
            continue
        if path is None or line.startswith("@@") or line.startswith("*** "):
            continue
        if line.startswith("+"):
            lines.append(line[1:])
        elif line.startswith(" ") and not whole:
            lines.append(line[1:])


def step_snippets(step: dict[str, Any]) -> list[dict[str, Any]]:
    """The snippets of one TraceRecord step (its record as the fold builds it)."""
    index = step.get("step_index", 0)
    results: dict[str, dict] = {}
    for o in step.get("observations") or []:
        if isinstance(o, dict) and isinstance(o.get("source_call_id"), str):
            results[o["source_call_id"]] = o
    out: list[dict[str, Any]] = []
    for call in step.get("tool_calls") or []:
        obs = results.get(call.get("tool_call_id"))
        if obs is None or obs.get("error") is not None:
            continue
        name = str(call.get("tool_name") or "").lower()
        inp = call.get("input") if isinstance(call.get("input"), dict) else {}
        path = _path_of(inp)
        content = obs.get("content") if isinstance(obs.get("content"), str) else None
        if name == "read" and path and content:
            listed = _numbered(content)
            if listed is not None:
                out.append(_snippet(path, listed[0], listed[1], listed[2], index))
            else:
                text = _PI_TRAILER.sub("\n", content)
                offset = inp.get("offset")
                start = offset if isinstance(offset, int) and offset > 0 else 1
                out.append(_snippet(path, text, start, start + _lines(text) - 1, index))
        elif name == "write" and path and isinstance(inp.get("content"), str):
            text = inp["content"]
            out.append(_snippet(path, text, 1, max(_lines(text), 1), index))
        elif name in ("edit", "multiedit") and path:
            edits = inp.get("edits") if isinstance(inp.get("edits"), list) else [inp]
            for e in edits:
                new = e.get("new_string", e.get("newText")) if isinstance(e, dict) else None
                if isinstance(new, str) and new.strip():
                    out.append(_snippet(path, new, None, None, index))
        elif name == "apply_patch":
            patch = inp.get("input", inp.get("patch"))
            if isinstance(patch, str):
                for fpath, text, whole in _patch_files(patch):
                    out.append(_snippet(fpath, text, 1 if whole else None, _lines(text) if whole else None, index))
        elif content and (read := _shell_read(inp)) is not None:
            body = _shell_output(content)
            if body:
                fpath, start = read
                out.append(_snippet(fpath, body, start, start + _lines(body) - 1, index))
    return out
