"""Machine-global settings: ``$OPENTRACES_HOME/config.json`` (mode 0600, never in the bucket).

Keys used so far:

    security.<tool>.enabled   the redaction tools (the bucket security policy sets them)
    bucket.remote             the bucket's remote URL (no credentials in it, ever)

Credentials are not here: ``opentraces.auth`` keeps them in credentials.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from .encoding import pretty_json
from .errors import ConfigError, RefusedError
from .fsio import atomic_write

CONFIG_FILE = "config.json"
CONFIG_SCHEMA = "opentraces.config.v1"


def config_path(home: Path) -> Path:
    return Path(home) / CONFIG_FILE


def load(home: Path) -> dict[str, Any]:
    path = config_path(home)
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {"schema_version": CONFIG_SCHEMA}
    except orjson.JSONDecodeError:
        raise ConfigError(f"{path} is not valid JSON", f"fix or delete {path}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} is not a JSON object", f"fix or delete {path}")
    return doc


def save(home: Path, doc: dict[str, Any]) -> None:
    doc = {**doc, "schema_version": CONFIG_SCHEMA}
    atomic_write(config_path(home), pretty_json(doc), mode=0o600)


def get(doc: dict[str, Any], key: str, default: Any = None) -> Any:
    node: Any = doc
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def put(doc: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = doc
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def check_remote_url(url: str) -> str:
    """A remote URL we can store: no password or token in it (credentials live elsewhere)."""
    url = url.strip()
    if not url:
        raise RefusedError("empty remote URL", "pass --remote with a Git URL")
    if "://" in url:
        parts = urlsplit(url)
        if parts.password:
            raise RefusedError("the remote URL carries a password; it would be written to disk",
                               "give the URL without it and run 'opentraces auth login --token ...'")
        if parts.scheme not in ("https", "http", "ssh", "git", "file"):
            raise RefusedError(f"unsupported remote scheme {parts.scheme!r}",
                               "use https://, ssh://, git://, file:// or a path")
    return url


def remote_url(home: Path) -> str | None:
    return get(load(home), "bucket.remote")
