"""Claude Code's user settings file: add and remove opentraces' capture hooks.

Claude Code reads hooks from ``$CLAUDE_CONFIG_DIR/settings.json`` (else
``~/.claude/settings.json``)::

    {"hooks": {"Stop": [{"matcher": "", "hooks": [{"type": "command",
                                                    "command": "...",
                                                    "timeout": 30}]}],
               "SessionEnd": [...]}}

``install`` appends one matcher group of its own to the ``Stop`` and
``SessionEnd`` lists and touches nothing else: other settings, other events,
other groups and other commands in the same event list stay as they were.
Our entries are recognised by ``HOOK_MARKER`` in their command. Running
``install`` again when our entries are already there writes nothing, so the
file stays byte-identical.

Reversibility: before the first change, the file's original bytes (or the
fact that it did not exist) are kept under ``$OPENTRACES_HOME/setup/``.
``uninstall`` removes only our entries; if what is left is the document we
started from, it puts back the original bytes exactly (or deletes the file
when there was none). If the user changed other settings meanwhile, their
changes are kept and only our entries go.

Writes are atomic (temp file in the same folder, fsync, rename) and keep the
file's mode; a symlinked settings file is written through its link. A file
that is not valid JSON, or not a JSON object, is refused and left untouched.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import shlex
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import RefusedError
from ..fsio import fsync_dir, tmp_path_for

SCHEMA = "opentraces.setup.claude-code.v1"
HOOK_EVENTS = ("Stop", "SessionEnd")
HOOK_MARKER = "capture claude-code --hook"
HOOK_TIMEOUT_S = 30  # Claude Code kills the command after this; the hook bounds itself well inside it
NEW_FILE_MODE = 0o600  # settings may hold secrets (env); a file we create is private
_BACKUP_SCHEMA = "opentraces.setup.claude-code.backup.v1"


@dataclass
class SetupResult:
    settings_path: Path
    changed: bool
    action: str  # installed | updated | unchanged | removed | restored | deleted | not-installed | absent
    command: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"settings_path": str(self.settings_path), "changed": self.changed, "action": self.action}


# ------------------------------------------------------------------ paths
def settings_path(home: os.PathLike | str, environ: Mapping[str, str]) -> Path:
    """``$CLAUDE_CONFIG_DIR/settings.json`` when set, else ``<home>/.claude/settings.json``."""
    config = environ.get("CLAUDE_CONFIG_DIR") or ""
    if config:
        if config == "~" or config.startswith("~/"):
            return Path(os.path.abspath(Path(home) / config[2:] / "settings.json"))
        return Path(os.path.abspath(Path(config) / "settings.json"))
    return Path(os.path.abspath(Path(home) / ".claude" / "settings.json"))


def backup_path(state_dir: os.PathLike | str, settings: os.PathLike | str) -> Path:
    """Where the original bytes of ``settings`` are kept (one backup per settings file)."""
    key = hashlib.sha256(os.path.abspath(settings).encode()).hexdigest()[:16]
    return Path(state_dir) / f"claude-code-settings.{key}.json"


def _console_script(which: Callable[[str], str | None], executable: str) -> str | None:
    # The running interpreter's own script first: a PATH lookup may find a shim
    # (pyenv, asdf) that picks another Python when Claude Code runs the hook.
    sibling = Path(executable).parent / "opentraces"
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return os.path.abspath(sibling)
    found = which("opentraces")
    return os.path.abspath(found) if found else None


def hook_command(
    environ: Mapping[str, str],
    *,
    bucket: os.PathLike | str | None = None,
    which: Callable[[str], str | None] = shutil.which,
    executable: str = sys.executable,
) -> str:
    """The shell command Claude Code runs: ``<opentraces> [--bucket B] capture claude-code --hook``.

    ``OPENTRACES_HOME`` set at setup time is pinned in the command (Claude Code
    may run without it), and so is an explicit ``--bucket``.
    """
    script = _console_script(which, executable)
    base = shlex.quote(script) if script else f"{shlex.quote(executable)} -m opentraces.cli"
    parts: list[str] = []
    home = environ.get("OPENTRACES_HOME")
    if home:
        parts.append("OPENTRACES_HOME=" + shlex.quote(os.path.abspath(os.path.expanduser(home))))
    parts.append(base)
    if bucket is not None:
        parts += ["--bucket", shlex.quote(os.path.abspath(bucket))]
    parts.append(HOOK_MARKER)
    return " ".join(parts)


# ------------------------------------------------------- document editing
def is_our_hook(entry: Any) -> bool:
    return (isinstance(entry, dict) and entry.get("type") == "command"
            and isinstance(entry.get("command"), str) and HOOK_MARKER in entry["command"])


def _our_group(command: str, timeout: int) -> dict[str, Any]:
    return {"matcher": "", "hooks": [{"type": "command", "command": command, "timeout": timeout}]}


def parse_settings(data: bytes, path: os.PathLike | str) -> dict[str, Any]:
    """The settings document, or RefusedError when it is not a JSON object we can edit."""
    try:
        doc = json.loads(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise RefusedError(f"{path} is not valid JSON ({_one_line(exc)}); it was left untouched",
                           "fix the file, then run 'opentraces setup claude-code' again") from None
    if not isinstance(doc, dict):
        raise RefusedError(f"{path} is not a JSON object; it was left untouched",
                           "fix the file, then run 'opentraces setup claude-code' again")
    hooks = doc.get("hooks")
    if hooks is not None and not isinstance(hooks, dict):
        raise RefusedError(f"{path}: \"hooks\" is not an object; it was left untouched",
                           "fix the file, then run 'opentraces setup claude-code' again")
    for event in HOOK_EVENTS:
        if isinstance(hooks, dict) and event in hooks and not isinstance(hooks[event], list):
            raise RefusedError(f"{path}: \"hooks.{event}\" is not a list; it was left untouched",
                               "fix the file, then run 'opentraces setup claude-code' again")
    return doc


def render(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def contains_ours(doc: dict[str, Any]) -> bool:
    return remove_hooks(doc)[1] > 0


def remove_hooks(doc: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """``doc`` without our hook entries, and how many were removed.

    A group, an event list or the ``hooks`` object is dropped only when our
    removal emptied it; anything the user had stays, empty or not.
    """
    hooks = doc.get("hooks")
    if not isinstance(hooks, dict):
        return doc, 0
    removed = 0
    new_hooks: dict[str, Any] = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            new_hooks[event] = groups
            continue
        kept_groups = []
        touched = False
        for g in groups:
            entries = g.get("hooks") if isinstance(g, dict) else None
            if not isinstance(entries, list):
                kept_groups.append(g)
                continue
            kept = [h for h in entries if not is_our_hook(h)]
            if len(kept) == len(entries):
                kept_groups.append(g)
                continue
            removed += len(entries) - len(kept)
            touched = True
            if kept:
                kept_groups.append({**g, "hooks": kept})
        if kept_groups or not touched:
            new_hooks[event] = kept_groups
    if not removed:
        return doc, 0
    out = dict(doc)
    if new_hooks:
        out["hooks"] = new_hooks
    else:
        del out["hooks"]
    return out, removed


def add_hooks(doc: dict[str, Any], command: str, timeout: int = HOOK_TIMEOUT_S) -> dict[str, Any]:
    """``doc`` with exactly one group of ours per event, appended after the user's groups."""
    out, _ = remove_hooks(doc)
    out = dict(out)
    hooks = dict(out.get("hooks") or {})
    for event in HOOK_EVENTS:
        hooks[event] = list(hooks.get(event) or []) + [_our_group(command, timeout)]
    out["hooks"] = hooks
    return out


