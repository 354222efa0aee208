"""Repository URLs in the one form the TraceRecord uses (``task.repository_url``).

``https://host/owner/repo`` whatever the remote was written as
(``git@host:owner/repo.git``, ``ssh://git@host:22/owner/repo``,
``git://host/owner/repo``, ``https://user:token@host/owner/repo.git``), so
two clones of one repository agree, and never with credentials in it.
Local paths and ``file://`` URLs are not a repository's address: None.
Pure.
"""

from __future__ import annotations

import re

_SCP = re.compile(r"^(?:[^@/\s]+@)?([A-Za-z0-9.-]+\.[A-Za-z]{2,}|[A-Za-z0-9-]{2,}):(?!//)(.+)$")
_URL = re.compile(r"^(?:https?|ssh|git|git\+ssh|ssh\+git)://(?:[^@/\s]*@)?([^/:\s]+)(?::\d*)?/(.+)$", re.I)


def canonical_url(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    url = url.strip()
    m = _URL.match(url) or (_SCP.match(url) if "://" not in url else None)
    if m is None:
        return None
    host, path = m.group(1).lower(), m.group(2).strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    path = path.rstrip("/")
    if not path or any(seg in ("", ".", "..") for seg in path.split("/")):
        return None
    return f"https://{host}/{path}"


def repository_name(url: str | None) -> str | None:
    """``owner/repo`` of a canonical URL: its path (``group/sub/repo`` on hosts with nested groups)."""
    if not url:
        return None
    path = url.split("://", 1)[-1].partition("/")[2]
    return path if "/" in path else None
