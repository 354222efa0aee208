"""The one way to write a bucket: ``with writing(bucket) as w: w.commit(events, blobs)``.

Under the writer lock, in this order:

1. catch-up: project committed batches the projections do not include yet
   (a crash cut a previous writer short), or repair what is inconsistent;
2. ``before_commit`` hooks: see (and may refuse) the events and blobs about
   to be committed: the place for redaction;
3. commit: blobs (fsynced), then the batch file (the commit point);
4. projection: the touched trace folders, their manifest shards, the index,
   ``manifest.json`` last;
5. the Git mirror (a failure leaves it behind; status says so);
6. ``after_commit`` hooks: the place where sync starts.

Capture, anchors, repair and pull all write through here.
"""

from __future__ import annotations

import errno
import os
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import orjson

from . import layout, statefiles
from . import signing
from .batches import Batch, BatchError, BatchHeader, encode_batch, read_batch, read_header, write_batch
from .blobs import PendingBlobs
from .bucket import Bucket
from .errors import CorruptionError, StorageError
from .fsio import OutsideError, atomic_write, check_inside, is_tmp_name, write_if_changed, write_many_new
from .projections import index as index_mod
from .projections import manifest as manifest_mod
from .projections.tracedir import write_trace
from .projects import Names


_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS)


@dataclass
class CommitResult:
    batch: str | None = None
    events: int = 0
    blobs_written: int = 0
    traces: list[tuple[str, str]] = field(default_factory=list)


