"""Property tests (hypothesis, bounded): a damaged config.json or credentials.json (any byte flipped,
truncated, replaced by garbage, another JSON value) never crashes a command, never writes into the
bucket, and never makes capture run unfiltered (issue #11: the files outside the bucket too)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bucketrig import FIXTURES, one_line_error, tree_digest

CASES = {"config": 0, "credentials": 0}
COMMANDS = [("bucket", "status", "--json"), ("bucket", "security", "--json"), ("auth", "status", "--json"),
            ("bucket", "remote", "push", "--json"), ("capture", "codex", str(FIXTURES / "codex"), "--json")]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A home with a recommended policy, a credential and a captured bucket."""
    from click.testing import CliRunner

    from opentraces.cli.main import cli

    home = tmp_path_factory.mktemp("cfg-home")
    env = {"OPENTRACES_HOME": str(home), "HOME": str(home)}
    runner = CliRunner(env=env)
    for args in (["bucket", "security", "--policy", "recommended"], ["auth", "login", "--token", "t0k3n"],
                 ["config", "set", "bucket.remote", str(home / "nowhere.git")],
                 ["capture", "claude-code", str(FIXTURES / "claude")]):
        assert runner.invoke(cli, args, catch_exceptions=False).exit_code == 0, args
    return home


def _damage(data: bytes, how: str, pos: int, junk: bytes) -> bytes:
    if how == "flip" and data:
        i = pos % len(data)
        return data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:]
    if how == "truncate":
        return data[: pos % max(len(data), 1)]
    if how == "garbage":
        return junk
    return orjson.dumps(orjson.loads(junk) if junk[:1] in b"[0123456789" and _json(junk) else [1, "x", None])


def _json(b: bytes) -> bool:
    try:
        orjson.loads(b)
        return True
    except orjson.JSONDecodeError:
        return False


@pytest.mark.parametrize("target", ["config.json", "credentials.json"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(how=st.sampled_from(["flip", "truncate", "garbage", "other-json"]), pos=st.integers(0, 10_000),
       junk=st.binary(max_size=64), cmd=st.sampled_from(COMMANDS))
def test_a_damaged_settings_file_is_a_clear_error(seeded, tmp_path_factory, target, how, pos, junk, cmd):
    from click.testing import CliRunner

    from opentraces.cli.main import cli

    home = tmp_path_factory.mktemp("case")
    shutil.copytree(seeded, home, dirs_exist_ok=True, symlinks=True)
    path = home / target
    original = path.read_bytes()
    damaged = _damage(original, how, pos, junk)
    path.write_bytes(damaged)
    os.chmod(path, 0o600)
    bucket = home / "bucket"
    before = {k: v for k, v in tree_digest(bucket).items() if not k.startswith(".state/")}
    res = CliRunner(env={"OPENTRACES_HOME": str(home), "HOME": str(home)}).invoke(cli, list(cmd), catch_exceptions=False)
    CASES[target.split(".")[0]] += 1
    assert "Traceback" not in res.stderr
    report = orjson.loads(res.stdout) if res.stdout.strip() else {}
    if res.exit_code != 0 and report.get("status") == "problems":
        pass  # a status command reporting what it found (auth status: remote unreachable, exit 3)
    elif res.exit_code != 0:
        one_line_error(res.stderr)  # one line, and not the catch-all for a bug
        assert res.exit_code in (2, 3), (cmd, res.exit_code, res.stderr)
        if cmd[0] != "capture" or res.exit_code != 0:
            after = {k: v for k, v in tree_digest(bucket).items() if not k.startswith(".state/")}
            assert after == before, cmd
    if cmd[0] == "capture" and res.exit_code == 0:
        # a config that still parses: whatever it says, a trace captured now records what filtered it
        from opentraces.bucket import Bucket

        rows = [r for r in Bucket(bucket).rows() if r["agent"] == "codex-cli"]
        assert rows
        doc = orjson.loads(damaged) if _json(damaged) else None
        flags_on = isinstance(doc, dict) and any(
            isinstance(v, dict) and v.get("enabled") is True for v in (doc.get("security") or {}).values()
        ) if target == "config.json" else True
        if flags_on:
            assert all(r.get("security") for r in rows), rows


def test_zz_report_cases():
    print(f"\n[property] damaged settings files: {CASES}")
