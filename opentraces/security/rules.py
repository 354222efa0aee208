"""What the pattern tools look for: credentials, structured PII, business details.

A ``Rule`` is a compiled pattern, the group that holds the sensitive part,
and an optional check on the matched text (a card's Luhn digit, an IBAN's
mod-97, an allowlist of documentation examples and placeholders). The rules
are data; ``detect.py`` runs them. Each rule names the ``kind`` written into
the replacement (``[REDACTED:<kind>]``) and the tool that owns it, so the
policy can switch them as a group.

Patterns see text in which JSON escapes (``\\n``, ``\\"``, ``\\\\``) were
masked to spaces of the same length (``detect.mask_escapes``), so a token
that follows an escape still starts on a word boundary.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable

# --------------------------------------------------------------------------
# allowlists


PLACEHOLDER = re.compile(
    r"(?ix)^(?:"
    r"x{3,}|\*{3,}|\.{3,}|-+|_+|0+|1234.*|abc.*|test.*|dummy.*|fake.*|sample.*|example.*|placeholder.*|changeme"
    r"|your[_-]?.*|my[_-]?(?:secret|token|password|key).*|secret|password|passw(?:or)?d|token|redacted.*|none|null"
    r"|undefined|true|false|\$\{?[a-z_][a-z0-9_]*\}?|<[^>]*>|\{\{.*\}\}|%\(?[a-z_]+\)?s?|\[redacted.*"
    r"|env\[.*|os\.environ.*|process\.env.*|getenv.*"
    r")$")

DOC_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "example.edu", "test.com", "localhost",
                     "users.noreply.github.com", "noreply.github.com", "email.com", "domain.com", "anthropic.com",
                     "openai.com")
DOC_EMAIL_LOCALS = ("git", "noreply", "no-reply", "user", "username", "you", "your.email", "your_email",
                    "name", "email", "someone", "foo", "bar", "test", "example", "admin", "root")


def not_placeholder(value: str) -> bool:
    v = value.strip("'\"`,;")
    return len(v) >= 6 and not PLACEHOLDER.match(v) and len(set(v)) > 3


def email_ok(value: str) -> bool:
    local, _, domain = value.rpartition("@")
    domain = domain.lower().rstrip(".")
    if any(domain == d or domain.endswith("." + d) for d in DOC_EMAIL_DOMAINS) or \
            domain.endswith((".example", ".test", ".invalid", ".localhost", ".local")):
        return False
    if local.lower() in DOC_EMAIL_LOCALS and domain.count(".") <= 1 and domain.split(".")[0] in ("github", "gitlab", "bitbucket"):
        return False
    if domain.endswith((".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".js", ".ts", ".py", ".css")):
        return False  # asset@2x.png, package@version paths
    if re.fullmatch(r"[\d.]+", domain.split(".")[0] or "0") and domain.count(".") < 2:
        return False
    return True


def luhn_ok(value: str) -> bool:
    digits = [int(c) for c in value if c.isdigit()]
    if not 13 <= len(digits) <= 19 or len(set(digits)) < 2:
        return False
    s = value.replace(" ", "").replace("-", "")
    if not re.match(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[0689]|6(?:011|5|4[4-9]|22)|35)", s):
        return False
    seps = {c for c in value if not c.isdigit()}
    if len(seps) > 1:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_ok(value: str) -> bool:
    s = value.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in moved)
    return int(num) % 97 == 1


def ip_ok(value: str) -> bool:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return False
    if ip.is_loopback or ip.is_unspecified or ip.is_multicast or ip.is_reserved or ip.is_link_local:
        return False
    text = str(ip)
    if text.startswith(("192.0.2.", "198.51.100.", "203.0.113.", "255.")):
        return False  # documentation ranges, masks
    return True


def internal_host_ok(value: str) -> bool:
    """``.local`` names a host only with two labels or more: ``env.local``, ``settings.local`` are files."""
    return not value.lower().endswith(".local") or value.count(".") >= 2


def ssn_ok(value: str) -> bool:
    a, b, c = value.split("-")
    return a not in ("000", "666") and not a.startswith("9") and b != "00" and c != "0000"


def phone_ok(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    if not 10 <= len(digits) <= 15 or len(set(digits)) < 4:
        return False
    if re.fullmatch(r"(19|20)\d\d[-./ ]\d\d[-./ ]\d\d.*", value.strip("+( ")):
        return False  # a date
    return True


# --------------------------------------------------------------------------
# rules


@dataclass(frozen=True)
class Rule:
    kind: str
    tool: str  # regex | business_logic
    pattern: re.Pattern
    group: int = 0
    check: Callable[[str], bool] | None = None
    # the rule runs only on text holding one of these (lowercase: searched in the lowercased text);
    # a substring search is ~50x cheaper than a regex pass, and most files hold none
    keywords: tuple[str, ...] = ()
    # run over the lowercased text (a case-insensitive rule without re.I, which would cost a full scan)
    on_lower: bool = False
    # a pattern anchored on a rare literal ("@", ".corp") extends its start leftwards over these characters
    left: frozenset | None = None
    # runs only inside the numeric candidates (NUMERIC_CANDIDATE): digits with separators, no dates
    numeric: bool = False


def _r(kind: str, tool: str, pattern: str, group: int = 0, check=None, flags: int = 0, *, lower: bool = False,
       left: str | None = None, keywords: tuple[str, ...] = (), numeric: bool = False) -> Rule:
    """A rule. ``keywords`` only for a pattern that does not start with a literal (a literal
    start is found by the regex engine's own prefix search, faster than a keyword check)."""
    return Rule(kind, tool, re.compile(pattern, flags), group, check, keywords, lower,
                frozenset(left) if left else None, numeric)


# where a card, SSN, phone number or IPv4 address can be: one pass for all of them instead of
# one pass each (a session's timestamps make digits the most common start of a regex attempt)
NUMERIC_CANDIDATE = re.compile(r"\d(?<![\w.\-]\d)[\d \-.()]{5,}\d")


def numeric_windows(scan: str) -> list[tuple[int, int]]:
    """(start, end) windows holding every possible card, SSN, phone number or IPv4 address:
    runs of digits and separators with three dots (an address) or at least nine digits; a
    leading ``+`` or ``(`` and one character after are included for the rules' boundaries."""
    out = []
    for m in NUMERIC_CANDIDATE.finditer(scan):
        g = m.group()
        if g.count(".") == 3 or len(g) - g.count(" ") - g.count("-") - g.count(".") - g.count("(") - g.count(")") >= 9:
            s = m.start()
            out.append((s - 1 if s and scan[s - 1] in "+(" else s, m.end() + 1))
    return out


_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"



_PEM_HEAD = r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
_PEM_TAIL = r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
# in JSON text a key block stays inside one string (escaped newlines are masked to spaces)
PEM_RAW = _PEM_HEAD + r'[^\n"]*?(?:' + _PEM_TAIL + r'|(?=")|$)'
# in a decoded string it spans real newlines; a block cut short runs to the end of the string
PEM_DECODED = re.compile(_PEM_HEAD + r"[\s\S]*?(?:" + _PEM_TAIL + r"|\Z)")

_KEYWORD_VALUE = r"[\"']?\s*[:=]\s*(?:\"|')?([^\s\"'`,;<>]{6,})"

REGEX_RULES: tuple[Rule, ...] = (
    # private keys first: the longest spans
    _r("private_key", "regex", PEM_RAW, 0, None, re.M),
    _r("aws_access_key", "regex", r"A(?<![A-Z0-9]A)(?:KIA|SIA|BIA|CCA|3T[A-Z0-9])[A-Z0-9]{16}(?![A-Z0-9])"),
    _r("aws_secret_key", "regex",
       r"aws.{0,24}?(?:secret|private)?.{0,8}?key[\"']?\s*[:=]?\s*[\"']?([a-z0-9/+]{40})(?![a-z0-9/+])", 1, lower=True, keywords=('aws',)),
    _r("github_token", "regex", r"g(?<!\wg)(?:hp|ho|hu|hs|hr)_[A-Za-z0-9]{36,255}\b|g(?<!\wg)ithub_pat_[A-Za-z0-9_]{22,255}\b"),
    _r("gitlab_token", "regex", r"g(?<!\wg)l(?:pat|dt|rt|ptt|cbt|oas|soat|ft|imt|agent)-[A-Za-z0-9_\-]{20,}"),
    _r("anthropic_key", "regex", r"s(?<!\ws)k-ant-[a-z]{3,6}\d{2}-[A-Za-z0-9_\-]{20,}"),
    _r("openai_key", "regex", r"s(?<!\ws)k-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,}"
                              r"|s(?<!\ws)k-proj-[A-Za-z0-9_\-]{40,}|s(?<!\ws)k-[A-Za-z0-9]{48}\b"),
    _r("slack_token", "regex", r"x(?<!\wx)ox[abposr]-(?:\d+-)?[A-Za-z0-9\-]{10,}"),
    _r("slack_webhook", "regex", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+"),
    _r("discord_webhook", "regex", r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_\-]+"),
    _r("teams_webhook", "regex", r"https://[A-Za-z0-9\-]+\.webhook\.office\.com/[^\s\"'<>]+"),
    _r("google_api_key", "regex", r"A(?<!\wA)Iza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])"),
    _r("google_oauth_token", "regex", r"y(?<!\wy)a29\.[0-9A-Za-z_\-]{20,}"),
    _r("stripe_key", "regex", r"_(?:live|test)_[A-Za-z0-9]{16,}\b", 0,
       lambda v: re.fullmatch(r"[srp]k_(?:live|test)_[A-Za-z0-9]{16,}", v) is not None, left="srpk", keywords=('_live_', '_test_')),
    _r("stripe_key", "regex", r"w(?<!\ww)hsec_[A-Za-z0-9]{24,}\b"),
    _r("npm_token", "regex", r"n(?<!\wn)pm_[A-Za-z0-9]{36}\b"),
    _r("pypi_token", "regex", r"p(?<!\wp)ypi-AgE[A-Za-z0-9_\-]{50,}"),
    _r("huggingface_token", "regex", r"h(?<!\wh)f_[A-Za-z0-9]{30,}\b"),
    _r("sendgrid_key", "regex", r"S(?<!\wS)G\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}\b"),
    _r("twilio_key", "regex", r"S(?<!\wS)K[0-9a-f]{32}\b"),
    _r("digitalocean_token", "regex", r"d(?<!\wd)o[por]_v1_[a-f0-9]{64}\b"),
    _r("shopify_token", "regex", r"s(?<!\ws)hp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b"),
    _r("linear_key", "regex", r"l(?<!\wl)in_(?:api|oauth)_[A-Za-z0-9]{32,}\b"),
    _r("databricks_token", "regex", r"d(?<!\wd)api[a-f0-9]{32}(?:-\d)?\b"),
    _r("telegram_bot_token", "regex", r":AA(?<=\d:AA)[A-Za-z0-9_\-]{33}\b", 0, lambda v: re.fullmatch(r"\d{8,10}:AA.{33}", v) is not None, left="0123456789"),
    _r("age_secret_key", "regex", r"A(?<!\wA)GE-SECRET-KEY-1[0-9A-Z]{58}\b"),
    _r("google_oauth_secret", "regex", r"G(?<!\wG)OCSPX-[A-Za-z0-9_\-]{24,}"),
    _r("mailgun_key", "regex", r"k(?<!\wk)ey-[0-9a-f]{32}\b"),
    _r("mailchimp_key", "regex", r"-us(?<=[0-9a-f]{32}-us)\d{1,2}\b", 0, None, left="0123456789abcdef"),
    _r("square_token", "regex", r"s(?<!\ws)q0(?:atp|csp|idp)-[A-Za-z0-9_\-]{22,}"),
    _r("groq_key", "regex", r"g(?<!\wg)sk_[A-Za-z0-9]{40,}"),
    _r("xai_key", "regex", r"x(?<!\wx)ai-[A-Za-z0-9]{60,}"),
    _r("replicate_token", "regex", r"r(?<!\wr)8_[A-Za-z0-9]{37}\b"),
    _r("azure_storage_key", "regex", r"(?:accountkey|sharedaccesskey)=([a-z0-9+/]{40,100}={0,2})", 1, None, 0, lower=True, keywords=('accountkey', 'sharedaccesskey')),
    _r("jwt", "regex", r"e(?<!\we)yJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    *(_r("bearer_token", "regex", word + r"[ \t]+([a-z0-9_\-.~+/]{16,}=*)", 1, not_placeholder, lower=True)
      for word in ("bearer", "token", "basic")),
    _r("url_password", "regex", r"://(?<=[A-Za-z0-9]://)[^\s:/@\"'<>]{1,64}:([^\s@/\"'<>]{3,128})@", 1, not_placeholder),
    _r("secret_assignment", "regex",
       r"(?:api[_-]?key|apikey|secret|secret[_-]?key|access[_-]?key|access[_-]?token"
       r"|auth[_-]?token|refresh[_-]?token|client[_-]?secret|password|passwd|passphrase|pwd|private[_-]?token"
       r"|credentials?)"
       r"[A-Za-z0-9_\-]{0,32}" + _KEYWORD_VALUE, 1, not_placeholder, lower=True, keywords=('key', 'secret', 'token', 'passw', 'passphrase', 'pwd', 'credential')),
    # a secret given as a command-line flag, in prose, or in a .netrc/.pgpass line
    _r("secret_assignment", "regex",
       r"--(?:password|passwd|pass|passphrase|token|api-key|apikey|secret|client-secret)[= ]+[\"']?([^\s\"']{4,})", 1,
       not_placeholder, keywords=("--pass", "--token", "--api", "--secret", "--client-secret")),
    _r("secret_assignment", "regex", r"(?:password|passphrase|passwd) (?:is|was|for \S+ is) [\"'`]?([^\s\"'`]{4,})", 1,
       not_placeholder, lower=True, keywords=("password", "passphrase", "passwd")),
    _r("secret_assignment", "regex", r"machine\s+\S+\s+login\s+\S+\s+password\s+(\S+)", 1, not_placeholder,
       keywords=("machine",)),
    _r("secret_assignment", "regex", r"m(?<!\wm)ysql\b[^\n]*?\s-p([^\s\-][^\s]{3,})", 1, not_placeholder,
       keywords=("mysql",)),
    # structured PII
    _r("email", "regex", r"@(?<=[A-Za-z0-9._%+\-]@)[A-Za-z0-9][A-Za-z0-9\-]{0,62}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}\b",
       0, email_ok, left=_ALNUM + "._%+-"),
    _r("credit_card", "regex", r"\d(?<![\d.\-]\d)\d{3}[ \-]?(?:\d{4}[ \-]?){1,2}\d{4}(?:[ \-]?\d{1,3})?(?![\d.\-])", 0, luhn_ok, numeric=True),
    _r("credit_card", "regex", r"3(?<![\d.\-]3)[47]\d{2}[ \-]?\d{6}[ \-]?\d{5}(?![\d.\-])", 0, luhn_ok, numeric=True),  # Amex 4-6-5
    _r("iban", "regex", r"[A-Z](?<![\w][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b", 0, iban_ok),
    _r("us_ssn", "regex", r"\d(?<![\d\-]\d)\d{2}-\d{2}-\d{4}(?![\d\-])", 0, ssn_ok, numeric=True),
    _r("phone", "regex", r"\+(?<![\w.+\-/]\+)\d{1,3}[ .\-]?\(?\d{1,4}\)?(?:[ .\-]?\d{2,4}){2,4}(?![\w.\-/])", 0, phone_ok, numeric=True),
    _r("phone", "regex", r"\((?<![\w]\()\d{3}\) ?\d{3}[ .\-]\d{4}(?![\w.\-/])", 0, phone_ok, numeric=True),
    _r("phone", "regex", r"\d(?<![\w.+\-/]\d)\d{2}[.\-]\d{3}[.\-]\d{4}(?![\w.\-/])", 0, phone_ok, numeric=True),
    _r("ip_address", "regex", r"\d(?<![\w.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w.])",
       0, ip_ok, numeric=True),
    _r("ip_address", "regex", r":(?<=[0-9a-fA-F]:)(?:[0-9a-fA-F]{1,4}:){6}[0-9a-fA-F]{1,4}(?![\w:])", 0, ip_ok,
       left="0123456789abcdefABCDEF"),
)

_COLLAB_HOSTS = (
    r"[a-z0-9\-]+\.slack\.com", r"app\.slack\.com", r"[a-z0-9\-]+\.atlassian\.net", r"(?:www\.)?notion\.so",
    r"[a-z0-9\-]+\.notion\.site", r"linear\.app", r"docs\.google\.com", r"drive\.google\.com",
    r"teams\.microsoft\.com", r"[a-z0-9\-]*\.?zoom\.us", r"(?:www\.)?figma\.com", r"[a-z0-9\-]+\.sharepoint\.com",
    r"miro\.com", r"app\.asana\.com", r"trello\.com", r"[a-z0-9\-]+\.monday\.com", r"app\.clickup\.com",
)

BUSINESS_RULES: tuple[Rule, ...] = (
    _r("collaboration_url", "business_logic", r"https?://(?:" + "|".join(_COLLAB_HOSTS) + r")/[^\s\"'<>)\]]*", 0, None, lower=True),
    _r("internal_host", "business_logic",
       r"\.(?<=[a-z0-9]\.)(?:internal|corp|intranet|lan|private|localdomain|intra|local|svc\.cluster\.local)(?![\w\-])",
       0, internal_host_ok, lower=True, left="abcdefghijklmnopqrstuvwxyz0123456789.-", keywords=('.internal', '.corp', '.intranet', '.lan', '.private', '.localdomain', '.intra', '.local')),
    _r("aws_account_id", "business_logic", r"a(?<!\wa)rn:aws[a-z\-]*:[a-z0-9\-]*:[a-z0-9\-]*:(\d{12})(?=:)", 1, keywords=("arn:aws",)),
    _r("aws_account_id", "business_logic", r"(?<=(\d{12}))\.dkr\.ecr\.", 1, keywords=(".dkr.ecr.",)),
    _r("aws_account_id", "business_logic", r"account[_ \-]?id[\"']?\s*[:=]?\s*[\"']?(\d{12})\b", 1, lower=True),
    _r("gcp_project", "business_logic", r"projects/(?<![\w\-]projects/)([a-z][a-z0-9\-]{4,28}[a-z0-9])(?=/)", 1),
    _r("gcp_project", "business_logic", r"(?:gcp|gcloud|google)[_ \-]?project(?:[_ \-]?id)?[\"']?\s*[:=]\s*[\"']?([a-z][a-z0-9\-]{4,28}[a-z0-9])", 1, lower=True, keywords=('project',)),
    _r("azure_subscription", "business_logic", r"subscriptions/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", 1, lower=True),
)

# home folders: POSIX, macOS, WSL, Windows (a backslash may be JSON-escaped as two)
HOME_PATH = re.compile(
    r"(?:/home/(?<![\w.]/home/)|/Users/(?<![\w.]/Users/)|/mnt/[a-zA-Z]/Users/|(?:\\{1,2}|/)Users(?<=[A-Za-z]:\\Users|:\\\\Users|[A-Za-z]:/Users)(?:\\{1,2}|/))"
    r"([A-Za-z0-9][A-Za-z0-9._\-]{0,63})(?=[/\\\s\"':,;)\]}]|$)")
_HOME_MARKERS = (("/home/", (0,)), ("/Users/", (0, -6)), ("Users\\", (-1, -2)))


def home_matches(text: str):
    """``HOME_PATH`` matches, found by substring search first: every line of a session names its
    working folder, and a plain find is many times faster than the regex scanning for them."""
    seen: set[int] = set()
    for marker, offsets in _HOME_MARKERS:
        i = text.find(marker)
        while i >= 0:
            for off in offsets:
                if i + off < 0:
                    continue
                m = HOME_PATH.match(text, i + off)
                if m is not None:
                    if m.start(1) not in seen:
                        seen.add(m.start(1))
                        yield m
                    break
            i = text.find(marker, i + 1)


NOT_USERS = frozenset({"shared", "public", "default", "default user", "all users", "guest", "localized", ".localized"})
# user names too common to replace as bare words (their home paths are still anonymized)
COMMON_NAMES = frozenset({
    "user", "users", "admin", "root", "dev", "developer", "ubuntu", "debian", "runner", "vscode", "node", "app",
    "test", "tests", "git", "build", "ci", "www", "www-data", "ec2-user", "centos", "fedora", "pi", "docker",
    "home", "guest", "me", "src", "work", "code", "main", "data", "opt", "tmp", "local", "bin", "lib", "share",
})
