"""Where things live inside a bucket (DESIGN.md §2), as relative paths."""

from __future__ import annotations

from .ids import check_component, check_trace_id

TRACES = "traces/v1"
BLOBS = "blobs/v1"
EVENTS = "events/v1"
BATCHES = "events/v1/batches"
TRUST = f"{EVENTS}/trust"  # writer key endorsements (opentraces.trust); travel with the bucket
INDEX = "events/v1/index.json"
MANIFEST = "manifest.json"
MANIFEST_SHARDS = "manifest"  # manifest/<hh>.json: the rows, by trace id prefix
README = "README.md"  # in the Git mirror's bucket tree only
STATE = ".state"  # local, never synced: writer id, lock, capture cursors, logs
GIT = ".git"

TRAIL = "trail.jsonl.gz"
CONTEXT = "context.jsonl.gz"
SOURCES = "sources.jsonl.gz"
TRACE_JSON = "trace.json"
HISTORY = "trace_history"
COMPANIONS = {"trace": TRAIL, "trail": TRAIL, "security": TRAIL, "context": CONTEXT, "source": SOURCES}


def trace_dir(project: str, trace_id: str) -> str:
    check_component(project, "project")
    check_trace_id(trace_id)
    return f"{TRACES}/{project}/{trace_id}"


def companion_for(kind: str) -> str:
    return COMPANIONS[kind.split(".", 1)[0]]