class Writer:
    """A bucket held for writing (the lock is held for this object's lifetime)."""

    def __init__(self, bucket: Bucket):
        self.bucket = bucket
        self.orphans = False  # trace folders may hold events whose batch was lost (see rewind_lost_head)
        self.before_commit: list[Callable[[list[dict[str, Any]], PendingBlobs], None]] = []
        self.after_commit: list[Callable[[CommitResult], None]] = []

    @property
    def root(self):
        return self.bucket.root

    # ------------------------------------------------------------- commit
    def commit(self, events: list[dict[str, Any]], blobs: PendingBlobs | None = None) -> CommitResult:
        """Append ``events`` (and the blobs they cite) as one batch, then project it."""
        blobs = blobs if blobs is not None else PendingBlobs()
        for hook in self.before_commit:
            hook(events, blobs)
        result = CommitResult()
        try:
            if blobs.items:
                result.blobs_written = write_many_new([(check_inside(self.root, self.root / rel), data)
                                                       for rel, data in blobs.items.items()])
            if not events:
                return result
            return self._commit_batch(events, result)
        except OutsideError as exc:
            raise CorruptionError(str(exc), "replace the symbolic link with the folder it stands for") from None
        except OSError as exc:
            if exc.errno not in _STORAGE_ERRNOS:
                raise
            if result.batch is None:
                raise StorageError(f"the disk is full or failing ({exc.strerror}); nothing of this write was committed",
                                   "free space, then run the command again") from None
            raise StorageError(f"the disk is full or failing ({exc.strerror}) after batch {result.batch} was committed; "
                               "its events are safe and the next write completes their projections",
                               "free space, then run 'opentraces bucket repair'") from None

    def _commit_batch(self, events: list[dict[str, Any]], result: CommitResult) -> CommitResult:
        index = self.bucket.index() or index_mod.empty()
        writer = self.bucket.writer_id()
        head = index["writers"].get(writer)
        seq = head["seq"] + 1 if head else 1
        prev = head["head"] if head else None
        signer = signing.writer_key(self.bucket.state_dir, writer)
        name, digest, data = encode_batch(writer, seq, prev, events, signer)
        write_batch(check_inside(self.root, self.root / layout.BATCHES), name, data)
        result.batch = name  # committed: from here on, a failure loses nothing
        self.bucket.write_state(statefiles.LAST_BATCH, {"name": name})
        batch = Batch(name, BatchHeader(writer, seq, prev, len(events), signing.key_id(signer.public_key())),
                      digest, events)
        result.events = len(events)
        result.traces = self.project([batch], index)
        for hook in self.after_commit:
            hook(result)
        return result

    # ----------------------------------------------------------- catch-up
    def catch_up(self) -> int:
        """Project committed batches that the projections do not include yet."""
        b = self.bucket
        index = b.index()
        names = b.batch_names()
        head = None
        try:
            head = b.manifest_head()
        except CorruptionError:
            pass
        if index is None or (names and not manifest_mod.is_current(head)):
            if not names and not (self.root / layout.MANIFEST).exists():
                return 0
            self.repair()
            return len(names)
        if len(names) < index["batch_count"]:  # batches gone from the folder: restore, or rewind our chain
            self.rewind_lost_head(names)
            index = b.index() or index_mod.empty()
        if len(names) == index["batch_count"]:
            if index["batch_count"] and not self._manifest_matches(head, index) and not self.orphans:
                self.repair()  # a crash between index.json and manifest.json, or a deleted manifest
            elif b.mirror and index["batch_count"]:
                self._catch_up_mirror(head)
            return 0
        missing = self._unprojected(names, index)
        if not missing:
            return 0
        batches = []
        for n in missing:
            try:
                batches.append(b.read_batch(n))
            except (BatchError, OSError) as exc:
                raise CorruptionError(f"batch {n} is damaged ({exc})", "run 'opentraces bucket verify --full'") from None
        self.project(batches, index)
        return len(missing)

    def rewind_lost_head(self, names: list[str]) -> list[str]:
        """When this writer's last batch is gone from the folder and the mirror has no copy, take the
        chain back to the batches on disk, so the next batch chains to one that exists; returns the lost
        names. Their events are not dropped: trace folders keep them until the session is captured again
        (``orphans`` tells capture not to count them as stored), and repair refuses to re-project over them."""
        from .maintenance.restore import restore_batches

        index = self.bucket.index()
        if index is None:
            return []
        on_disk = set(names)
        lost = sorted(w["name"] for w in index["writers"].values() if w.get("name") and w["name"] not in on_disk)
        if not lost:
            return []
        restored, lost = restore_batches(self.bucket, lost)
        if not lost:
            return []
        batches = []
        for n in self.bucket.batch_names():
            try:
                batches.append(read_batch(self.root / layout.BATCHES / n, check_events=False))
            except (BatchError, OSError):
                continue  # damaged: verify names it; the index counts what can be read
        rebuilt = index_mod.build_index(batches)
        atomic_write(self.root / layout.INDEX, index_mod.encode(rebuilt), sync=False)
        self.orphans = True
        return lost

    def _unprojected(self, names: list[str], index: dict[str, Any]) -> list[str]:
        out = []
        for n in names:
            try:
                h = read_header(self.root / layout.BATCHES / n)
            except BatchError as exc:
                raise CorruptionError(f"batch {n} is damaged ({exc})", "run 'opentraces bucket verify --full'") from None
            if not index_mod.projected(index, h.writer, h.seq):
                out.append(n)
        return out

    def _manifest_matches(self, head: dict[str, Any] | None, index: dict[str, Any]) -> bool:
        return bool(head) and (head.get("summary") or {}).get("batches") == index_mod.summary(index)

    def _catch_up_mirror(self, head: dict[str, Any] | None) -> None:
        """Rebuild the Git mirror if a crash left it behind the manifest."""
        from .gitmirror.state import recorded_state

        if recorded_state(self.bucket, (head or {}).get("digest"))["state"] != "current":
            self.update_mirror([], [], full=True)

    # --------------------------------------------------------- projection
    def project(self, batches: list[Batch], index: dict[str, Any]) -> list[tuple[str, str]]:
        """Fold ``batches`` into the trace folders, manifest shards, index and manifest."""
        b = self.bucket
        head = b.manifest_head() or {}
        names = Names(head.get("names"))
        renamed = names.observe(ev for bt in batches for ev in bt.events)
        if renamed:  # an earlier session of a known repository named it differently: move its traces
            self.repair()
            return sorted({(names.canonical(ev["project"]), ev["trace_id"]) for bt in batches for ev in bt.events})
        by_trace: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for bt in batches:
            for ev in bt.events:
                by_trace[(names.canonical(ev["project"]), ev["trace_id"])].append(ev)
        rows = {}
        trail_first: dict[tuple[str, str], str | None] = {}  # for the mirror: where each trace sat in its trail
        for (project, trace_id), evs in sorted(by_trace.items()):
            merged = {e["event_id"]: e for e in b.trace_events(project, trace_id)}
            fresh = {e["event_id"] for e in evs}
            trail_first[(project, trace_id)] = min(
                (e["time"] for e in merged.values() if e["kind"].startswith("trail.") and e["event_id"] not in fresh),
                default=None)
            for e in evs:
                merged.setdefault(e["event_id"], e)
            _, trace_json = write_trace(self.root, project, trace_id, list(merged.values()))
            rows[(project, trace_id)] = manifest_mod.trace_row(
                project, trace_id, orjson.loads(trace_json), trace_json, len(merged))
        new_index = index_mod.add(index, batches)
        new_head = self._write_rows(head, rows, new_index, names)
        atomic_write(self.root / layout.INDEX, index_mod.encode(new_index), sync=False)
        write_if_changed(self.root / layout.MANIFEST, manifest_mod.encode(new_head), sync=False)  # last
        self.update_mirror(batches, sorted(by_trace), names=names, trail_first=trail_first)
        return sorted(by_trace)

    def _write_rows(self, head: dict[str, Any], rows: dict[tuple[str, str], dict[str, Any]],
                    index: dict[str, Any], names: Names) -> dict[str, Any]:
        """Rewrite the shards of ``rows``; returns the manifest.json document to write last."""
        by_shard: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for (_p, trace_id), row in rows.items():
            by_shard[manifest_mod.shard_of(trace_id)][trace_id] = row
        shards = dict(head.get("shards") or {})
        removed, added = [], []
        for hh, new_rows in sorted(by_shard.items()):
            old = manifest_mod.read_shard(self.root, hh) if hh in shards else []
            keep = [r for r in old if r["trace_id"] not in new_rows]
            removed.extend(r for r in old if r["trace_id"] in new_rows)
            added.extend(new_rows.values())
            all_rows = keep + list(new_rows.values())
            write_if_changed(self.root / manifest_mod.shard_path(hh), manifest_mod.encode_shard(all_rows), sync=False)
            shards[hh] = manifest_mod.shard_digest(all_rows)
        summary = manifest_mod.adjust_summary(head.get("summary"), removed, added)
        return manifest_mod.build_head(shards, summary, index_mod.summary(index), names.as_json())

    def write_full_manifest(self, rows: list[dict[str, Any]], index: dict[str, Any], names: Names) -> bool:
        """Every shard and manifest.json from the full set of rows (repair); stale shards removed."""
        head, files = manifest_mod.build_manifest(rows, index_mod.summary(index), names.as_json())
        written = 0
        for rel, data in sorted(files.items()):
            written += write_if_changed(self.root / rel, data, sync=False)
        shard_dir = self.root / layout.MANIFEST_SHARDS
        if shard_dir.is_dir():
            for p in sorted(shard_dir.iterdir()):
                if f"{layout.MANIFEST_SHARDS}/{p.name}" not in files and p.suffix == ".json":
                    p.unlink()
                    written += 1
        written += write_if_changed(self.root / layout.MANIFEST, manifest_mod.encode(head), sync=False)
        return bool(written)

    # ------------------------------------------------------------- mirror
    def update_mirror(self, batches: list[Batch], traces: list[tuple[str, str]], *, full: bool = False,
                      scan=None, names: Names | None = None,
                      trail_first: dict[tuple[str, str], str | None] | None = None) -> dict | None:
        """Refresh the Git mirror; a failure leaves it behind (status says so), never the bucket."""
        if not self.bucket.mirror:
            return None
        from .gitmirror.mirror import update_mirror

        try:
            result = update_mirror(self.bucket, batches, traces, full=full, scan=scan, names=names,
                                   trail_first=trail_first)
        except Exception as exc:  # the events are committed; the mirror catches up next time
            try:
                self.bucket.write_state(statefiles.MIRROR_ERROR, {"error": f"{type(exc).__name__}: {exc}"})
            except OSError:  # a full disk: status still sees the mirror behind by its digest
                pass
            return {"error": str(exc)}
        (self.bucket.state_dir / statefiles.MIRROR_ERROR).unlink(missing_ok=True)
        return result

    # ------------------------------------------------------------- repair
    def repair(self, progress=None, *, check_blobs: bool = False) -> dict[str, Any]:
        """Re-project everything. ``check_blobs`` (``bucket repair``) also re-hashes every blob file
        and restores damaged ones from the mirror; the automatic repairs of catch-up skip that cost."""
        from .maintenance.repair import rebuild

        return rebuild(self, "all", progress, check_blobs=check_blobs)


