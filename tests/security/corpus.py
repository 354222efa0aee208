"""A corpus of planted secrets and PII, and sessions of all three agents carrying them.

``planted(seed)`` draws fresh values of every kind (random, so no test can
pass by matching one literal); ``plant(data, values, user)`` puts them into
a real session file of any of the three formats: prompts, tool inputs,
tool outputs, file contents, diffs (an ``apply_patch`` body or an Edit's
strings) and the working folder's path (a home folder with a planted user
name). Each value is what must never be found in the bucket afterwards.
"""

from __future__ import annotations

import base64
import random
import string
from typing import Any

import orjson

TEXT_KEYS = {"text", "content", "command", "output", "stdout", "stderr", "old_string", "new_string", "thinking",
             "input", "message", "aggregated_output", "result", "newText", "oldText", "cmd", "description", "prompt"}


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _luhn_complete(prefix: str) -> str:
    digits = [int(c) for c in prefix]
    for check in range(10):
        total = 0
        for i, d in enumerate(reversed(digits + [check])):
            if i % 2 == 1:
                d *= 2
                if d > 9:
                    d -= 9
            total += d
        if total % 10 == 0:
            return prefix + str(check)
    raise AssertionError


def _iban(rng: random.Random) -> str:
    bban = "".join(rng.choice(string.digits) for _ in range(18))
    body = bban + "DE00"
    num = int("".join(str(int(c, 36)) for c in body))
    check = 98 - num % 97
    return f"DE{check:02d}{bban}"


