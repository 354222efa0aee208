"""Signed batches: each writer's Ed25519 key, and the signature a batch header carries.

Every batch a writer commits carries, in its header, ``"sig": {"key":
"ed25519:<base64url public key>", "value": "<base64 signature>"}``. The
signature covers a fixed context string, the header's other fields (writer,
seq, ``prev`` = the predecessor's hash, event count) and the SHA-256 of the
event lines, so it pins the batch's content and its place in the writer's
chain. Ed25519 signatures are deterministic: the same batch signed twice is
the same bytes, so the mirror built from it stays the same on every machine.

The private key is this writer's (``.state/writer-key-<writer>.pem``, 0600,
never synced): a copied bucket mints a new writer id and with it a new key.
Which keys a bucket trusts is ``opentraces.trust``.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .encoding import canonical_json
from .errors import ConfigError
from .fsio import atomic_write

CONTEXT = b"opentraces.batch.v1 signature\x00"
KEY_PREFIX = "ed25519:"


class SignatureError(ValueError):
    """A signature that is malformed or does not verify."""


def key_path(state_dir: Path, writer: str) -> Path:
    return Path(state_dir) / f"writer-key-{writer}.pem"


def writer_key(state_dir: Path, writer: str) -> Ed25519PrivateKey:
    """This writer's signing key, created (0600) on first use."""
    path = key_path(state_dir, writer)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        atomic_write(path, pem, mode=0o600)
        return key
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"the writer key {path} is damaged",
                          "restore it from a backup, or delete it to make a new one (other machines must "
                          "then trust the new key: 'opentraces bucket trust add')")
    return key


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def public_key(kid: Any) -> Ed25519PublicKey:
    if not isinstance(kid, str) or not kid.startswith(KEY_PREFIX) or len(kid) != len(KEY_PREFIX) + 43:
        raise SignatureError(f"not an Ed25519 key id: {str(kid)[:60]!r}")
    try:
        raw = base64.urlsafe_b64decode(kid[len(KEY_PREFIX):] + "=")
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError):
        raise SignatureError(f"not an Ed25519 key id: {kid[:60]!r}") from None


def fingerprint(kid: str) -> str:
    """The OpenSSH-style fingerprint of a key id (what ``ssh-keygen -l`` prints for it)."""
    raw = public_key(kid).public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(raw.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _message(fields: dict[str, Any], body_sha256: str) -> bytes:
    return CONTEXT + canonical_json({**fields, "body": body_sha256})


def sign(key: Ed25519PrivateKey, fields: dict[str, Any], body_sha256: str) -> dict[str, str]:
    """The ``sig`` of a header with ``fields`` over event lines hashing to ``body_sha256``."""
    value = key.sign(_message(fields, body_sha256))
    return {"key": key_id(key.public_key()), "value": base64.b64encode(value).decode()}


def verify(sig: Any, fields: dict[str, Any], body_sha256: str) -> str:
    """The key id that signed, or SignatureError."""
    if not isinstance(sig, dict) or set(sig) != {"key", "value"}:
        raise SignatureError("malformed signature")
    public = public_key(sig["key"])
    try:
        value = base64.b64decode(sig["value"], validate=True)
        public.verify(value, _message(fields, body_sha256))
    except (ValueError, TypeError, InvalidSignature):
        raise SignatureError(f"the signature of key {fingerprint(sig['key'])} does not verify") from None
    return sig["key"]


def sign_document(key: Ed25519PrivateKey, doc: dict[str, Any], context: bytes) -> str:
    return base64.b64encode(key.sign(context + canonical_json(doc))).decode()


def verify_document(kid: str, doc: dict[str, Any], value: Any, context: bytes) -> bool:
    try:
        public_key(kid).verify(base64.b64decode(value, validate=True), context + canonical_json(doc))
        return True
    except (SignatureError, ValueError, TypeError, InvalidSignature):
        return False
