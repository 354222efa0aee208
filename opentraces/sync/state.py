"""What this bucket last saw of its remote (``.state/remote.json``, local, never synced).

Written by pull and push: the remote's URL and its refs' values then. Lets
``verify`` tell a blob that is on the remote and not fetched yet (lazy) from
one that is lost, and lets ``status`` say how old its knowledge is.
"""

from __future__ import annotations

from typing import Any

import pygit2

from .. import refnames, statefiles
from ..bucket import Bucket


def record_remote(bucket: Bucket, url: str, refs: dict[str, pygit2.Oid]) -> None:
    blobs = sorted(n[len(refnames.BLOBS_PREFIX):] for n in refs if refnames.kind_of(n) == "blobs")
    bucket.write_state(statefiles.REMOTE, {"url": url, "blob_refs": blobs,
                                           "refs": {n: str(o) for n, o in sorted(refs.items())}})


def remote_blob_traces(bucket: Bucket) -> set[str]:
    """Trace ids whose blobs the remote held when last seen."""
    doc: Any = bucket.read_state(statefiles.REMOTE)
    if not isinstance(doc, dict):
        return set()
    return {name.rsplit("/", 1)[-1] for name in doc.get("blob_refs") or []}
