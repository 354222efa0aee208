"""Identities that become paths: project slugs, trace ids, writer ids.

Every id that turns into a path component passes ``check_component``: no
``/``, no ``..``, no control characters, no leading dot, not empty.
"""

from __future__ import annotations

import re

from .errors import RefusedError

# Fixed namespace for trace ids: uuid5(NAMESPACE, "<agent>:<session id>"). hashlib and uuid are
# imported where they are used: paths and their checks are needed by the hook's fast path too.
TRACE_NAMESPACE = "6f70656e-7472-6163-6573-2d6275636b74"

_SLUG_RUN = re.compile(r"[^a-z0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_component(value: str, what: str = "id") -> str:
    """Return ``value`` if it is safe as one path component, else refuse."""
    if not isinstance(value, str) or not value:
        raise RefusedError(f"empty {what}")
    if "/" in value or "\\" in value or value in (".", "..") or ".." in value:
        raise RefusedError(f"{what} {value!r} is not a safe path component")
    if value.startswith(".") or _CONTROL.search(value):
        raise RefusedError(f"{what} {value!r} is not a safe path component")
    if len(value.encode()) > 200:
        raise RefusedError(f"{what} is too long ({len(value)} characters)")
    return value


def slugify(name: str) -> str:
    slug = _SLUG_RUN.sub("-", name.lower()).strip("-")[:48].strip("-")
    return slug or "project"


def project_slug(folder_name: str, identity: str) -> str:
    """``<slug of folder>-<8 hex of identity>``; identity is e.g. ``git:<root>``."""
    import hashlib

    tag = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return check_component(f"{slugify(folder_name)}-{tag}", "project")


def trace_id_for(agent: str, session_id: str) -> str:
    """Deterministic trace id: the same session captured anywhere is one trace."""
    if not session_id or _CONTROL.search(session_id):
        raise RefusedError(f"unusable session id {session_id!r}")
    import uuid

    return str(uuid.uuid5(uuid.UUID(TRACE_NAMESPACE), f"{agent}:{session_id}"))


def check_trace_id(value: str) -> str:
    import uuid

    check_component(value, "trace id")
    try:
        uuid.UUID(value)
    except ValueError:
        raise RefusedError(f"trace id {value!r} is not a UUID") from None
    return value



def new_writer_id() -> str:
    import uuid

    return "w" + uuid.uuid4().hex[:15]
