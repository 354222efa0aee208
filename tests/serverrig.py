"""Real Git servers on 127.0.0.1 for the sync tests, started and stopped by fixtures.

- ``bare_remote``: a bare repository path (``git init --bare``);
- ``daemon_remote``: ``git daemon --enable=receive-pack`` (``git://``);
- ``http_remote``: ``git http-backend`` behind nginx with fcgiwrap, as
  git-http-backend(1) documents, with HTTP Basic auth (an htpasswd file);
  nginx's access log records every request's size, so a test can measure
  what the server received;
- ``ssh_remote``: ``sshd`` with a generated host key and a generated user key.

Each gives a ``Remote`` (url, the bare repository's path, credentials). A
server that cannot start here is skipped with the reason (a missing Debian
package, not root for sshd); ``.ci/run`` installs all of them.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest


@dataclass
class Remote:
    kind: str
    url: str
    repo: Path  # the bare repository on disk (for hooks and plain-git checks)
    username: str | None = None
    token: str | None = None
    ssh_key: Path | None = None
    log: Path | None = None  # nginx access log (request sizes)
    extra: dict = field(default_factory=dict)

    def login_args(self) -> list[str]:
        if self.kind == "ssh":
            return ["--ssh-key", str(self.ssh_key)]
        return ["--token", self.token or "unused", "--username", self.username or "opentraces"]

    def received_bytes(self) -> int:
        """Bytes of request bodies nginx has received so far (HTTP only)."""
        if self.log is None or not self.log.exists():
            return 0
        return sum(int(line.split()[-1]) for line in self.log.read_text().splitlines() if line.strip())

    def git_env(self) -> dict[str, str]:
        """An environment in which plain ``git`` reaches this remote (for "without opentraces" checks)."""
        env = dict(os.environ)
        if self.kind == "http":
            basic = base64.b64encode(f"{self.username}:{self.token}".encode()).decode()
            env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"})
        if self.kind == "ssh":
            env["GIT_SSH_COMMAND"] = (f"ssh -i {self.ssh_key} -o IdentitiesOnly=yes -o BatchMode=yes "
                                      f"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null")
        return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
            raise RuntimeError(f"{what} exited at start ({proc.returncode}): {out[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def init_bare(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(path)], check=True)
    # what a real hosting server does: fsck what it receives
    subprocess.run(["git", "--git-dir", str(path), "config", "receive.fsckObjects", "true"], check=True)
    return path


def _need(*exes: str) -> None:
    for exe in exes:
        if not (shutil.which(exe) or os.path.exists(exe)):
            pytest.skip(f"{exe} is not installed here (.ci/run installs it from Debian's packages)")


@pytest.fixture
def bare_remote(tmp_path):
    repo = init_bare(tmp_path / "srv" / "bucket.git")
    return Remote("bare", str(repo), repo)


@pytest.fixture
def daemon_remote(tmp_path):
    _need("git")
    root = tmp_path / "srv-daemon"
    repo = init_bare(root / "bucket.git")
    port = free_port()
    proc = subprocess.Popen(["git", "daemon", "--reuseaddr", f"--base-path={root}", "--export-all",
                             "--enable=receive-pack", "--listen=127.0.0.1", f"--port={port}", "--informative-errors",
                             str(root)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    wait_port(port, proc, "git daemon")
    yield Remote("daemon", f"git://127.0.0.1:{port}/bucket.git", repo)
    stop(proc)


NGINX_CONF = """
daemon off;
worker_processes 1;
{user}
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  log_format sizes '$remote_user $request_method $uri $status $request_length';
  access_log {d}/access.log sizes;
  client_body_temp_path {d}/body;
  fastcgi_temp_path {d}/fcgi;
  proxy_temp_path {d}/proxy;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      auth_basic "opentraces test";
      auth_basic_user_file {d}/htpasswd;
      include /etc/nginx/fastcgi_params;
      fastcgi_pass unix:{d}/fcgiwrap.sock;
      fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
      fastcgi_param GIT_HTTP_EXPORT_ALL "";
      fastcgi_param GIT_PROJECT_ROOT {root};
      fastcgi_param PATH_INFO $uri;
      fastcgi_param REMOTE_USER $remote_user;
      fastcgi_request_buffering off;
    }}
  }}
}}
"""


def start_http(d: Path) -> tuple[Remote, Callable[[], None]]:
    """git http-backend behind nginx + fcgiwrap in folder ``d``, Basic auth (user ``alice``, a random token).

    Returns the remote and a function that stops both servers (the bench uses it too)."""
    root = d / "repos"
    repo = init_bare(root / "bucket.git")
    token = "tok-" + os.urandom(12).hex()
    sha = base64.b64encode(hashlib.sha1(token.encode()).digest()).decode()
    (d / "htpasswd").write_text(f"alice:{{SHA}}{sha}\n")
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    (d / "nginx.conf").write_text(NGINX_CONF.format(d=d, port=port, root=root, user=user))
    fcgi = subprocess.Popen(["fcgiwrap", "-s", f"unix:{d}/fcgiwrap.sock"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(200):
        if (d / "fcgiwrap.sock").exists():
            break
        time.sleep(0.02)
    nginx = subprocess.Popen(["nginx", "-c", str(d / "nginx.conf"), "-p", str(d), "-e", str(d / "error.log")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    wait_port(port, nginx, "nginx")

    def stopper() -> None:
        stop(nginx)
        stop(fcgi)

    return (Remote("http", f"http://127.0.0.1:{port}/bucket.git", repo, username="alice", token=token,
                   log=d / "access.log"), stopper)


@pytest.fixture
def http_remote(tmp_path):
    """git http-backend behind nginx + fcgiwrap, Basic auth (user ``alice``, a random token)."""
    _need("nginx", "fcgiwrap", "/usr/lib/git-core/git-http-backend")
    d = Path(tempfile.mkdtemp(prefix="ot-http-"))
    remote, stopper = start_http(d)
    yield remote
    stopper()
    shutil.rmtree(d, ignore_errors=True)


SSHD_CONF = """
Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers {user}
"""


@pytest.fixture
def ssh_remote(tmp_path):
    """sshd on loopback, a generated host key, a generated user key for this user."""
    _need("/usr/sbin/sshd", "ssh", "ssh-keygen")
    if os.geteuid() != 0:
        pytest.skip("sshd needs root here (privilege separation); CI runs as root")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="ot-ssh-"))
    repo = init_bare(d / "repos" / "bucket.git")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "user_key")], check=True)
    shutil.copyfile(d / "user_key.pub", d / "authorized_keys")
    port = free_port()
    user = getpass.getuser()
    (d / "sshd_config").write_text(SSHD_CONF.format(port=port, d=d, user=user))
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    wait_port(port, proc, "sshd")
    yield Remote("ssh", f"ssh://{user}@127.0.0.1:{port}{repo}", repo, ssh_key=d / "user_key")
    stop(proc)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["http", "ssh", "daemon"])
def any_remote(request):
    """Each real server in turn (HTTP with a token, SSH with a key, git://)."""
    return request.getfixturevalue({"http": "http_remote", "ssh": "ssh_remote", "daemon": "daemon_remote"}[request.param])