@contextmanager
def writing(bucket: Bucket, timeout: float = 30.0, *, catch_up: bool = True) -> Iterator[Writer]:
    """Hold ``bucket``'s writer lock; yields a Writer after catching up.

    A marker (``.state/writing``) lives while the lock is held; finding it
    on entry means the previous writer died (kill -9, power loss), so the
    temp files it left (``.*.tmp`` anywhere, half-written packs in ``.git``)
    are removed first: under the lock no other writer can own them.
    """
    bucket.check()
    with bucket.lock(timeout):
        marker = bucket.state_dir / statefiles.WRITING
        if marker.exists():
            sweep_temp_files(bucket)
        else:
            sweep_pack_temps(bucket)
        try:
            marker.touch()
        except OSError:
            pass
        try:
            w = Writer(bucket)
            if catch_up:
                w.catch_up()
            yield w
        except Exception:  # an error is not a crash: its own cleanup ran
            marker.unlink(missing_ok=True)
            raise
        # an interrupt (the hook's alarm, Ctrl-C) may stop a write anywhere: like a dead process,
        # it leaves the marker, and the next writer sweeps what was half written
        marker.unlink(missing_ok=True)


_PACK_TEMPS = (".tmp-pack-", "tmp_")  # ours (gitref's pack writer), git's (repack, index-pack)


