"""Every recipe in docs/GIT.md runs verbatim with plain git (bash, no opentraces on PATH).

The page's first block sets the variables; the test sets the same variables
to a real bucket, a replayed clone and a bare remote the bucket was pushed
to, then runs every other ``sh`` block of the Recipes section as written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))

from bucketrig import REAL_CLAUDE, capture, commit, git  # noqa: E402
from opentraces.bucket import Bucket  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ORIGINAL = 'def greet(name: str) -> str:\n    return f"hello, {name}"\n'
EDITED = ORIGINAL + '\n\ndef farewell(name: str) -> str:\n    return f"goodbye, {name}"\n'


def recipe_blocks() -> list[str]:
    text = (REPO / "docs" / "GIT.md").read_text()
    recipes = text[text.index("## Recipes"):]
    blocks = re.findall(r"```sh\n(.*?)```", recipes, flags=re.S)
    assert blocks and "B=" in blocks[0], "the first block sets the variables"
    return blocks[1:]


def test_every_recipe_runs_verbatim(tmp_path, cli):
    project = tmp_path / "myrepo"
    project.mkdir()
    git("init", "-q", "-b", "main", cwd=project)
    commit(project, "greet", "2026-06-12T15:20:00Z", {"src/app.py": ORIGINAL})
    commit(project, "add farewell", "2026-06-12T15:23:17Z", {"src/app.py": EDITED})
    bucket = tmp_path / "bucket"
    capture(cli, bucket, REAL_CLAUDE, "--project", project)
    [row] = Bucket(bucket).rows()
    clone = tmp_path / "clone"
    git("clone", "-q", str(project), str(clone))
    assert cli("--bucket", bucket, "bucket", "replay", "--repo", clone, "--json").exit_code == 0
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", "--initial-branch=main", str(remote))
    subprocess.run(["git", f"--git-dir={bucket / '.git'}", "push", "-q", str(remote),
                    "refs/opentraces/*:refs/opentraces/*", "refs/heads/main:refs/heads/main"], check=True)

    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C",
           "B": str(bucket / ".git"), "P": row["project"], "T": row["trace_id"], "CLONE": str(clone), "R": str(remote)}
    blocks = recipe_blocks()
    assert len(blocks) >= 8
    for block in blocks:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, (block, done.stdout, done.stderr)
        assert done.stdout.strip(), f"recipe printed nothing:\n{block}"
    # what the recipes produced is what they promise
    restored = work / "restored"
    assert (restored / "manifest.json").read_bytes() == (bucket / "manifest.json").read_bytes()
    assert (restored / row["path"]).read_bytes() == (bucket / row["path"]).read_bytes()
    tracking = git("rev-parse", f"refs/opentraces/remote/trails/{row['project']}", cwd=clone).stdout
    assert tracking == git("rev-parse", "refs/opentraces/local/events/v1", cwd=clone).stdout
    assert (work / "bucket-checkout" / "README.md").exists()
    assert os.listdir(work / "bucket-checkout" / "traces" / "v1") == [row["project"]]