def installed_exactly(doc: dict[str, Any], command: str, timeout: int = HOOK_TIMEOUT_S) -> bool:
    """True when each event holds exactly one entry of ours, in its own group, as ``add_hooks`` writes it."""
    hooks = doc.get("hooks")
    if not isinstance(hooks, dict):
        return False
    want = _our_group(command, timeout)
    total = 0
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            continue
        ours = [g for g in groups if isinstance(g, dict) and isinstance(g.get("hooks"), list)
                and any(is_our_hook(h) for h in g["hooks"])]
        total += sum(1 for g in ours for h in g["hooks"] if is_our_hook(h))
        if event in HOOK_EVENTS and ours != [want]:
            return False
    return total == len(HOOK_EVENTS)


def normalize(doc: dict[str, Any]) -> dict[str, Any]:
    """For comparison only: ``doc`` without our entries and without empty hook containers."""
    out = copy.deepcopy(remove_hooks(doc)[0])
    hooks = out.get("hooks")
    if isinstance(hooks, dict):
        for event in list(hooks):
            groups = hooks[event]
            if isinstance(groups, list):
                groups = [g for g in groups if not (isinstance(g, dict) and g.get("hooks") == [])]
                if groups:
                    hooks[event] = groups
                else:
                    del hooks[event]
        if not hooks:
            del out["hooks"]
    return out


