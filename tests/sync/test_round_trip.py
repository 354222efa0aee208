"""Round trip over real servers (issue #8): A captures and pushes; B, a fresh home, logs in,
sets up, pulls and reads everything without A; plain git agrees with what landed."""

from __future__ import annotations

import subprocess

import orjson

from syncrig import Machine, fsck_ok, git, make_project, remote_refs, session
from bucketrig import FIXTURES, REAL_CLAUDE, tree_digest


def test_round_trip(any_remote, tmp_path):
    r = any_remote
    project = make_project(tmp_path)
    a, b = Machine(tmp_path, "a"), Machine(tmp_path, "b")
    a.json("capture", "claude-code", REAL_CLAUDE, "--project", project)
    a.json("capture", "claude-code", FIXTURES / "claude")
    a.json("capture", "codex", FIXTURES / "codex")
    a.json("capture", "pi", FIXTURES / "pi")
    a.connect(r)
    pushed = a.json("bucket", "remote", "push")["push"]
    assert pushed["state"] == "pushed" and pushed["sent"]["objects"] > 0
    assert a.json("bucket", "remote", "status")["remote_status"]["state"] == "in_sync"
    want = a.trace_ids()

    b.connect(r)
    pulled = b.json("bucket", "remote", "pull")["pull"]
    assert pulled["state"] == "pulled" and set(pulled["traces"]) == want
    assert b.trace_ids() == want
    assert not (b.bucket / "blobs").exists()  # lazy: no context or raw blob fetched
    real = next(t for t in want if t.startswith("39681675"))
    got = b.json("trace", "get", real)["trace"]
    assert got["trace_id"] == real and got["session_id"] == a.json("trace", "get", real)["trace"]["session_id"]
    assert not (b.bucket / "blobs").exists()
    offline = b.run("ctx", real, "--offline", expect=4)
    assert "prefetch" in offline.stderr and len(offline.stderr.strip().splitlines()) == 1
    ctx_b = b.json("ctx", real)["context"]  # fetches this trace's blobs, and only them
    assert ctx_b == a.json("ctx", real)["context"]
    fetched = {p.parts[-4] for p in (b.bucket / "blobs").rglob("*") if p.is_file()}
    assert fetched  # only the trace's own blobs came
    blob_refs_b = [n for n in b.refs() if n.startswith("refs/opentraces/v1/blobs/")]
    assert [n.rsplit("/", 1)[1] for n in blob_refs_b] == [real]

    clone_a, clone_b = tmp_path / "clone-a", tmp_path / "clone-b"
    git("clone", "-q", str(project), str(clone_a))
    git("clone", "-q", str(project), str(clone_b))
    ra = a.json("bucket", "replay", "--repo", clone_a)["replay"]
    rb = b.json("bucket", "replay", "--repo", clone_b)["replay"]
    assert ra["head"] == rb["head"] and ra["notes"] == rb["notes"]

    for t in sorted(want):
        b.json("bucket", "prefetch", t)
    v = b.json("bucket", "verify", "--full")["verify"]
    assert v["ok"] and v["lazy_blob_citations"] == 0, v["problems"][:5]
    assert b.refs() == {k: v for k, v in a.refs().items()}  # every ref, same ids

    # plain git agrees
    listed = remote_refs(r)
    assert {k: v for k, v in listed.items()} == {k: v for k, v in a.refs().items()}
    mirror = tmp_path / "mirror.git"
    subprocess.run(["git", "clone", "-q", "--mirror", r.url, str(mirror)], check=True, env=r.git_env())
    fsck_ok(mirror)
    slug = ra["project"]
    env = r.git_env()
    done = subprocess.run(["git", "-C", str(clone_a), "fetch", r.url,
                           f"+refs/opentraces/v1/trails/{slug}:refs/opentraces/remote/trails/{slug}"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert git("rev-parse", f"refs/opentraces/remote/trails/{slug}", cwd=clone_a).stdout.strip() == ra["head"]

    # status and diff are reads: not one byte under the bucket changes (its .git included)
    new = b.json("capture", "claude-code", session(tmp_path / "s" / "late.jsonl", 77, 4))["capture"]
    [new_trace] = [c["trace_id"] for c in new["captured"]]
    before = tree_digest(b.bucket)
    st = b.json("bucket", "remote", "status")["remote_status"]
    d = b.json("bucket", "remote", "diff")["remote_diff"]
    assert tree_digest(b.bucket) == before
    assert st["state"] == "local_ahead"
    assert d["traces"] == {"local_only": [new_trace], "remote_only": []}
    assert len(d["batches"]["local_only"]) == 1 and d["batches"]["remote_only"] == []
    assert [k.rsplit("/", 1)[1] for k in d["blob_sets"]["local_only"]] == [new_trace]
    assert a.json("bucket", "remote", "diff")["remote_diff"]["traces"] == {"local_only": [], "remote_only": []}
