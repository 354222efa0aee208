"""An unreadable folder under a captured folder is counted as skipped, not silently passed over
(issue #11, item 9). Root reads any folder, so the capture runs as root without the capabilities
that bypass permissions (``setpriv --bounding-set=-dac_override,-dac_read_search``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bucketrig import claude_sessions



def _can_drop() -> bool:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return False
    probe = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_drop(), reason="needs root and setpriv allowed to drop capabilities")
def test_an_unreadable_subfolder_is_counted(tmp_path):
    root = tmp_path / "work"
    (root / "sessions" / "ok").mkdir(parents=True)
    (root / "sessions" / "locked").mkdir()
    shutil.copy(claude_sessions()[0], root / "sessions" / "ok" / "a.jsonl")
    shutil.copy(claude_sessions()[1], root / "sessions" / "locked" / "b.jsonl")
    home = root / "home"
    home.mkdir()
    os.chmod(root / "sessions" / "locked", 0o000)
    env = {**os.environ, "HOME": str(home), "OPENTRACES_HOME": str(home / ".ot")}
    try:
        done = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable,
                               "-m", "opentraces.cli", "capture", "claude-code", str(root / "sessions"), "--json"],
                              env=env, capture_output=True, text=True, timeout=120)
    finally:
        os.chmod(root / "sessions" / "locked", 0o755)
    assert done.returncode == 0, done.stderr
    rep = orjson.loads(done.stdout)["capture"]
    assert len(rep["captured"]) == 1
    skipped = [s for s in rep["skipped"] if s["path"].endswith("locked")]
    assert len(skipped) == 1 and "unreadable" in skipped[0]["reason"], rep["skipped"]
