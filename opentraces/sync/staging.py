"""Fetching a remote's refs into a staging namespace and checking them before anything is used.

A pull never fetches into a live name: the remote's refs land under
``refs/opentraces-staging/v1/...`` (emptied before each pull and after it),
then every new batch is verified (file name, gzip, content hash, event ids,
writer, seq, the hash chain to the previous batch and to what this bucket
already holds). A remote that fails any check is refused and named; the
bucket is not touched. A hostile remote cannot choose where a file lands:
batch names and blob paths must match the bucket layout exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pygit2

import gitref

from .. import refnames
from ..batches import NAME_RE, Batch, BatchError, decode_batch
from ..errors import CorruptionError, RefusedError
from ..ids import check_component, check_trace_id
from ..gitmirror.trail import trailers

STAGING = refnames.STAGING_PREFIX
_BLOB_PATH = re.compile(r"^blobs/v1/(?P<project>[A-Za-z0-9][A-Za-z0-9._-]{0,199})/(?P<kind>raw|context)/"
                        r"(?P<hh>[0-9a-f]{2})/(?P<hex>[0-9a-f]{64})\.(?:blob|json\.gz)$")


def staged_name(name: str) -> str:
    return STAGING + name[len(refnames.PREFIX):] if name.startswith(refnames.PREFIX) else STAGING + "main"


def clear(repo: pygit2.Repository) -> None:
    for name, oid in gitref.list_refs(repo, STAGING).items():
        gitref.delete_ref(repo, name, oid)


def fetch(transport, repo: pygit2.Repository, names: list[str], progress=None) -> dict[str, pygit2.Oid]:
    """Fetch ``names`` into staging (emptied first); returns {remote name: staged oid}."""
    clear(repo)
    if not names:
        return {}
    transport.fetch(repo, [f"{n}:{staged_name(n)}" for n in names], progress=progress)
    out = {}
    for n in names:
        oid = gitref.get_ref(repo, staged_name(n))
        if oid is not None:
            out[n] = oid
    return out


@dataclass
class Incoming:
    batches: list[tuple[Batch, bytes]] = field(default_factory=list)  # (decoded, file bytes), chain order
    writers: dict[str, int] = field(default_factory=dict)  # writer -> new batches


def verify_events(repo: pygit2.Repository, staged: dict[str, pygit2.Oid], local_heads: dict[str, dict],
                  *, ignore_local_refs: bool = False) -> Incoming:
    """Check every batch the remote's events refs hold beyond ours; raise CorruptionError naming the first bad one.

    ``local_heads``: the bucket index's writers ({writer: {seq, head, name}}).
    ``ignore_local_refs``: judge the remote's chains from ``local_heads`` alone (adopting a
    re-filter: this bucket's events refs name the history being replaced).
    """
    inc = Incoming()
    for name, tip in sorted(staged.items()):
        if not name.startswith(refnames.EVENTS_PREFIX):
            continue
        writer = name[len(refnames.EVENTS_PREFIX):]
        local_ref = None if ignore_local_refs else gitref.get_ref(repo, name)
        if local_ref is not None and not gitref.is_ancestor(repo, local_ref, tip):
            if gitref.is_ancestor(repo, tip, local_ref):
                continue  # the remote is behind us for this writer: nothing new
            raise _bad(name, f"does not extend this bucket's chain of writer {writer}")
        commits = list(gitref.only_in(repo, tip, local_ref))[::-1]  # oldest first
        head = local_heads.get(writer)
        expect_seq = (head["seq"] + 1) if head else 1
        prev = head["head"] if head else None
        skipped = 0
        for c in commits:
            batch_name, data = _batch_of(repo, name, c)
            try:
                b = decode_batch(batch_name, data)
            except BatchError as exc:
                raise _bad(name, f"batch {batch_name}: {exc}") from None
            h = b.header
            if h.writer != writer:
                raise _bad(name, f"batch {batch_name} was written by {h.writer}, not {writer}")
            if head and h.seq <= head["seq"]:
                skipped += 1  # already here (the mirror was behind the files): checked by verify
                continue
            if h.seq != expect_seq:
                raise _bad(name, f"batch {batch_name} is number {h.seq}, expected {expect_seq}")
            if h.prev != prev:
                raise _bad(name, f"batch {batch_name} does not chain to batch {expect_seq - 1} of {writer}")
            for ev in b.events:  # ids become paths: a hostile remote must not name one outside the bucket
                try:
                    check_component(ev["project"], "project")
                    check_trace_id(ev["trace_id"])
                except RefusedError as exc:
                    raise _bad(name, f"batch {batch_name}: {exc}") from None
            inc.batches.append((b, data))
            expect_seq += 1
            prev = b.sha256
        if expect_seq - 1 - (head["seq"] if head else 0) > 0:
            inc.writers[writer] = expect_seq - 1 - (head["seq"] if head else 0)
    return inc


def _batch_of(repo: pygit2.Repository, ref: str, commit: pygit2.Commit) -> tuple[str, bytes]:
    try:
        tree = commit.peel(pygit2.Tree)
        sub = repo[tree["events"].id].peel(pygit2.Tree)
        sub = repo[sub["v1"].id].peel(pygit2.Tree)
        sub = repo[sub["batches"].id].peel(pygit2.Tree)
        entries = list(sub)
    except (KeyError, ValueError, AttributeError):
        raise _bad(ref, f"commit {str(commit.id)[:12]} holds no batch") from None
    if len(entries) != 1 or len(tree) != 1:
        raise _bad(ref, f"commit {str(commit.id)[:12]} holds more than one file")
    entry = entries[0]
    if not NAME_RE.match(entry.name):
        raise _bad(ref, f"commit {str(commit.id)[:12]} holds {entry.name!r}, not a batch file name")
    fields = trailers(commit.message)
    if fields.get("Batch") not in (None, entry.name):
        raise _bad(ref, f"commit {str(commit.id)[:12]} names batch {fields.get('Batch')} but holds {entry.name}")
    return entry.name, repo[entry.id].data


def blob_files(repo: pygit2.Repository, ref: str, tip: pygit2.Oid) -> dict[str, pygit2.Oid]:
    """{bucket path: git blob} of a blob ref's tree; refuses any path outside the blob layout."""
    out = {}
    for path, oid, mode in gitref.iter_tree(repo, tip):
        if not _BLOB_PATH.match(path) or mode not in (0o100644, 0o100755):
            raise _bad(ref, f"holds {path!r}, which is not a blob of the bucket layout")
        out[path] = oid
    return out


def _bad(ref: str, why: str) -> CorruptionError:
    return CorruptionError(f"the remote's {ref} is refused: {why}; the bucket is unchanged",
                           "check the remote with 'git fsck', or point the bucket at another remote")