def planted(seed: int = 0, user: str = "malvina") -> list[tuple[str, str, str]]:
    """(kind, line to plant, value that must disappear) for at least 25 kinds."""
    rng = random.Random(seed)
    A, a, d = string.ascii_uppercase, string.ascii_lowercase, string.digits
    an = A + a + d
    pem_body = base64.b64encode(rng.randbytes(96)).decode()
    jwt = ("eyJ" + _rand(rng, an, 20) + "." + "eyJ" + _rand(rng, an, 40) + "." + _rand(rng, an + "-_", 43))
    card = _luhn_complete("4" + "".join(rng.choice(d) for _ in range(14)))
    out = [
        ("aws_access_key", None, "AKIA" + _rand(rng, A + d, 16)),
        ("aws_secret_key", "aws_secret_access_key = {v}", _rand(rng, an + "/+", 40)),
        ("github_token", None, "ghp_" + _rand(rng, an, 36)),
        ("github_pat", None, "github_pat_" + _rand(rng, an + "_", 70)),
        ("gitlab_token", None, "glpat-" + _rand(rng, an + "-_", 20)),
        ("anthropic_key", "ANTHROPIC_API_KEY={v}", "sk-ant-api03-" + _rand(rng, an + "-_", 90)),
        ("openai_key", None, "sk-proj-" + _rand(rng, an + "-_", 120)),
        ("slack_token", None, "xoxb-" + _rand(rng, d, 11) + "-" + _rand(rng, d, 12) + "-" + _rand(rng, an, 24)),
        ("slack_webhook", None, "https://hooks.slack.com/services/T" + _rand(rng, A + d, 8) + "/B" + _rand(rng, A + d, 8)
         + "/" + _rand(rng, an, 24)),
        ("discord_webhook", None, "https://discord.com/api/webhooks/" + _rand(rng, d, 18) + "/" + _rand(rng, an + "-_", 68)),
        ("google_api_key", None, "AIza" + _rand(rng, an + "-_", 35)),
        ("stripe_key", None, "sk_live_" + _rand(rng, an, 24)),
        ("npm_token", "//registry.npmjs.org/:_authToken={v}", "npm_" + _rand(rng, an, 36)),
        ("pypi_token", None, "pypi-AgEIcHlwaS5vcmc" + _rand(rng, an + "-_", 60)),
        ("huggingface_token", None, "hf_" + _rand(rng, an, 34)),
        ("sendgrid_key", None, "SG." + _rand(rng, an + "-_", 22) + "." + _rand(rng, an + "-_", 43)),
        ("telegram_bot_token", None, _rand(rng, d, 10) + ":AA" + _rand(rng, an + "-_", 33)),
        ("private_key", "-----BEGIN RSA PRIVATE KEY-----\n{v}\n-----END RSA PRIVATE KEY-----", pem_body),
        ("jwt", "Cookie: session={v}", jwt),
        ("bearer_token", "curl -H 'Authorization: Bearer {v}' https://api.example.com", _rand(rng, an, 32)),
        ("url_password", "DATABASE_URL=postgres://app:{v}@db.prod.example.com:5432/app", _rand(rng, an, 14)),
        ("secret_assignment", "DB_PASSWORD={v}", _rand(rng, a, 5) + _rand(rng, d, 3) + _rand(rng, a, 4)),
        ("high_entropy", "export SIGNING_SALT {v}", _rand(rng, an, 40)),
        ("email", "contact {v} about the invoice", f"{_rand(rng, a, 7)}.{_rand(rng, a, 6)}@{_rand(rng, a, 8)}.io"),
        ("phone", "call me at {v}", f"+1 {rng.randint(201, 989)}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}"),
        ("credit_card", "card {v} exp 12/29", f"{card[:4]} {card[4:8]} {card[8:12]} {card[12:]}"),
        ("us_ssn", "ssn {v}", f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"),
        ("iban", "wire to {v}", _iban(rng)),
        ("ip_address", "ssh deploy@{v}", f"{rng.randint(11, 99)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"),
        ("internal_host", "curl http://{v}/health", f"{_rand(rng, a, 6)}-{rng.randint(1, 99)}.{_rand(rng, a, 5)}.corp"),
        ("aws_account_id", "arn:aws:iam::{v}:role/deploy", _rand(rng, d, 12)),
        ("collaboration_url", "see {v}", f"https://{_rand(rng, a, 6)}.atlassian.net/browse/{_rand(rng, A, 3)}-{rng.randint(10, 999)}"),
        ("business_term", "the {v} launch is confidential", "Project" + _rand(rng, A, 1) + _rand(rng, a, 7)),
        ("home_user", "ls /home/{v}/.ssh", user),
        ("cli_password", "mysql -u app -p{v} prod", _rand(rng, an, 12)),
        ("prose_password", "the staging password is {v} today", _rand(rng, a, 6) + _rand(rng, d, 3)),
        ("google_oauth_secret", None, "GOCSPX-" + _rand(rng, an + "-_", 28)),
        ("amex", "amex {v}", (lambda c: f"{c[:4]} {c[4:10]} {c[10:]}")(_luhn_complete("37" + "".join(rng.choice(d) for _ in range(12))))),
    ]
    return [(k, (tpl or "{v}").format(v=v), v) for k, tpl, v in out]


def _plant_text(value: str, line: str) -> str:
    if "*** Begin Patch" in value and "\n@@" in value:
        head, _, rest = value.partition("\n@@")
        first, nl, tail = rest.partition("\n")
        return head + "\n@@" + first + nl + "".join("+" + ln + "\n" for ln in line.split("\n")) + tail
    return value + "\n" + line


def plant(data: bytes, lines: list[str], user: str) -> bytes:
    """``data`` (a session file) with ``lines`` planted round-robin into its text fields and the
    user's home folder as its working folder."""
    it = iter(range(10 ** 9))
    out = []

    def next_line() -> str:
        return lines[next(it) % len(lines)]

    def walk(v: Any, key: str | None) -> Any:
        if isinstance(v, str):
            if key == "cwd" and v.startswith("/"):
                return f"/home/{user}" + v
            if key == "arguments" and v.startswith("{"):
                try:
                    return orjson.dumps(walk(orjson.loads(v), None)).decode()
                except orjson.JSONDecodeError:
                    return v
            if key in TEXT_KEYS and v:
                return _plant_text(v, next_line() + "\n" + next_line())
            if key == "file_path" or key == "path":
                return v.replace("/workspace/", f"/home/{user}/")
            return v
        if isinstance(v, list):
            return [walk(x, key) for x in v]
        if isinstance(v, dict):
            return {k: walk(x, k) for k, x in v.items()}
        return v

    for raw in data.split(b"\n"):
        if not raw.strip():
            out.append(raw)
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out.append(raw)
            continue
        out.append(orjson.dumps(walk(obj, None)))
    return b"\n".join(out)
