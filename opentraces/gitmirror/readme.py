"""The README at the root of the bucket tree (what `git clone` of a pushed bucket shows)."""

from __future__ import annotations

README = """\
# opentraces bucket

This repository is an opentraces bucket: the evidence AI coding agents left
behind (what they did, what they changed, what the model saw), captured by
`opentraces` and mirrored into Git. This branch (`main`, the same commit as
`refs/opentraces/v1/bucket`) holds the bucket without its large blobs:

    manifest.json              digest, summary and project names
    manifest/<hh>.json         one row per trace (hh = first two hex of the trace id)
    events/v1/batches/         the canonical event log (gzip JSONL, one file per batch)
    events/v1/index.json       the writers' batch heads
    traces/v1/<project>/<trace>/
        trace.json             the TraceRecord (opentraces-schema)
        trace_history/         one unified diff per patch (git apply at the repo root)
        trail.jsonl.gz context.jsonl.gz sources.jsonl.gz

Other refs (custom refs are not fetched by `git clone`; name them):

    refs/opentraces/v1/events/<writer>          each writer's batches, one commit per batch
    refs/opentraces/v1/trails/<project>         a project's trail: what changed, commit by commit
    refs/opentraces/v1/blobs/<project>/<trace>  one trace's blobs (context, raw session bytes)

Read it with plain git:

    git log --oneline                               # the bucket's history
    git show HEAD:manifest.json                     # the summary
    git ls-remote origin 'refs/opentraces/*'        # every ref
    git fetch origin 'refs/opentraces/v1/trails/<project>:refs/opentraces/v1/trails/<project>'
    git log --format='%h %ad %s' refs/opentraces/v1/trails/<project>

With opentraces: `opentraces bucket remote pull`, `opentraces trace list`,
`opentraces bucket replay --repo <clone of the project>`.
"""


def readme_bytes() -> bytes:
    return README.encode()
