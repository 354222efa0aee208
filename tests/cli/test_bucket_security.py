"""``opentraces bucket security`` and ``config get|set`` (the seed's contract; issue #9 part 2)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from bucketrig import one_line_error

ALL = {"regex", "entropy", "trufflehog", "privacy_filter", "business_logic", "path_anonymizer", "classifier"}


def _cfg() -> Path:
    return Path(os.environ["OPENTRACES_HOME"]) / "config.json"


def _digest() -> str | None:
    return hashlib.sha256(_cfg().read_bytes()).hexdigest() if _cfg().exists() else None


def test_inspector_writes_nothing_and_policies_apply_exact_bundles(cli):
    res = cli("bucket", "security", "--json")
    assert res.exit_code == 0 and not _cfg().exists()
    sec = res.json["security"]
    assert sec == {"enabled": False, "tools": {t: False for t in ALL}, "scope": "bucket",
                   "policy": "off", "available_policies": ["off", "basic", "recommended", "strict"]}
    assert res.json["changes"] == {"enabled": [], "disabled": []}
    strict = cli("bucket", "security", "--policy", "strict", "--json").json
    assert strict["security"]["policy"] == "strict" and set(strict["changes"]["enabled"]) == ALL
    assert stat.S_IMODE(_cfg().stat().st_mode) == 0o600
    before = _digest()
    assert cli("bucket", "security").exit_code == 0 and _digest() == before  # the inspector changes no byte
    basic = cli("bucket", "security", "--policy", "basic", "--json")
    assert sorted(basic.json["changes"]["disabled"]) == sorted(ALL - {"regex", "entropy"})
    for t in ALL - {"regex", "entropy"}:
        assert f"security.{t}.enabled" in basic.stderr
    one = cli("bucket", "security", "--tool", "classifier", "--enable", "--tool", "trufflehog", "--enable", "--json").json
    assert one["security"]["policy"] == "custom" and one["changes"]["enabled"] == ["classifier", "trufflehog"]
    assert cli("config", "get", "security.classifier.enabled").stdout.strip() == "true"


def test_bad_combinations_exit_2_and_change_nothing(cli):
    cli("bucket", "security", "--policy", "recommended")
    before = _digest()
    for args in (("--tool", "regex", "--enable", "--disable"), ("--policy", "basic", "--tool", "regex", "--enable"),
                 ("--tool", "nope", "--enable"), ("--policy", "paranoid"), ("--enable",), ("--tool", "regex")):
        res = cli("bucket", "security", *args)
        assert res.exit_code == 2, args
        one_line_error(res.stderr)
        assert _digest() == before, args
    assert cli("config", "set", "security.regex.enabled", "maybe").exit_code == 2
    assert cli("config", "set", "bucket.remote", "https://u:pw@example.com/x.git").exit_code == 2
    assert _digest() == before


def test_config_set_and_get(cli):
    assert cli("config", "set", "security.entropy.enabled", "true").exit_code == 0
    assert cli("config", "get", "security.entropy.enabled", "--json").json["value"] is True
    res = cli("config", "set", "security.entropy.enabled", "false")
    assert res.exit_code == 0 and "security.entropy.enabled" in res.stderr
    assert cli("config", "get", "security.entropy.enabled").stdout.strip() == "false"
    assert cli("config", "set", "bucket.remote", "git@example.com:me/traces.git").exit_code == 0
    assert cli("config", "get", "bucket.remote").stdout.strip() == "git@example.com:me/traces.git"
