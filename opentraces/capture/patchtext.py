"""Patch text helpers shared by the agent parsers.

* ``parse_apply_patch`` reads the Codex ``apply_patch`` envelope
  (``*** Begin Patch`` ... ``*** End Patch``) into per-file operations.
* ``apply_update`` replays an Update File operation on a known pre-image with
  the same rules ``apply_patch`` uses (context seek, then the old lines, then
  a whitespace-tolerant retry), so a parser can know the post-image.
* ``unified_diff`` / ``chunks_diff`` / ``new_file_diff`` write git-style
  unified diffs (``diff --git a/p b/p``, ``--- a/p``, ``+++ b/p``, ``@@``)
  that ``git apply`` accepts at the repository root.
* ``apply_replacements`` applies Edit-style old/new text replacements.
* ``is_read_only_command`` tells whether a shell command can be trusted not
  to change files (so known file contents stay known across it).

Everything here is pure string work: no file system, no clock.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field

BEGIN = "*** Begin Patch"
END = "*** End Patch"
ADD = "*** Add File: "
DELETE = "*** Delete File: "
UPDATE = "*** Update File: "
MOVE = "*** Move to: "
EOF_MARK = "*** End of File"


class PatchTextError(ValueError):
    """The text is not a well-formed apply_patch envelope."""


@dataclass
class Chunk:
    """One ``@@`` section of an Update File operation."""

    context: str | None = None  # the text after "@@", a line to seek to first
    lines: list[tuple[str, str]] = field(default_factory=list)  # (" "|"-"|"+", text)
    eof: bool = False  # "*** End of File": the chunk ends at the end of the file

    @property
    def old_lines(self) -> list[str]:
        return [t for tag, t in self.lines if tag != "+"]

    @property
    def new_lines(self) -> list[str]:
        return [t for tag, t in self.lines if tag != "-"]


@dataclass
class FileOp:
    kind: str  # add | delete | update
    path: str
    move_to: str | None = None
    content: str | None = None  # add: the new file's text
    chunks: list[Chunk] = field(default_factory=list)


# ---------------------------------------------------------------------------
# apply_patch envelope


def extract_apply_patch(text: str) -> str | None:
    """The ``*** Begin Patch`` ... ``*** End Patch`` block inside ``text``."""
    if not isinstance(text, str):
        return None
    start = text.find(BEGIN)
    if start < 0:
        return None
    end = text.find(END, start)
    if end < 0:
        return text[start:]
    return text[start : end + len(END)] + "\n"


def parse_apply_patch(text: str) -> list[FileOp]:
    """Parse an apply_patch envelope; raise PatchTextError when malformed."""
    block = extract_apply_patch(text)
    if block is None:
        raise PatchTextError("no '*** Begin Patch' marker")
    lines = block.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    if not lines or lines[0].strip() != BEGIN:
        raise PatchTextError("patch does not start with '*** Begin Patch'")
    ops: list[FileOp] = []
    i = 1
    n = len(lines)
    ended = False
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if stripped == END:
            ended = True
            break
        if line.startswith(ADD):
            op = FileOp("add", line[len(ADD) :].strip())
            i += 1
            body: list[str] = []
            while i < n and lines[i].startswith("+"):
                body.append(lines[i][1:])
                i += 1
            op.content = "".join(b + "\n" for b in body)
            ops.append(op)
            continue
        if line.startswith(DELETE):
            ops.append(FileOp("delete", line[len(DELETE) :].strip()))
            i += 1
            continue
        if line.startswith(UPDATE):
            op = FileOp("update", line[len(UPDATE) :].strip())
            i += 1
            if i < n and lines[i].startswith(MOVE):
                op.move_to = lines[i][len(MOVE) :].strip()
                i += 1
            chunk: Chunk | None = None
            while i < n:
                cur = lines[i]
                if cur.startswith("*** ") and cur.strip() != EOF_MARK:
                    break
                if cur.strip() == EOF_MARK:
                    if chunk is not None:
                        chunk.eof = True
                    i += 1
                    continue
                if cur.startswith("@@"):
                    ctx = cur[2:].strip()
                    if chunk is not None and not chunk.lines:
                        # stacked "@@ class A" / "@@ def b": keep the innermost
                        chunk.context = ctx or chunk.context
                    else:
                        chunk = Chunk(context=ctx or None)
                        op.chunks.append(chunk)
                    i += 1
                    continue
                if chunk is None:
                    chunk = Chunk()
                    op.chunks.append(chunk)
                if cur == "":
                    chunk.lines.append((" ", ""))
                elif cur[0] in " -+":
                    chunk.lines.append((cur[0], cur[1:]))
                else:
                    raise PatchTextError(f"unexpected line in update hunk: {cur[:60]!r}")
                i += 1
            op.chunks = [c for c in op.chunks if c.lines]
            if not op.chunks and op.move_to is None:
                raise PatchTextError(f"update of {op.path!r} has no hunks")
            ops.append(op)
            continue
        if stripped == "":
            i += 1
            continue
        raise PatchTextError(f"unexpected line: {line[:60]!r}")
    if not ended:
        raise PatchTextError("patch has no '*** End Patch' marker")
    if not ops:
        raise PatchTextError("patch changes no file")
    return ops


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _seek(lines: list[str], pattern: list[str], start: int, eof: bool) -> int | None:
    """apply_patch's sequence search: exact, then rstrip, then strip."""
    if not pattern:
        return start
    if len(pattern) > len(lines):
        return None
    last = len(lines) - len(pattern)
    first = last if eof and last >= start else start
    for norm in (lambda s: s, str.rstrip, str.strip):
        pat = [norm(p) for p in pattern]
        for i in range(first, last + 1):
            if all(norm(lines[i + k]) == pat[k] for k in range(len(pat))):
                return i
    if eof and first != start:
        return _seek(lines, pattern, start, False)
    return None


