"""What the mirror was last brought up to, from local records (no Git access).

``bucket status`` reads this so it needs neither pygit2 nor the repository;
``verify --full`` checks the refs themselves.
"""

from __future__ import annotations

from typing import Any

from .. import layout, statefiles
from ..bucket import Bucket

MIRROR_STATE = statefiles.MIRROR  # {bucket_commit, digest}


def recorded_state(bucket: Bucket, digest: str | None) -> dict[str, Any]:
    if not (bucket.root / layout.GIT).exists():
        return {"state": "absent"}
    err = bucket.read_state(statefiles.MIRROR_ERROR)
    if isinstance(err, dict):
        return {"state": "behind", "error": err.get("error")}
    rec = bucket.read_state(MIRROR_STATE)
    if not isinstance(rec, dict):  # an older mirror: ask Git
        from .mirror import mirror_state

        return mirror_state(bucket, digest)
    return {"state": "current" if rec.get("digest") == digest else "behind", "commit": rec.get("bucket_commit")}