def pack_temp_files(bucket: Bucket) -> list[str]:
    """Half-written packs in the mirror, relative to the bucket; a listdir, cheap."""
    try:
        names = os.listdir(bucket.root / layout.GIT / "objects" / "pack")
    except OSError:
        return []
    return sorted(f"{layout.GIT}/objects/pack/{n}" for n in names if n.startswith(_PACK_TEMPS))


def temp_files(bucket: Bucket) -> list[str]:
    """Every temp file an interrupted write can leave (``.*.tmp`` anywhere outside ``.git``, half-written
    packs inside it), relative to the bucket: what the sweep removes, prune deletes and verify names."""
    out = pack_temp_files(bucket)
    for dirpath, dirs, files in os.walk(bucket.root):
        if dirpath == str(bucket.root):
            dirs[:] = [d for d in dirs if d != layout.GIT]
        out += [os.path.relpath(os.path.join(dirpath, f), bucket.root) for f in files if is_tmp_name(f)]
    return sorted(out)


def _unlink_all(bucket: Bucket, rels: list[str]) -> list[str]:
    gone = []
    for rel in rels:
        try:
            os.unlink(bucket.root / rel)
            gone.append(rel)
        except OSError:
            pass
    return gone


def sweep_pack_temps(bucket: Bucket) -> list[str]:
    return _unlink_all(bucket, pack_temp_files(bucket))


def sweep_temp_files(bucket: Bucket) -> list[str]:
    """Every temp file a dead writer left (the caller holds the lock), and Git lock files
    (``<ref>.lock``, ``packed-refs.lock``) that would wedge every later update."""
    gitdir = bucket.root / layout.GIT
    locks = [str(p.relative_to(bucket.root)) for p in list(gitdir.glob("*.lock")) + list((gitdir / "refs").rglob("*.lock"))] \
        if gitdir.is_dir() else []
    return _unlink_all(bucket, temp_files(bucket) + locks)
