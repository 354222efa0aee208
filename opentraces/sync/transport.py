"""How the bucket reaches its remote: one URL, one credential, the ``git`` CLI.

Credentials go to ``git`` through its environment only: an HTTPS token as
an ``http.extraHeader`` set with ``GIT_CONFIG_COUNT`` (not an argument, not
the URL, so not in ``ps``, logs or ``.git/config``), an SSH key through
``GIT_SSH_COMMAND``, the agent through ``SSH_AUTH_SOCK``. Prompts are off, so
a missing credential fails at once instead of hanging. Git's errors are
classified into *unauthorized* and *unreachable* (exit 3 either way), with
the server's own words and any trace of the token scrubbed.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygit2

import gitref

from ..auth import Credential
from ..errors import ConfigError

_UNAUTHORIZED = re.compile(r"Authentication failed|Access denied|returned error: 40[13]|\b40[13]\b|"
                           r"Permission denied \(|could not read Username|could not read Password|"
                           r"terminal prompts disabled|Invalid username or password|HTTP Basic", re.I)
_UNREACHABLE = re.compile(r"Could not resolve|Connection refused|Failed to connect|unable to connect|"
                          r"timed out|No route to host|Network is unreachable|not found|"
                          r"does not appear to be a git repository|Could not read from remote|"
                          r"unable to access|Connection reset|Connection closed|early EOF|"
                          r"No such file or directory|not a git repository", re.I)


ENCRYPTED_PREFIX = "refs/opentraces/e1/"  # opentraces.sync.crypt.ENC_PREFIX


class UnauthorizedError(ConfigError):
    state = "unauthorized"


class UnreachableError(ConfigError):
    state = "unreachable"


class RejectedError(ConfigError):
    """The remote refused a ref (a hook, a protected ref, a lost race that retries did not win)."""

    def __init__(self, message: str, hint: str | None, refs: dict[str, str]):
        super().__init__(message, hint)
        self.refs = refs


@dataclass
class Transport:
    url: str
    credential: Credential | None
    home: Path
    base_env: dict[str, str] = field(default_factory=dict)  # PATH, SSH_AUTH_SOCK, HOME from the CLI

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in self.base_env.items() if k in ("PATH", "HOME", "SSH_AUTH_SOCK", "TMPDIR")}
        env["GIT_TERMINAL_PROMPT"] = "0"
        env["GIT_ASKPASS"] = "/bin/false"  # never ask: fail and say so
        env["SSH_ASKPASS"] = "/bin/false"
        cfg: list[tuple[str, str]] = [("credential.helper", ""), ("protocol.version", "2")]
        c = self.credential
        ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
               "-o", f"UserKnownHostsFile={self.home / 'known_hosts'}"]
        if c is not None and c.kind == "token" and self.url.startswith(("https://", "http://")):
            basic = base64.b64encode(f"{c.username or 'opentraces'}:{c.token}".encode()).decode()
            cfg.append(("http.extraHeader", f"Authorization: Basic {basic}"))
        elif c is not None and c.kind == "ssh-key":
            ssh += ["-i", c.ssh_key or "", "-o", "IdentitiesOnly=yes"]
            env.pop("SSH_AUTH_SOCK", None)
        env["GIT_SSH_COMMAND"] = " ".join(shlex.quote(x) for x in ssh)
        env["GIT_CONFIG_COUNT"] = str(len(cfg))
        for i, (k, v) in enumerate(cfg):
            env[f"GIT_CONFIG_KEY_{i}"] = k
            env[f"GIT_CONFIG_VALUE_{i}"] = v
        return env

    def scrub(self, text: str) -> str:
        c = self.credential
        if c is not None and c.token:
            text = text.replace(c.token, "***")
            text = text.replace(base64.b64encode(f"{c.username or 'opentraces'}:{c.token}".encode()).decode(), "***")
        return text

    def error(self, exc: gitref.RemoteError) -> ConfigError:
        detail = self.scrub(exc.detail or str(exc))
        if _UNAUTHORIZED.search(detail):
            return UnauthorizedError(f"the remote {self.url} refused the credentials ({detail})",
                                     "run 'opentraces auth login' with a valid token or key")
        if _UNREACHABLE.search(detail) or not detail:
            return UnreachableError(f"the remote {self.url} is unreachable ({detail or 'no answer'})",
                                    "check the URL and the network, then run the command again")
        return UnreachableError(f"the remote {self.url} failed ({detail})", "run the command again")

    # ------------------------------------------------------------ operations
    def ls_remote(self, patterns: list[str] | None = None) -> dict[str, pygit2.Oid]:
        try:
            refs = gitref.ls_remote(self.url, self.env(), patterns)
        except gitref.RemoteError as exc:
            raise self.error(exc) from None
        if type(self) is Transport and any(n.startswith(ENCRYPTED_PREFIX) for n in refs):
            raise ConfigError(f"the remote {self.url} is end-to-end encrypted and this machine has no key for it",
                              "copy the key here: 'opentraces key export' on a machine that has it, then "
                              "'opentraces key import FILE'")
        return refs

    def fetch(self, repo: pygit2.Repository, refspecs: list[str], progress=None) -> gitref.Transfer:
        try:
            return gitref.fetch(repo, self.url, refspecs, self.env(), progress=progress)
        except gitref.RemoteError as exc:
            raise self.error(exc) from None

    def push(self, repo: pygit2.Repository, updates, progress=None, transfer=None) -> dict[str, gitref.RefStatus]:
        try:
            return gitref.push(repo, self.url, updates, self.env(), progress=progress, transfer=transfer)
        except gitref.RemoteError as exc:
            raise self.error(exc) from None

    def check(self) -> dict[str, Any]:
        """Reach the remote with the credential (one ls-remote); raises Unauthorized/Unreachable."""
        refs = self.ls_remote(["refs/opentraces/*"])
        return {"url": self.url, "reachable": True, "refs": len(refs)}


def local_url(url: str) -> str:
    """A path remote as git wants it (absolute); URLs unchanged."""
    if "://" in url or re.match(r"^[\w.-]+@[\w.-]+:", url):
        return url
    return os.path.abspath(os.path.expanduser(url))
