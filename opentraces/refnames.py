"""Every Git reference name opentraces writes, in one place (docs/GIT.md)."""

from __future__ import annotations

PREFIX = "refs/opentraces/v1/"
BUCKET = PREFIX + "bucket"          # the bucket without blobs, a chain (merges after a pull)
MAIN = "refs/heads/main"            # the same commit as BUCKET, so `git clone` checks it out
HEAD_TARGET = MAIN
EVENTS_PREFIX = PREFIX + "events/"  # canonical: one append-only chain per writer
TRAILS_PREFIX = PREFIX + "trails/"  # derived: one per project
BLOBS_PREFIX = PREFIX + "blobs/"    # derived: one per trace, grows with the session
MANAGED = (EVENTS_PREFIX, TRAILS_PREFIX, BLOBS_PREFIX, BUCKET)

# a pull fetches the remote's refs here first (emptied before and after), never into live names
STAGING_PREFIX = "refs/opentraces-staging/v1/"

# in a project clone (bucket replay)
LOCAL_TRAIL = "refs/opentraces/local/events/v1"
NOTES = "refs/notes/opentraces"
BACKUP_PREFIX = "refs/opentraces/local/backup/"


def events_ref(writer: str) -> str:
    return EVENTS_PREFIX + writer


def trail_ref(project: str) -> str:
    return TRAILS_PREFIX + project


def blobs_ref(project: str, trace_id: str) -> str:
    return f"{BLOBS_PREFIX}{project}/{trace_id}"


def kind_of(name: str) -> str | None:
    """``events``, ``trails``, ``blobs``, ``bucket`` or ``main`` for a managed name, else None."""
    if name == BUCKET:
        return "bucket"
    if name == MAIN:
        return "main"
    for kind, prefix in (("events", EVENTS_PREFIX), ("trails", TRAILS_PREFIX), ("blobs", BLOBS_PREFIX)):
        if name.startswith(prefix):
            return kind
    return None
