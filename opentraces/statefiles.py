"""Names of the files in a bucket's ``.state/`` folder: local, never synced (docs/FORMATS.md)."""

from __future__ import annotations

WRITER = "writer.json"              # this copy's writer id (re-minted when the bucket is copied)
LOCK = "lock"                       # the writer lock (flock)
WRITING = "writing"                 # present while a writer holds the lock (found on entry: it died)
LAST_BATCH = "last-batch.json"      # the last batch this writer committed
CURSORS = "capture-cursors.json"    # per session file: size, mtime, project, trace
REPOS = "project-repos.json"        # project -> repository folder on this machine
ANCHORS = "anchor-state.json"       # per trace: commit tips already searched
MIRROR = "mirror.json"              # what the Git mirror was last brought up to
MIRROR_ERROR = "mirror-error.json"  # why the last mirror update failed
REPACK = "mirror-repack.json"       # pack bytes after the mirror was last pruned
REMOTE = "remote.json"              # the remote's refs when last pulled or pushed
TRUST_ROOTS = "trust-roots.json"    # the root keys this bucket trusts (opentraces.trust)

ALL = (WRITER, LOCK, WRITING, LAST_BATCH, CURSORS, REPOS, ANCHORS, MIRROR, MIRROR_ERROR, REPACK, REMOTE, TRUST_ROOTS)
