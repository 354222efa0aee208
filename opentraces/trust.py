"""Which writer keys a bucket trusts, and the check a pull makes with them.

The record travels with the bucket: ``events/v1/trust/<key16>-<by16>.json``,
one *endorsement* per file, ``{"format": "opentraces.trust.v1", "key",
"note", "added", "by", "sig"}``: key ``by`` vouches for ``key`` (``sig`` is
``by``'s Ed25519 signature over the other fields). A root endorses itself.
Files only accumulate, so two machines' folders merge by union.

What a bucket trusts is decided locally: ``.state/trust-roots.json`` pins
its root keys (``bucket trust init`` pins this writer's own key; a bucket
that never pinned one pins the remote's roots at its first pull, trust on
first use, and says so; ``bucket trust pin KEY`` pins one before that). The
trusted keys are the pinned roots and every key endorsed, by a valid
signature, by a trusted key. A host can add files to the folder, but it
cannot sign for a trusted key, so it cannot make its own key trusted.

A bucket with no pinned root does not enforce anything (signatures that
are there are still checked); once one is pinned, ``pull`` refuses any new
batch that is unsigned or signed by a key it does not trust (exit 5, named,
the bucket unchanged) and ``verify --full`` names such batches. Batches
this bucket held, unsigned, when it pinned its root stay accepted
(``unsigned_until``: the writers' sequence numbers then).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from pathlib import Path
from typing import Any, Iterable

import orjson

from . import layout, signing, statefiles
from .bucket import Bucket
from .encoding import pretty_json
from .errors import CorruptionError, RefusedError
from .fsio import atomic_write

FOLDER = layout.TRUST
FORMAT = "opentraces.trust.v1"
CONTEXT = b"opentraces.trust.v1 endorsement\x00"
PIN = statefiles.TRUST_ROOTS


def _h(kid: str) -> str:
    return hashlib.sha256(kid.encode()).hexdigest()[:16]


def file_name(doc: dict[str, Any]) -> str:
    return f"{_h(doc['key'])}-{_h(doc['by'])}.json"


def parse(data: bytes) -> dict[str, Any] | None:
    """An endorsement whose signature verifies, else None."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or set(doc) != {"format", "key", "note", "added", "by", "sig"}:
        return None
    body = {k: v for k, v in doc.items() if k != "sig"}
    try:
        signing.public_key(doc["key"])
    except signing.SignatureError:
        return None
    return doc if signing.verify_document(doc["by"], body, doc["sig"], CONTEXT) else None


def endorsements(root: Path) -> list[dict[str, Any]]:
    out = []
    folder = Path(root) / FOLDER
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        doc = parse(p.read_bytes())
        if doc is not None and p.name == file_name(doc):
            out.append(doc)
    return out


def trusted_keys(docs: Iterable[dict[str, Any]], roots: Iterable[str]) -> set[str]:
    """The roots and every key a trusted key endorsed (to a fixed point)."""
    trusted = set(roots)
    docs = list(docs)
    grew = True
    while grew:
        grew = False
        for d in docs:
            if d["by"] in trusted and d["key"] not in trusted:
                trusted.add(d["key"])
                grew = True
    return trusted


def pinned(bucket: Bucket) -> dict[str, Any] | None:
    doc = bucket.read_state(PIN)
    return doc if isinstance(doc, dict) and isinstance(doc.get("roots"), list) and doc["roots"] else None


def own_key(bucket: Bucket) -> str:
    return signing.key_id(signing.writer_key(bucket.state_dir, bucket.writer_id()).public_key())


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _endorse(bucket: Bucket, key: str, note: str) -> dict[str, Any]:
    """Sign and store an endorsement under the writer lock; the mirror's bucket ref carries it."""
    from .writer import writing

    with writing(bucket) as w:
        signer = signing.writer_key(bucket.state_dir, bucket.writer_id())
        by = signing.key_id(signer.public_key())
        if any(d["key"] == key and d["by"] == by for d in endorsements(bucket.root)):
            return {}
        body = {"format": FORMAT, "key": key, "note": note, "added": _now(), "by": by}
        doc = {**body, "sig": signing.sign_document(signer, body, CONTEXT)}
        write_endorsement(bucket.root, doc)
        w.update_mirror([], [])
    return doc


def write_endorsement(root: Path, doc: dict[str, Any]) -> bool:
    path = Path(root) / FOLDER / file_name(doc)
    if path.exists():
        return False
    atomic_write(path, pretty_json(doc))
    return True


def _pin(bucket: Bucket, roots: list[str], how: str) -> dict[str, Any]:
    from .maintenance.scan import scan_batches

    unsigned: dict[str, int] = {}
    for b in scan_batches(bucket, check_events=False).batches:
        if b.header.key is None:
            unsigned[b.header.writer] = max(unsigned.get(b.header.writer, 0), b.header.seq)
    doc = {"roots": sorted(roots), "how": how, "pinned_at": _now(), "unsigned_until": unsigned}
    bucket.write_state(PIN, doc)
    return doc


