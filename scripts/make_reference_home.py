"""Build the test input of ``bucket import --from``: a home of the real opentraces 0.4.13.

The reference implementation (PyPI ``opentraces==0.4.13``) is installed in its
own virtual environment (``scripts/.bench-ref-venv``, shared with
``scripts/bench.py --ref``), opted into a throwaway Git project
(``opentraces init``) and fed the sessions shipped in ``fixtures/`` and
``../shared/fixtures/real-sessions/`` plus copies of them under new session
ids, until every agent has at least ``--per-agent`` traces. Its home
(``~/.opentraces``, lock files left out) is written as
``fixtures/reference/opentraces-0.4.13-home.tar.gz``.

    python scripts/make_reference_home.py [--per-agent 8] [--out PATH]

The archive is committed so the tests do not need the network; rerun this
script to rebuild it from the real package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared" / "fixtures" / "real-sessions"
REF_VERSION = "0.4.13"
REF_VENV = HERE / ".bench-ref-venv"
OUT = REPO / "fixtures" / "reference" / f"opentraces-{REF_VERSION}-home.tar.gz"

SOURCES = {
    "claude-code": sorted((REPO / "fixtures" / "claude").glob("*.jsonl")) + sorted((SHARED / "claude").glob("*.jsonl")),
    "codex-cli": sorted((REPO / "fixtures" / "codex").glob("*.jsonl")) + sorted((SHARED / "codex_cli").glob("*.jsonl")),
    "pi": sorted((REPO / "fixtures" / "pi").glob("*.jsonl")) + sorted((SHARED / "pi").glob("*.jsonl")),
}

INGEST = r"""
import json, sys
from pathlib import Path
from opentraces.core.ingest import ingest_one_session
proj = Path(sys.argv[1])
out = []
for item in json.loads(sys.argv[2]):
    try:
        r = ingest_one_session(Path(item[1]), proj, wait_for_lock=False, parser_name=item[0])
        out.append([item[1], getattr(r, "action", None), getattr(r, "trace_id", None)])
    except Exception as exc:
        out.append([item[1], "error", f"{type(exc).__name__}: {exc}"])
print(json.dumps(out))
"""


def venv() -> Path:
    py = REF_VENV / "bin" / "python"
    ok = py.exists() and subprocess.run(
        [str(py), "-c", "import importlib.metadata as m; print(m.version('opentraces'))"],
        capture_output=True, text=True).stdout.strip() == REF_VERSION
    if not ok:
        shutil.rmtree(REF_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(REF_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", f"opentraces=={REF_VERSION}"], check=True)
    return py


def session_ids(agent: str, data: bytes) -> list[str]:
    """The ids a session file names itself by (to give a copy new ones)."""
    ids: set[str] = set()
    for line in data.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict):
            continue
        if agent == "claude-code" and isinstance(row.get("sessionId"), str):
            ids.add(row["sessionId"])
        elif agent == "codex-cli" and row.get("type") == "session_meta":
            ids.add(row["payload"]["id"])
        elif agent == "pi" and row.get("type") == "session":
            ids.add(row["id"])
    return sorted(ids)


def copies(agent: str, files: list[Path], n: int, work: Path) -> list[Path]:
    out = list(files)
    k = 0
    while len(out) < n:
        src = files[k % len(files)]
        k += 1
        data = src.read_bytes()
        name = src.name
        for sid in session_ids(agent, data):
            new = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{sid}/{k}"))
            data = data.replace(sid.encode(), new.encode())
            name = name.replace(sid, new)
        if name == src.name:
            name = f"copy{k}-{name}"
        dst = work / "sessions" / agent / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        out.append(dst)
    return out


def build_home(work: Path, items: list[list[str]]) -> tuple[Path, list[list[Any]]]:
    """A reference home under ``work`` holding ``items`` ([agent, session path]); (its
    ``.opentraces`` folder, [path, action, reference trace id] per item)."""
    py = venv()
    exe = py.parent / "opentraces"
    home, proj = work / "home", work / "proj"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENTRACES", "OT_", "CLAUDE", "CODEX"))}
    env.update({"HOME": str(home), "OT_OPENTRACES_DIR": str(home / ".opentraces"), "NO_COLOR": "1",
                "GIT_AUTHOR_NAME": "ref", "GIT_AUTHOR_EMAIL": "ref@example.invalid",
                "GIT_COMMITTER_NAME": "ref", "GIT_COMMITTER_EMAIL": "ref@example.invalid"})
    subprocess.run(["git", "init", "-q", "-b", "main", str(proj)], check=True, env=env)
    (proj / "README.md").write_text("reference home project\n")
    subprocess.run(["git", "-C", str(proj), "add", "README.md"], check=True, env=env)
    subprocess.run(["git", "-C", str(proj), "commit", "-q", "-m", "init"], check=True, env=env)
    subprocess.run([str(exe), "init", "--agent", "claude-code", "--start-fresh"], cwd=proj, env=env,
                   stdin=subprocess.DEVNULL, capture_output=True, check=True)
    p = subprocess.run([str(py), "-c", INGEST, str(proj), json.dumps(items)], cwd=proj, env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "reference ingest failed")
    return home / ".opentraces", json.loads(p.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-agent", type=int, default=8)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ot-ref-home-"))
    try:
        items = [[agent, str(p)] for agent, files in SOURCES.items() for p in copies(agent, files, a.per_agent, work)]
        ot, results = build_home(work, items)
        for path, action, tid in results:
            print(f"{action:8} {tid or '-':40} {Path(path).name}")
        manifest = json.loads((ot / "bucket" / "manifest.json").read_text())
        print(f"{len(manifest['traces'])} traces in the reference home")
        a.out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(a.out, "w:gz") as tar:
            for f in sorted(ot.rglob("*")):
                if f.is_file() and not re.search(r"\.lock$|ingest-locks", str(f)):
                    info = tar.gettarinfo(str(f), arcname=str(Path(".opentraces") / f.relative_to(ot)))
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.mtime = 0
                    with open(f, "rb") as fh:
                        tar.addfile(info, fh)
        print(f"wrote {a.out} ({a.out.stat().st_size} bytes)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