def apply_update(before: str, chunks: list[Chunk]) -> str | None:
    """The file text after applying ``chunks`` to ``before`` (None: no match)."""
    lines = _split_lines(before)
    idx = 0
    repl: list[tuple[int, int, list[str]]] = []
    for ch in chunks:
        if ch.context is not None:
            at = _seek(lines, [ch.context], idx, False)
            if at is None:
                return None
            idx = at + 1
        old, new = ch.old_lines, ch.new_lines
        if not old:
            repl.append((len(lines), 0, new))
            continue
        at = _seek(lines, old, idx, ch.eof)
        if at is None and old and old[-1] == "":
            old, new = old[:-1], new[:-1] if new and new[-1] == "" else new
            at = _seek(lines, old, idx, ch.eof)
        if at is None:
            return None
        repl.append((at, len(old), new))
        idx = at + len(old)
    repl.sort(key=lambda r: r[0])
    out = list(lines)
    for start, count, new in reversed(repl):
        out[start : start + count] = new
    return "".join(ln + "\n" for ln in out)


# ---------------------------------------------------------------------------
# Edit-style replacements


def apply_replacements(before: str, edits: list[tuple[str, str]], replace_all: bool = False) -> str | None:
    """Apply (old, new) replacements, each matched against ``before``.

    Every ``old`` must occur exactly once (or at least once with
    ``replace_all``) and the matches must not overlap; otherwise None.
    """
    spans: list[tuple[int, int, str]] = []
    for old, new in edits:
        if not isinstance(old, str) or not isinstance(new, str) or old == "":
            return None
        if replace_all:
            pos = 0
            found = False
            while True:
                at = before.find(old, pos)
                if at < 0:
                    break
                spans.append((at, at + len(old), new))
                pos = at + len(old)
                found = True
            if not found:
                return None
            continue
        at = before.find(old)
        if at < 0 or before.find(old, at + 1) >= 0:
            return None
        spans.append((at, at + len(old), new))
    spans.sort()
    for a, b in zip(spans, spans[1:]):
        if a[1] > b[0]:
            return None
    out = []
    pos = 0
    for start, end, new in spans:
        out.append(before[pos:start])
        out.append(new)
        pos = end
    out.append(before[pos:])
    return "".join(out)