# ------------------------------------------------------------- file I/O
def _target(path: Path) -> Path:
    """The file to write: through a symlink (dotfile managers link settings.json)."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` (temp + fsync + rename), keeping its mode."""
    if mode is None:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            mode = NEW_FILE_MODE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def _load_backup(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("schema") != _BACKUP_SCHEMA:
            return None
        original = base64.b64decode(doc["original"]) if doc.get("existed") else None
        if original is not None and hashlib.sha256(original).hexdigest() != doc.get("sha256"):
            return None
        return {"existed": bool(doc["existed"]), "original": original}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _save_backup(path: Path, settings: Path, original: bytes | None) -> None:
    doc = {
        "schema": _BACKUP_SCHEMA,
        "settings_path": str(settings),
        "existed": original is not None,
        "original": base64.b64encode(original).decode() if original is not None else None,
        "sha256": hashlib.sha256(original).hexdigest() if original is not None else None,
    }
    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode(), mode=0o600)


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ------------------------------------------------------------ the verbs
def install(settings: os.PathLike | str, state_dir: os.PathLike | str, command: str,
            *, timeout: int = HOOK_TIMEOUT_S) -> SetupResult:
    """Add our Stop and SessionEnd hooks to ``settings`` (idempotent)."""
    settings = Path(os.path.abspath(settings))
    target = _target(settings)
    data = _read(target)
    doc = parse_settings(data, settings) if data is not None else {}
    if installed_exactly(doc, command, timeout):
        return SetupResult(settings, False, "unchanged", command)
    had_ours = contains_ours(doc)
    bpath = backup_path(state_dir, settings)
    if not had_ours:
        # the file as it is now is the state before setup: keep it to restore later
        _save_backup(bpath, settings, data)
    new = render(add_hooks(doc, command, timeout))
    write_atomic(target, new)
    return SetupResult(settings, True, "updated" if had_ours else "installed", command)


def uninstall(settings: os.PathLike | str, state_dir: os.PathLike | str) -> SetupResult:
    """Remove our hooks; restore the original bytes when nothing else changed."""
    settings = Path(os.path.abspath(settings))
    target = _target(settings)
    bpath = backup_path(state_dir, settings)
    data = _read(target)
    if data is None:
        _unlink(bpath)
        return SetupResult(settings, False, "absent")
    doc = parse_settings(data, settings)
    stripped, removed = remove_hooks(doc)
    if not removed:
        _unlink(bpath)
        return SetupResult(settings, False, "not-installed")
    backup = _load_backup(bpath)
    action = "removed"
    if backup is not None and not backup["existed"] and normalize(stripped) == {}:
        os.unlink(target)
        fsync_dir(target.parent)
        action = "deleted"
    elif backup is not None and backup["existed"] and _restorable(backup["original"], stripped):
        write_atomic(target, backup["original"])
        action = "restored"
    else:
        write_atomic(target, render(stripped))
    _unlink(bpath)
    return SetupResult(settings, True, action)


def _restorable(original: bytes, stripped: dict[str, Any]) -> bool:
    try:
        orig = json.loads(original)
    except ValueError:
        return False
    return isinstance(orig, dict) and not contains_ours(orig) and _canon(normalize(orig)) == _canon(normalize(stripped))


def _canon(doc: Any) -> str:
    # sort_keys: key order is not content; json text: true, 1 and 1.0 stay different
    return json.dumps(doc, sort_keys=True)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
