"""The redaction tools one by one: what they catch, what they leave alone, their states (issue #9 part 1)."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from opentraces.security import entropy, trufflehog
from opentraces.security.classifier import classify
from opentraces.security.redact import Redactor, pseudonym
from opentraces.security.tools import tool_states

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))
from bucketrig import FIXTURES  # noqa: E402

KEY = b"k" * 32
ALL = {"regex", "entropy", "business_logic", "path_anonymizer"}


def red(text: str, tools=ALL, **kw) -> str:
    return Redactor(tools, key=KEY, **kw).redact_text(text)


def session_red(obj, tools=ALL, **kw) -> dict:
    out = Redactor(tools, key=KEY, **kw).redact_session(orjson.dumps(obj) + b"\n")
    return orjson.loads(out.data)


def test_aws_documentation_key_ids_are_still_redacted():
    """AKIA...EXAMPLE keys look exactly like real ones; redacting them costs nothing."""
    assert red("AKIAIOSFODNN7EXAMPLE") == "[REDACTED:aws_access_key]"


def test_documentation_examples_localhost_and_placeholders_are_allowed():
    kept = [
        "mail alice@example.com or noreply@github.com or git@github.com:acme/app.git",
        "listen on 127.0.0.1:8080 and 0.0.0.0, doc range 192.0.2.10, mask 255.255.255.0",
        "password=${DB_PASSWORD} token: <your-token> api_key = 'changeme' secret=xxxxxxxx",
        "DATABASE_URL=postgres://app:password@localhost/app",
        "commit 9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6 sha256:" + hashlib.sha256(b"x").hexdigest(),
        f"request {uuid.uuid4()} integrity sha512-" + base64.b64encode(os.urandom(64)).decode(),
        "tool_use_id toolu_01TuXVqJHEzyAgnjb7Re5iOH msg_01JuHvvQk9FT552i4SgYtE5a call_Hq1cXo7uK2bPz9Vr3mWn0aLd",
        "def test_capture_two_thousand_steps_session_incrementally(tmp_path): pass",
        "img data:image/png;base64," + base64.b64encode(os.urandom(300)).decode(),
        "version 10.0.19041.1 on 2026-12-02 12:30:01",
    ]
    for text in kept:
        assert red(text) == text, text


@pytest.mark.parametrize("kind,value", [
    ("aws_access_key", "AKIAQYLPMN5HHHFPZAM2"),
    ("github_token", "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"),
    ("gitlab_token", "glpat-Zx8Qm2Lp9Vt4Rw7Ks1Yb"),
    ("slack_token", "xoxb-123456789012-123456789012-Zx8Qm2Lp9Vt4Rw7Ks1Yb3Nc6"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("email", "jane.roe@acme-corp.io"),
    ("credit_card", "4539 1488 0343 6467"),
    ("us_ssn", "536-22-8194"),
    ("iban", "DE89370400440532013000"),
    ("ip_address", "34.201.10.7"),
    ("phone", "+44 20 7946 0958"),
    ("internal_host", "ci-runner-07.build.corp"),
    ("collaboration_url", "https://acme.atlassian.net/browse/OPS-1234"),
])
def test_each_kind_is_replaced_by_its_marker(kind, value):
    out = red(f"before {value} after")
    assert value not in out and f"[REDACTED:{kind}]" in out, out


def test_card_numbers_need_a_valid_check_digit():
    assert red("order 4539 1488 0343 6468") == "order 4539 1488 0343 6468"  # Luhn fails


def test_entropy_tool_catches_unnamed_secrets_only():
    secret = "Zx8Qm2Lp9Vt4Rw7Ks1Yb3Nc6Hd5Jf0"
    assert red(f"export WEIRD {secret}", {"entropy"}) == "export WEIRD [REDACTED:high_entropy]"
    for ordinary in ["src/opentraces/security/redact_session_lines.py", "getUserAccountSettingsForProfileV2",
                     "9f1c2d3e4b5a69788796a5b4c3d2e1f0a9b8c7d6", str(uuid.uuid4())]:
        assert entropy.find(ordinary) == [], ordinary


@pytest.mark.parametrize("path,user", [
    ("/home/alice/proj/x.py", "alice"), ("/Users/bob/Library/x", "bob"), ("C:\\Users\\carol\\src\\x", "carol"),
    ("/mnt/c/Users/dave/work", "dave"), ("C:/Users/erin/x", "erin"),
])
def test_home_folders_get_stable_pseudonyms_everywhere(path, user):
    p = pseudonym(KEY, user)
    out = red(f"{user}@laptop:~$ cd {path} && whoami\n{user}\nUSER={user}", {"path_anonymizer"})
    assert user not in out and out.count(p) == 4, out
    assert red(path, {"path_anonymizer"}) == red(path, {"path_anonymizer"})  # stable
    other = Redactor({"path_anonymizer"}, key=b"o" * 32).redact_text(path)
    assert other != red(path, {"path_anonymizer"})  # keyed: a different bucket key, a different name


def test_a_user_name_that_is_a_word_is_not_replaced_in_prose():
    out = red("cd /home/will/app; this will work and will@host", {"path_anonymizer"})
    assert out == f"cd /home/{pseudonym(KEY, 'will')}/app; this will work and {pseudonym(KEY, 'will')}@host"


def test_windows_paths_inside_json_are_anonymized_without_breaking_it():
    row = {"cwd": "C:\\Users\\frank\\repo", "msg": "open C:\\Users\\frank\\repo\\a.txt\nand \u001b[31mred"}
    out = session_red(row, {"path_anonymizer"})
    assert "frank" not in orjson.dumps(out).decode() and out["msg"].endswith("\u001b[31mred")


def test_business_terms_and_cloud_ids():
    out = red("Project Nightjar ships; role arn:aws:iam::123456789012:role/ci in projects/acme-prod-42/zones",
              terms=["Nightjar"])
    assert "Nightjar" not in out and "123456789012" not in out and "acme-prod-42" not in out


def test_secrets_behind_json_escapes_are_found():
    inner = orjson.dumps({"command": ["bash", "-lc", "echo x\nAKIAQYLPMN5HHHFPZAM2"]}).decode()
    rows = [{"arguments": inner}, {"text": "line\\u0020AKIAQYLPMN5HHHFPZAM2"}, {"url": "https:\\/\\/u:Zx8Qm2Lp9V@h.io"}]
    for row in rows:
        raw = orjson.dumps(row).replace(b"\\\\u0020", b"\\u0020").replace(b"\\\\/", b"\\/")
        out = Redactor(ALL, key=KEY).redact_session(raw + b"\n").data
        orjson.loads(out)  # still one valid JSON line
        assert b"AKIAQYLPMN5HHHFPZAM2" not in out and b"Zx8Qm2Lp9V" not in out, out


def test_growing_session_is_redacted_to_a_growing_file():
    r = Redactor(ALL, key=KEY, users=["alice"])
    rows = [orjson.dumps({"cwd": "/home/alice/p", "text": f"step {i} token ghp_{'aB3dE6gH9j' * 3}abcdef"}) + b"\n"
            for i in range(5)]
    whole = r.redact_session(b"".join(rows)).data
    part = r.redact_session(b"".join(rows[:3])).data
    assert whole.startswith(part)  # append detection sees the same prefix


def test_classifier_scores_reasons_without_text():
    risky = classify({"private_key": 1, "aws_access_key": 1}, "cat ~/.aws/credentials && printenv | sort")
    assert risky["flagged"] and risky["score"] >= 0.5
    assert all("AKIA" not in r for r in risky["reasons"])
    calm = classify({"email": 1}, "pytest -q")
    assert not calm["flagged"]


def test_tool_states_say_why(tmp_path):
    doc = {"security": {t: {"enabled": True} for t in ("regex", "trufflehog", "privacy_filter")}}
    states = tool_states(doc, {"PATH": str(tmp_path)})
    assert states["regex"]["state"] == "enabled"
    assert states["entropy"]["state"] == "disabled"
    assert states["trufflehog"]["state"] == "missing" and "PATH" in states["trufflehog"]["reason"]
    assert states["privacy_filter"]["state"] in ("unavailable", "enabled")
    if states["privacy_filter"]["state"] == "unavailable":
        assert "install" in states["privacy_filter"]["reason"] or "pipeline" in states["privacy_filter"]["reason"]


# ------------------------------------------------------------------ trufflehog

RECORDED = FIXTURES / "trufflehog" / "filesystem-v3.88.json"


def test_trufflehog_output_contract():
    """TruffleHog v3's --json lines (fixture in its format): Raw values to redact, RawV2 only when it is
    in the file (AWS joins id and secret), log lines ignored."""
    data = b'{"a":"AKIAQYLPMN5HHHFPZAM2 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 https://admin:qW3rTy9zXc@internal.example.net/"}'
    lines = RECORDED.read_bytes().splitlines() + (FIXTURES / "trufflehog" / "filesystem-v3.88.stderr").read_bytes().splitlines()
    found = trufflehog.parse_output(lines, data)
    kinds = dict((v, k) for v, k in found)
    assert kinds["AKIAQYLPMN5HHHFPZAM2"] == "trufflehog_aws"
    assert kinds["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"] == "trufflehog_github"
    assert "https://admin:qW3rTy9zXc@internal.example.net/" in kinds
    assert not any(v.startswith("AKIAQYLPMN5HHHFPZAM21tUm") for v in kinds)  # RawV2 not in the file


def test_trufflehog_findings_are_redacted_through_the_binary_interface(tmp_path):
    """The subprocess path: a program named trufflehog on PATH replays the recorded output
    (the real binary cannot be installed on this offline machine)."""
    exe = tmp_path / "bin" / "trufflehog"
    exe.parent.mkdir()
    exe.write_text(f"#!/bin/sh\ntest \"$1\" = filesystem && test \"$2\" = --json || exit 9\ncat {RECORDED}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    assert trufflehog.binary({"PATH": str(exe.parent)}) == str(exe)
    r = Redactor({"trufflehog"}, key=KEY, literal_finder=lambda data: trufflehog.scan(data, str(exe)))
    out = r.redact_session(b'{"t":"key 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 here"}\n')
    assert b"ghp_" not in out.data and b"[REDACTED:trufflehog_github]" in out.data


def test_user_names_outside_paths_inside_json_lines():
    row = {"cwd": "/home/alice/x", "out": "whoami\nalice\n", "p": "I told alice that alice@box is up; USER=alice"}
    out = Redactor({"path_anonymizer"}, key=KEY).redact_session(orjson.dumps(row) + b"\n").data
    p = pseudonym(KEY, "alice")
    assert orjson.loads(out) == {"cwd": f"/home/{p}/x", "out": f"whoami\n{p}\n",
                                 "p": f"I told alice that {p}@box is up; USER={p}"}


def test_the_inspector_reports_each_tools_state_and_reason(cli):
    assert cli("bucket", "security", "--policy", "strict").exit_code == 0
    doc = cli("bucket", "security", "--json").json
    states = doc["tool_states"]
    assert set(states) == {"regex", "entropy", "trufflehog", "privacy_filter", "business_logic", "path_anonymizer",
                           "classifier"}
    assert all(s["state"] in ("enabled", "disabled", "missing", "unavailable") and s["reason"] for s in states.values())
    assert states["regex"]["state"] == "enabled"
    assert set(doc["security"]) == {"enabled", "tools", "scope", "policy", "available_policies"}  # the seed's shape


@pytest.mark.parametrize("text,value", [
    ("mysql -u root -pS3cr3tPw db", "S3cr3tPw"), ("psql --password=Hunt3rTwo", "Hunt3rTwo"),
    ("my password is tr0ub4dor&3 ok", "tr0ub4dor&3"), ("passphrase: correct-horse-battery", "correct-horse-battery"),
    ("machine api.example.net login bob password q9Zk2pLm", "q9Zk2pLm"),
    ("GOCSPX-abcdefghijklmnopqrstuvwxyz12", "GOCSPX-abcdefghijklmnopqrstuvwxyz12"),
    ("amex 3782 822463 10005", "822463"), ("sq0atp-abcdefghijklmnopqrstuv12", "sq0atp-abcdefghijklmnopqrstuv12"),
])
def test_secrets_given_as_flags_in_prose_and_other_formats(text, value):
    assert value not in red(text), red(text)


def test_prose_about_passwords_is_left_alone():
    for text in ["the password reset flow works", "rotate the token weekly", "see --password-file for details"]:
        assert red(text) == text
