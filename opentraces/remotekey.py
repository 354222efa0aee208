"""The key of an end-to-end encrypted remote: made once, kept 0600 outside the bucket, moved by file.

One 64-byte secret per remote key, ``$OPENTRACES_HOME/keys/remote-<fingerprint>.key``
(the file holds the secret in base64; mode 0600; never in the bucket,
never pushed). Every key used on the wire is derived from it with HKDF-SHA256
under its own label (``opentraces/v1/objects``, ``.../names``,
``.../commits``, ``.../fingerprint``), so a fault in one use does not leak
another. The fingerprint (16 hex of the ``fingerprint`` derivation) names the
key in ``remote status`` and in the remote's key marker; it reveals nothing
about the secret.

Moving the key to another machine: ``opentraces key export --out FILE``
writes ``opentraces.remote-key.v1`` JSON: the secret sealed with
AES-256-GCM under a key derived from a passphrase by scrypt (n=2^15, r=8,
p=1, a random 16-byte salt); ``opentraces key import FILE`` asks for the
passphrase and refuses a wrong one (the GCM tag does not verify). Losing
every copy of the key loses the remote's content: nothing can decrypt it.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import ConfigError, RefusedError
from .fsio import atomic_write

EXPORT_FORMAT = "opentraces.remote-key.v1"
SECRET_BYTES = 64
SCRYPT = {"n": 2 ** 15, "r": 8, "p": 1}


def derive(secret: bytes, label: str, length: int = 64) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                info=f"opentraces/v1/{label}".encode()).derive(secret)


def fingerprint(secret: bytes) -> str:
    return derive(secret, "fingerprint", 32).hex()[:16]


def keys_dir(home: Path) -> Path:
    return Path(home) / "keys"


def key_path(home: Path, fp: str) -> Path:
    return keys_dir(home) / f"remote-{fp}.key"


def create(home: Path) -> tuple[bytes, str]:
    secret = os.urandom(SECRET_BYTES)
    fp = fingerprint(secret)
    store(home, secret)
    return secret, fp


def store(home: Path, secret: bytes) -> str:
    fp = fingerprint(secret)
    path = key_path(home, fp)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if not path.exists():
        atomic_write(path, base64.b64encode(secret) + b"\n", mode=0o600)
    return fp


def load(home: Path, fp: str) -> bytes:
    path = key_path(home, fp)
    try:
        secret = base64.b64decode(path.read_bytes().strip(), validate=True)
    except FileNotFoundError:
        raise ConfigError(f"the remote is encrypted with key {fp}, which this machine does not have",
                          "copy it here: 'opentraces key export' on a machine that has it, then "
                          "'opentraces key import FILE' here") from None
    except ValueError:
        raise ConfigError(f"the key file {path} is damaged", "import the key again ('opentraces key import FILE')") from None
    if len(secret) != SECRET_BYTES or fingerprint(secret) != fp:
        raise ConfigError(f"the key file {path} does not hold key {fp}", "import the key again ('opentraces key import FILE')")
    return secret


def _kek(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, **SCRYPT).derive(passphrase.encode("utf-8"))


def export(secret: bytes, passphrase: str) -> bytes:
    if len(passphrase) < 8:
        raise RefusedError("the passphrase is shorter than 8 characters", "choose a longer passphrase")
    salt, nonce = os.urandom(16), os.urandom(12)
    fp = fingerprint(secret)
    sealed = AESGCM(_kek(passphrase, salt)).encrypt(nonce, secret, fp.encode())
    doc = {"format": EXPORT_FORMAT, "fingerprint": fp, "kdf": {"name": "scrypt", "salt": base64.b64encode(salt).decode(), **SCRYPT},
           "aead": "AES-256-GCM", "nonce": base64.b64encode(nonce).decode(), "sealed": base64.b64encode(sealed).decode()}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def unseal(data: bytes, passphrase: str) -> bytes:
    try:
        doc: Any = orjson.loads(data)
        assert doc["format"] == EXPORT_FORMAT and doc["kdf"]["name"] == "scrypt"
        salt = base64.b64decode(doc["kdf"]["salt"])
        nonce = base64.b64decode(doc["nonce"])
        sealed = base64.b64decode(doc["sealed"])
        fp = doc["fingerprint"]
        kdf = {k: int(doc["kdf"][k]) for k in ("n", "r", "p")}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AssertionError):
        raise RefusedError("not an opentraces key file", "pass the file 'opentraces key export' wrote") from None
    try:
        secret = AESGCM(Scrypt(salt=salt, length=32, **kdf).derive(passphrase.encode("utf-8"))).decrypt(nonce, sealed, fp.encode())
    except InvalidTag:
        raise ConfigError("wrong passphrase for this key file (or the file was altered)",
                          "type the passphrase used when it was exported") from None
    if fingerprint(secret) != fp:
        raise ConfigError("the key file's fingerprint does not match its key", "export the key again")
    return secret