# ---------------------------------------------------------------------------
# unified diffs


def _range(start: int, length: int) -> str:
    # GNU/git convention: an empty range names the line before it
    if length == 1:
        return f"{start}"
    if length == 0:
        start -= 1
    return f"{start},{length}"


def _header(old_path: str | None, new_path: str | None) -> list[str]:
    a = old_path if old_path is not None else new_path
    b = new_path if new_path is not None else old_path
    out = [f"diff --git a/{a} b/{b}"]
    if old_path is None:
        out.append("new file mode 100644")
    elif new_path is None:
        out.append("deleted file mode 100644")
    elif old_path != new_path:
        out += [f"rename from {old_path}", f"rename to {new_path}"]
    return out


def _body_lines(text: str) -> list[str]:
    """Lines of ``text`` split on ``\n`` only, endings kept (the last may lack one)."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _emit(tag: str, line: str, out: list[str]) -> None:
    if line.endswith("\n"):
        out.append(tag + line[:-1])
    else:
        out.append(tag + line)
        out.append("\\ No newline at end of file")


def unified_diff(
    old_path: str | None,
    new_path: str | None,
    before: str | None,
    after: str | None,
    context: int = 3,
) -> str | None:
    """A git-style unified diff between two known texts (None: no change).

    ``before`` None means the file did not exist (creation); ``after`` None
    means it was deleted. Paths are repository-relative, without ``a/``.
    """
    if before is None and after is None:
        return None
    if before == after and old_path == new_path:
        return None
    a = _body_lines(before or "")
    b = _body_lines(after or "")
    head = _header(old_path if before is not None else None, new_path if after is not None else None)
    if before is None and not b:
        return "\n".join(head) + "\n"  # empty new file
    if after is None and not a:
        return "\n".join(head) + "\n"  # empty file deleted
    head.append("--- /dev/null" if before is None else f"--- a/{old_path}")
    head.append("+++ /dev/null" if after is None else f"+++ b/{new_path}")
    if a == b:
        return "\n".join(head[:-2]) + "\n"  # pure rename
    out = list(head)
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in sm.get_grouped_opcodes(context):
        i1, i2 = group[0][1], group[-1][2]
        j1, j2 = group[0][3], group[-1][4]
        out.append(f"@@ -{_range(i1 + 1, i2 - i1)} +{_range(j1 + 1, j2 - j1)} @@")
        for tag, x1, x2, y1, y2 in group:
            if tag == "equal":
                for line in a[x1:x2]:
                    _emit(" ", line, out)
                continue
            for line in a[x1:x2]:
                _emit("-", line, out)
            for line in b[y1:y2]:
                _emit("+", line, out)
    return "\n".join(out) + "\n"


def new_file_diff(path: str, content: str) -> str:
    return unified_diff(None, path, None, content) or ""


def chunks_diff(path: str, chunks: list[Chunk], move_to: str | None = None) -> str:
    """A unified diff from apply_patch chunks when the pre-image is unknown.

    Line numbers are hints (``git apply`` searches for the context); they
    start at 2 so that no hunk is pinned to the start of the file. A chunk
    with trailing context, or marked ``*** End of File``, applies; a chunk
    without trailing context can only apply at the end of the file.
    """
    new_path = move_to or path
    out = _header(path, new_path)
    if not chunks:
        return "\n".join(out) + "\n"
    out += [f"--- a/{path}", f"+++ b/{new_path}"]
    old_pos = 2
    delta = 0
    for ch in chunks:
        n_old = sum(1 for t, _ in ch.lines if t != "+")
        n_new = sum(1 for t, _ in ch.lines if t != "-")
        suffix = f" {ch.context}" if ch.context else ""
        new_pos = max(old_pos + delta, 2)
        # written out directly (not via _range) so no hint ever reads 0 or 1
        out.append(f"@@ -{old_pos},{n_old} +{new_pos},{n_new} @@{suffix}")
        for tag, text in ch.lines:
            out.append(tag + text)
        old_pos = old_pos + n_old + 1
        delta += n_new - n_old
    return "\n".join(out) + "\n"


def normalize_unified(diff: str, path: str) -> str | None:
    """Rewrite a single-file unified diff's headers to ``a/path`` / ``b/path``.

    Used for diffs an agent reports itself (e.g. Pi's edit result), whose
    ``---``/``+++`` lines name the path as the agent saw it.
    """
    if not isinstance(diff, str) or "@@" not in diff:
        return None
    lines = diff.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out = [f"diff --git a/{path} b/{path}", f"--- a/{path}", f"+++ b/{path}"]
    seen_hunk = False
    for line in lines:
        if not seen_hunk:
            if line.startswith("@@"):
                seen_hunk = True
            else:
                continue
        if line.startswith("@@") or (line and line[0] in " -+\\"):
            out.append(line)
        elif line == "":
            out.append(" ")
        else:
            return None
    return "\n".join(out) + "\n"


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def check_unified_against(diff: str, before: str) -> bool:
    """True if every hunk's pre-image lines sit at their stated lines in ``before``."""
    lines = _split_lines(before)
    cur: list[str] | None = None
    start = 0
    ok = True

    def _close() -> bool:
        if not cur:
            return True
        return lines[start - 1 : start - 1 + len(cur)] == cur

    for line in diff.split("\n"):
        m = _HUNK.match(line)
        if m:
            ok = ok and _close()
            cur = []
            start = int(m.group(1))
            continue
        if cur is None or not line or line[0] == "\\":
            continue
        if line[0] in " -":
            cur.append(line[1:])
    return ok and _close() and cur is not None


# ---------------------------------------------------------------------------
# shell commands

_READ_ONLY = {
    "cat", "ls", "pwd", "echo", "printf", "head", "tail", "wc", "grep", "egrep",
    "fgrep", "rg", "ag", "fd", "tree", "stat", "file", "which", "type", "true",
    "false", "nl", "sort", "uniq", "cut", "tr", "diff", "cmp", "du", "df", "env",
    "printenv", "date", "whoami", "id", "uname", "hostname", "realpath",
    "readlink", "dirname", "basename", "less", "more", "column", "jq", "test",
    "[", "sha256sum", "md5sum", "cd", "sed", "awk", "find", "git", "pytest",
    "mypy", "sleep",
}
_GIT_READ = {
    "status", "diff", "log", "show", "branch", "rev-parse", "ls-files",
    "blame", "grep", "describe", "remote", "config", "shortlog", "add",
    "commit", "tag", "fetch", "ls-tree", "cat-file", "reflog", "whatchanged",
}
_REDIRECT_OK = re.compile(r"[0-9]?>&[0-9]|[0-9]?>\s*/dev/null")
_SPLIT = re.compile(r"\|\||&&|;|\||\n")


def is_read_only_command(command: object) -> bool:
    """A conservative guess that a shell command leaves tracked files alone.

    Unknown programs, output redirection, in-place edits (``sed -i``), file
    removal and interpreters given inline code all count as writes.
    """
    if isinstance(command, list):
        if len(command) >= 3 and command[0] in ("bash", "sh", "zsh") and command[1] in ("-lc", "-c"):
            command = command[2]
        else:
            command = shlex.join(str(c) for c in command)
    if not isinstance(command, str) or not command.strip():
        return True
    if "<<" in command or ">" in _REDIRECT_OK.sub("", command):
        return False
    for seg in _SPLIT.split(command):
        try:
            words = shlex.split(seg)
        except ValueError:
            return False
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words = words[1:]
        if not words:
            continue
        prog = words[0].rsplit("/", 1)[-1]
        args = words[1:]
        if prog not in _READ_ONLY:
            return False
        if prog == "sed" and any(a.startswith("-i") or a == "--in-place" for a in args):
            return False
        if prog == "find" and any(a in ("-delete", "-exec", "-execdir", "-fprint", "-ok") for a in args):
            return False
        if prog == "git":
            sub = next((a for a in args if not a.startswith("-")), None)
            if sub not in _GIT_READ:
                return False
        if prog == "awk" and any("system" in a for a in args):
            return False
    return True