def init(bucket: Bucket, note: str = "") -> dict[str, Any]:
    """Pin this writer's own key as the bucket's root and record it (self-endorsed)."""
    me = own_key(bucket)
    current = pinned(bucket)
    if current is not None and me not in current["roots"]:
        raise RefusedError(f"this bucket already trusts the root key(s) {', '.join(map(signing.fingerprint, current['roots']))}",
                           "ask a trusted machine to run 'opentraces bucket trust add' for this key")
    _endorse(bucket, me, note or "root")
    if current is None:
        _pin(bucket, [me], "init")
    return summary(bucket)


def pin(bucket: Bucket, key: str) -> dict[str, Any]:
    """Pin ``key`` as a root before the first pull (so a remote with another root is refused)."""
    try:
        signing.public_key(key)
    except signing.SignatureError as exc:
        raise RefusedError(str(exc), "pass the key id 'opentraces bucket trust list' prints on the trusted machine") from None
    current = pinned(bucket)
    roots = sorted(set((current or {}).get("roots") or []) | {key})
    _pin(bucket, roots, "pin")
    return summary(bucket)


def add(bucket: Bucket, key: str, note: str = "") -> dict[str, Any]:
    """Endorse ``key`` with this writer's key (which must be trusted here)."""
    try:
        signing.public_key(key)
    except signing.SignatureError as exc:
        raise RefusedError(str(exc), "pass the key id 'opentraces bucket trust list' prints on that machine") from None
    pins = pinned(bucket)
    me = own_key(bucket)
    if pins is None:
        raise RefusedError("this bucket trusts no key yet", "run 'opentraces bucket trust init' first")
    if me not in trusted_keys(endorsements(bucket.root), pins["roots"]):
        raise RefusedError("this machine's own key is not trusted here, so it cannot vouch for another",
                           "ask a trusted machine to run 'opentraces bucket trust add' for this key")
    _endorse(bucket, key, note)
    return summary(bucket)


def summary(bucket: Bucket) -> dict[str, Any]:
    pins = pinned(bucket)
    docs = endorsements(bucket.root)
    trusted = trusted_keys(docs, pins["roots"]) if pins else set()
    me = own_key(bucket)
    keys = []
    for kid in sorted({d["key"] for d in docs} | set((pins or {}).get("roots") or []) | {me}):
        by = [d for d in docs if d["key"] == kid]
        keys.append({"key": kid, "fingerprint": signing.fingerprint(kid), "trusted": kid in trusted,
                     "root": kid in ((pins or {}).get("roots") or []), "this_writer": kid == me,
                     "note": next((d["note"] for d in by if d["note"]), ""),
                     "endorsed_by": sorted({signing.fingerprint(d["by"]) for d in by if d["by"] != kid})})
    return {"enforced": pins is not None, "pinned_how": (pins or {}).get("how"), "keys": keys}


# ------------------------------------------------------------------ checks


def batch_problem(header, trusted: set[str], unsigned_until: dict[str, int]) -> str | None:
    """Why a batch is not acceptable under the trusted keys, or None."""
    if header.key is None:
        if header.seq <= int(unsigned_until.get(header.writer, 0)):
            return None
        return "is not signed"
    if header.key not in trusted:
        return f"is signed by key {signing.fingerprint(header.key)} ({header.key}), which this bucket does not trust"
    return None


def check_pull(bucket: Bucket, remote_docs: list[dict[str, Any]], batches: list) -> tuple[list[dict], dict | None]:
    """Refuse (CorruptionError) any incoming batch that is not signed by a trusted key.

    Returns (remote endorsements to keep, the pin to write for a first pull, or None);
    nothing is written here, so a refusal leaves the bucket unchanged."""
    pins = pinned(bucket)
    new_pin = None
    if pins is None:
        roots = sorted({d["key"] for d in remote_docs if d["by"] == d["key"]})
        if not roots:
            return [], None  # neither side set up trust: nothing is enforced
        pins = new_pin = {"roots": roots, "how": "first pull", "unsigned_until": {}}
    docs = endorsements(bucket.root) + remote_docs
    trusted = trusted_keys(docs, pins["roots"])
    for b, _data in batches:
        why = batch_problem(b.header, trusted, pins.get("unsigned_until") or {})
        if why:
            hint = (f"if that key is one of your machines, run 'opentraces bucket trust add {b.header.key}' on a "
                    "trusted machine and push, then pull again" if b.header.key else
                    "the remote holds a batch no trusted writer signed; check who wrote it")
            raise CorruptionError(f"the remote's batch {b.name} of writer {b.header.writer} {why}; "
                                  "nothing was changed here", hint)
    keep = [d for d in remote_docs if d["by"] in trusted]
    return keep, new_pin


def apply_pull(bucket: Bucket, keep: list[dict[str, Any]], new_pin: dict | None) -> tuple[list[str], int]:
    """Write what check_pull allowed (before the pulled batches: a first pin accepts only this
    bucket's own unsigned batches); returns (the fingerprints pinned on a first pull, files written)."""
    written = sum(write_endorsement(bucket.root, d) for d in keep)
    if new_pin is not None:
        _pin(bucket, new_pin["roots"], "first pull")
        return [signing.fingerprint(k) for k in new_pin["roots"]], written
    return [], written
