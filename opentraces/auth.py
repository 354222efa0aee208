"""Credentials for the bucket's remote: ``$OPENTRACES_HOME/credentials.json``, mode 0600.

One of: an HTTPS token (with a user name; Basic auth), an SSH key file, or
the SSH agent. Never printed (``describe`` shows what kind, never the
secret), never written into config, URLs, logs, the bucket or its ``.git``:
the transport hands the token to ``git`` through its environment only. A CI
job may supply the token in ``OPENTRACES_TOKEN`` instead (the CLI reads it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .encoding import pretty_json
from .errors import ConfigError, RefusedError
from .fsio import atomic_write

CRED_FILE = "credentials.json"
CRED_SCHEMA = "opentraces.credentials.v1"
KINDS = ("token", "ssh-key", "ssh-agent")


@dataclass(frozen=True)
class Credential:
    kind: str
    username: str | None = None
    token: str | None = None
    ssh_key: str | None = None
    source: str = "file"  # file, env

    def describe(self) -> dict[str, Any]:
        """What a user may see: never the token."""
        return {"kind": self.kind, "username": self.username, "ssh_key": self.ssh_key,
                "token": "set" if self.token else None, "source": self.source}


def cred_path(home: Path) -> Path:
    return Path(home) / CRED_FILE


def load(home: Path, *, env_token: str | None = None, env_username: str | None = None) -> Credential | None:
    """The stored credential; a token from the environment wins (CI)."""
    if env_token:
        return Credential("token", username=env_username or "opentraces", token=env_token, source="env")
    path = cred_path(home)
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError:
        raise ConfigError(f"{path} is damaged", "run 'opentraces auth login' again") from None
    if not isinstance(doc, dict) or doc.get("kind") not in KINDS:
        raise ConfigError(f"{path} is not an opentraces credential", "run 'opentraces auth login' again")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"{path} is readable by others (mode {mode:o})", f"run 'chmod 600 {path}'")
    return Credential(doc["kind"], doc.get("username"), doc.get("token"), doc.get("ssh_key"))


def make(*, token: str | None = None, username: str | None = None, ssh_key: str | None = None,
         ssh_agent: bool = False) -> Credential:
    given = [x for x in (token is not None, ssh_key is not None, ssh_agent) if x]
    if len(given) != 1:
        raise RefusedError("give exactly one of --token, --ssh-key or --ssh-agent", "run 'opentraces auth login --help'")
    if token is not None:
        if not token.strip() or any(c in token for c in "\r\n\x00"):
            raise RefusedError("the token is empty or holds a line break", "paste the token again")
        return Credential("token", username=username or "opentraces", token=token.strip())
    if ssh_key is not None:
        key = os.path.abspath(os.path.expanduser(ssh_key))
        if not os.path.isfile(key):
            raise RefusedError(f"no SSH key at {key}", "pass --ssh-key with a private key file")
        return Credential("ssh-key", username=username, ssh_key=key)
    return Credential("ssh-agent", username=username)


def save(home: Path, cred: Credential) -> Path:
    doc = {"schema_version": CRED_SCHEMA, "kind": cred.kind, "username": cred.username,
           "token": cred.token, "ssh_key": cred.ssh_key}
    path = cred_path(home)
    atomic_write(path, pretty_json({k: v for k, v in doc.items() if v is not None}), mode=0o600)
    return path


def delete(home: Path) -> bool:
    try:
        os.unlink(cred_path(home))
        return True
    except FileNotFoundError:
        return False
