"""End-to-end encrypted remotes: the mirror's Git objects sealed one by one, deterministically.

The remote receives a *shadow* of each object the bucket pushes, built with
AES-SIV (RFC 5297, deterministic authenticated encryption, 512-bit keys
derived per purpose from the remote key, ``opentraces.remotekey``):

- a blob's shadow is a blob holding ``AES-SIV(objects key, content, ad="blob")``;
- a tree's shadow is a tree with the same modes whose entry names are
  ``base32(AES-SIV(names key, name, ad="entry"))`` and whose entries are the
  shadows of the children;
- a commit's shadow has the shadow tree, the shadows of its parents (so the
  history keeps its shape and pushes stay fast-forwards), a fixed author and
  time (``opentraces <encrypted@opentraces.invalid>``, epoch 0) and a message
  holding ``base64(AES-SIV(commits key, the commit's raw bytes, ad="commit"))``;
- a ref ``refs/opentraces/v1/X`` (and ``refs/heads/main``) is pushed as
  ``refs/opentraces/e1/<base32(AES-SIV(names key, name, ad="ref"))>``.

The same plaintext gives the same shadow on every machine that holds the
key, so pushes stay incremental (only new objects move), two machines
converge on the same objects, and a lazy fetch of one trace's blob ref
fetches that ref's objects only. Opening a shadow checks everything:
AES-SIV authenticates every name and content, and an opened commit must
name exactly the opened tree and parents, so a host that edits, swaps or
invents an object is caught (``CryptError``, exit 5).

What stays visible to the host: object counts and sizes (content + 16
bytes), names' lengths, the shape of the history, and when pushes happen.

A marker ref ``refs/opentraces/e1/key-<fingerprint>`` names the key (its
fingerprint only); a machine with another key, or none, is refused with
exit 3 before anything is read.

Locally, shadows live in the mirror's object store (those this machine
pushed under ``refs/opentraces-encrypted/``), and a small SQLite map
(``.state/crypt-map.sqlite``) remembers plain <-> shadow ids so that only new
objects are sealed or opened.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pygit2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

import gitref
from gitref.objects import COMMIT, Identity

from .. import remotekey
from ..errors import ConfigError, CorruptionError
from .transport import Transport

ENC_PREFIX = "refs/opentraces/e1/"
LOCAL_PREFIX = "refs/opentraces-encrypted/"  # the shadows this machine pushed (kept from Git's pruning)
STAGING_PREFIX = "refs/opentraces-encrypted-staging/"  # shadows being opened
MARKER = ENC_PREFIX + "key-"
MAP_NAME = "crypt-map.sqlite"
IDENTITY = Identity("opentraces", "encrypted@opentraces.invalid")
_HEAD = "opentraces encrypted commit\n\n"


class CryptError(CorruptionError):
    """A shadow object that does not open: altered, swapped or invented on the remote."""


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def _unb32(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


class Crypt:
    """Seal and open objects of one repository under one remote key."""

    def __init__(self, repo: pygit2.Repository, secret: bytes, map_path: Path):
        self.repo = repo
        self.fingerprint = remotekey.fingerprint(secret)
        self._obj = AESSIV(remotekey.derive(secret, "objects"))
        self._name = AESSIV(remotekey.derive(secret, "names"))
        self._commit = AESSIV(remotekey.derive(secret, "commits"))
        map_path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(map_path))
        self.db.execute("CREATE TABLE IF NOT EXISTS m (plain TEXT NOT NULL, shadow TEXT NOT NULL, PRIMARY KEY (plain))")
        self.db.execute("CREATE INDEX IF NOT EXISTS m_shadow ON m (shadow)")
        self._pending: list[tuple[str, str]] = []
        self._cache_p: dict[str, pygit2.Oid] = {}  # this run's work: trusted without a lookup
        self._cache_s: dict[str, pygit2.Oid] = {}
        # new objects go to one pack each, not loose files; shadows are ciphertext: stored, not deflated
        self.w = gitref.ObjectWriter(repo, identity=IDENTITY, incompressible_blobs=True)
        self.w_open = gitref.ObjectWriter(repo)

    def flush(self) -> None:
        """Write the staged objects (one pack), then the map entries that name them."""
        self.w.flush()
        self.w_open.flush()
        if self._pending:
            self.db.executemany("INSERT OR REPLACE INTO m VALUES (?, ?)", self._pending)
            self.db.commit()
            self._pending = []

    # ------------------------------------------------------------ the map
    def _remember(self, plain: pygit2.Oid, shadow: pygit2.Oid) -> None:
        self._pending.append((str(plain), str(shadow)))
        self._cache_p[str(plain)] = shadow
        self._cache_s[str(shadow)] = plain

    def _lookup(self, cache: dict[str, pygit2.Oid], column: str, key: str, oid: pygit2.Oid) -> pygit2.Oid | None:
        got = cache.get(str(oid))
        if got is not None:
            return got
        row = self.db.execute(f"SELECT {column} FROM m WHERE {key} = ?", (str(oid),)).fetchone()
        got = pygit2.Oid(hex=row[0]) if row else None
        if got is None or got not in self.repo:  # the map outlived the object (a prune): do it again
            return None
        cache[str(oid)] = got
        return got

    def shadow_of(self, plain: pygit2.Oid) -> pygit2.Oid | None:
        return self._lookup(self._cache_p, "shadow", "plain", plain)

    def plain_of(self, shadow: pygit2.Oid) -> pygit2.Oid | None:
        return self._lookup(self._cache_s, "plain", "shadow", shadow)

    # ------------------------------------------------------------ names
    def ref_name(self, name: str) -> str:
        token = _b32(self._name.encrypt(name.encode(), [b"ref"]))
        return ENC_PREFIX + "/".join(token[i:i + 200] for i in range(0, len(token), 200))

    def open_ref_name(self, shadow: str) -> str:
        try:
            return self._name.decrypt(_unb32(shadow[len(ENC_PREFIX):].replace("/", "")), [b"ref"]).decode()
        except (InvalidTag, binascii.Error, ValueError, UnicodeDecodeError):
            raise CryptError(f"the remote's ref {shadow[:60]}... does not open with key {self.fingerprint}; "
                             "nothing was changed here", "check who writes to the remote") from None

    def marker(self) -> tuple[str, pygit2.Oid]:
        oid = self.w.commit(self.w.tree({}), [], f"opentraces encrypted remote\n\nKey: {self.fingerprint}\n", 0)
        return MARKER + self.fingerprint, oid

    # ------------------------------------------------------------ sealing
    def seal(self, oid: pygit2.Oid) -> pygit2.Oid:
        """The shadow of ``oid`` (and of everything it reaches that has none yet)."""
        done = self.shadow_of(oid)
        if done is not None:
            return done
        obj = self.repo[oid]
        if isinstance(obj, pygit2.Commit):
            for c in self._unmapped_commits(oid, self.shadow_of):
                self._seal_commit(c)
            return self.shadow_of(oid)
        return self._seal_tree(oid) if isinstance(obj, pygit2.Tree) else self._seal_blob(oid)

    def _unmapped_commits(self, tip: pygit2.Oid, known) -> list[pygit2.Oid]:
        """Commits reachable from ``tip`` that ``known`` has no answer for, parents first. The walk
        stops at known commits, so its cost follows what is new, not the length of the history."""
        order: list[pygit2.Oid] = []
        seen: set[str] = set()
        stack: list[tuple[pygit2.Oid, bool]] = [(tip, False)]
        while stack:
            oid, parents_done = stack.pop()
            if parents_done:
                order.append(oid)
                continue
            if str(oid) in seen or known(oid) is not None:
                continue
            seen.add(str(oid))
            stack.append((oid, True))
            stack.extend((p, False) for p in self.repo[oid].parent_ids)
        return order

    def _seal_blob(self, oid: pygit2.Oid) -> pygit2.Oid:
        done = self.shadow_of(oid)
        if done is not None:
            return done
        shadow = self.w.blob(self._obj.encrypt(self.repo[oid].data, [b"blob"]))
        self._remember(oid, shadow)
        return shadow

    def _seal_tree(self, oid: pygit2.Oid) -> pygit2.Oid:
        done = self.shadow_of(oid)
        if done is not None:
            return done
        rows = {}
        for e in self.repo[oid]:
            child = self._seal_tree(e.id) if e.filemode == pygit2.GIT_FILEMODE_TREE else self._seal_blob(e.id)
            rows[_b32(self._name.encrypt(e.name.encode(), [b"entry"]))] = (e.filemode, child)
        shadow = self.w.tree(rows)
        self._remember(oid, shadow)
        return shadow

    def _seal_commit(self, oid: pygit2.Oid) -> pygit2.Oid:
        c = self.repo[oid]
        tree = self._seal_tree(c.tree_id)
        parents = [self.shadow_of(p) for p in c.parent_ids]
        raw = self.repo.odb.read(oid)[1]
        sealed = base64.b64encode(self._commit.encrypt(raw, [b"commit"])).decode()
        body = "\n".join(sealed[i:i + 76] for i in range(0, len(sealed), 76))
        shadow = self.w.commit(tree, parents, _HEAD + body + "\n", 0)
        self._remember(oid, shadow)
        return shadow

    # ------------------------------------------------------------ opening
    def open(self, shadow: pygit2.Oid, ref: str) -> pygit2.Oid:
        """The plain object behind ``shadow`` (the tip of remote ref ``ref``), checked."""
        done = self.plain_of(shadow)
        if done is not None:
            return done
        try:
            obj = self.repo[shadow]
            if not isinstance(obj, pygit2.Commit):
                raise CryptError(f"the remote's {ref} does not point at a commit; nothing was changed here",
                                 "check who writes to the remote")
            for c in self._unmapped_commits(shadow, self.plain_of):
                self._open_commit(c, ref)
            return self.plain_of(shadow)
        except (InvalidTag, binascii.Error, ValueError, KeyError, UnicodeDecodeError) as exc:
            raise CryptError(f"the remote's {ref} holds an object that does not open with key {self.fingerprint} "
                             f"({type(exc).__name__}): it was altered or forged; nothing was changed here",
                             "check who writes to the remote") from None

    def _open_blob(self, shadow: pygit2.Oid) -> pygit2.Oid:
        done = self.plain_of(shadow)
        if done is not None:
            return done
        plain = self.w_open.blob(self._obj.decrypt(self.repo[shadow].data, [b"blob"]))
        self._remember(plain, shadow)
        return plain

    def _open_tree(self, shadow: pygit2.Oid) -> pygit2.Oid:
        done = self.plain_of(shadow)
        if done is not None:
            return done
        rows = {}
        for e in self.repo[shadow]:
            child = self._open_tree(e.id) if e.filemode == pygit2.GIT_FILEMODE_TREE else self._open_blob(e.id)
            rows[self._name.decrypt(_unb32(e.name), [b"entry"]).decode()] = (e.filemode, child)
        plain = self.w_open.tree(rows)
        self._remember(plain, shadow)
        return plain

    def _open_commit(self, shadow: pygit2.Oid, ref: str) -> pygit2.Oid:
        c = self.repo[shadow]
        msg = c.message
        if not msg.startswith(_HEAD):
            raise ValueError("not a sealed commit")
        raw = self._commit.decrypt(base64.b64decode("".join(msg[len(_HEAD):].split()), validate=True), [b"commit"])
        tree = self._open_tree(c.tree_id)
        parents = [self.plain_of(p) for p in c.parent_ids]
        head = raw.split(b"\n\n", 1)[0].split(b"\n")
        named_tree = [ln[5:].decode() for ln in head if ln.startswith(b"tree ")]
        named_parents = [ln[7:].decode() for ln in head if ln.startswith(b"parent ")]
        if named_tree != [str(tree)] or named_parents != [str(p) for p in parents]:
            raise CryptError(f"the remote's {ref} holds a commit whose sealed content names another tree or "
                             "other parents than the ones it was stored with: it was altered; nothing was changed here",
                             "check who writes to the remote")
        plain = self.w_open.raw(COMMIT, raw)
        self._remember(plain, shadow)
        return plain


@dataclass
class EncryptedTransport(Transport):
    """A Transport whose remote only ever sees shadows (see the module docstring)."""

    secret: bytes = b""
    mirror: Path | None = None  # the bucket's .git
    state_dir: Path | None = None
    _crypt: Crypt | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        return remotekey.fingerprint(self.secret)

    def env(self) -> dict[str, str]:
        """Git's own environment, told that shadows neither delta nor deflate (ciphertext): its pack
        building then only copies bytes."""
        env = super().env()
        n = int(env.get("GIT_CONFIG_COUNT", "0"))
        for i, (k, v) in enumerate((("pack.window", "0"), ("pack.compression", "0"), ("core.bigFileThreshold", "1"))):
            env[f"GIT_CONFIG_KEY_{n + i}"] = k
            env[f"GIT_CONFIG_VALUE_{n + i}"] = v
        env["GIT_CONFIG_COUNT"] = str(n + 3)
        return env

    def crypt(self, repo: pygit2.Repository | None = None) -> Crypt:
        if self._crypt is None:
            self._crypt = Crypt(repo if repo is not None else gitref.open_or_init_bare(self.mirror), self.secret,
                                Path(self.state_dir) / MAP_NAME)
        elif repo is not None:
            self._crypt.repo = repo  # write through the caller's handle: it sees the new objects at once
        return self._crypt

    def _check_key(self, raw: dict[str, pygit2.Oid]) -> None:
        keys = sorted(n[len(MARKER):] for n in raw if n.startswith(MARKER))
        if keys and self.fingerprint not in keys:
            raise ConfigError(f"the remote {self.url} is encrypted with key {', '.join(keys)}; this machine's key is "
                              f"{self.fingerprint}", "import the remote's key: 'opentraces key import FILE'")

    def ls_remote(self, patterns: list[str] | None = None) -> dict[str, pygit2.Oid]:
        raw = super().ls_remote([ENC_PREFIX + "*"])
        self._check_key(raw)
        crypt = self.crypt()
        out: dict[str, pygit2.Oid] = {}
        for cname, coid in raw.items():
            if cname.startswith(MARKER):
                continue
            name = crypt.open_ref_name(cname)
            if patterns and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                continue
            plain = crypt.plain_of(coid)
            if plain is None and coid in crypt.repo:
                plain = crypt.open(coid, name)
            out[name] = plain if plain is not None else coid  # not fetched yet: the shadow id stands in
        crypt.flush()
        return out

    def fetch(self, repo: pygit2.Repository, refspecs: list[str], progress=None) -> gitref.Transfer:
        """Fetch the shadows of ``src`` refs into a private namespace, open them all, and only then
        set each ``dst`` to its plain commit (a shadow that does not open changes no ref here)."""
        crypt = self.crypt(repo)
        pairs = [spec.lstrip("+").split(":", 1) for spec in refspecs]
        tail = {src: crypt.ref_name(src)[len(ENC_PREFIX):] for src, _dst in pairs}
        try:
            transfer = super().fetch(repo, [f"+{ENC_PREFIX}{tail[src]}:{STAGING_PREFIX}{tail[src]}" for src, _ in pairs],
                                     progress)
            opened = []
            for src, dst in pairs:
                coid = gitref.get_ref(repo, STAGING_PREFIX + tail[src])
                if coid is not None:
                    opened.append((src, dst, coid, crypt.open(coid, src)))
            crypt.flush()  # the opened objects are in the repository before any ref names them
            for _src, dst, _coid, plain in opened:
                gitref.update_ref(repo, dst, plain, None, force=True)  # only the caller's staging refs move
            return transfer
        finally:
            for name, oid in gitref.list_refs(repo, STAGING_PREFIX).items():
                gitref.delete_ref(repo, name, oid)

    def push(self, repo: pygit2.Repository, updates, progress=None, transfer=None) -> dict[str, gitref.RefStatus]:
        crypt = self.crypt(repo)
        marker, moid = crypt.marker()
        enc: list[tuple[str, pygit2.Oid, pygit2.Oid | None]] = [(marker, moid, None)]
        plain_name: dict[str, str] = {}
        for name, new, lease in updates:
            cname = crypt.ref_name(name)
            # a lease is a plain id, or a shadow id that stood in for a value never opened here
            enc.append((cname, crypt.seal(new), None if lease is None else crypt.shadow_of(lease) or lease))
            plain_name[cname] = name
        crypt.flush()
        statuses = super().push(repo, enc, progress=progress, transfer=transfer)
        out = {}
        for cname, new, _lease in enc:
            st = statuses.get(cname)
            if st is None or (cname == marker and st.ok):
                continue
            out[plain_name.get(cname, cname)] = st
            if st.ok:  # keep the pushed shadows reachable here too
                gitref.update_ref(repo, LOCAL_PREFIX + cname[len(ENC_PREFIX):], new, None, force=True)
        return out
