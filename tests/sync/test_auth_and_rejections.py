"""Credentials and refusals (issue #8): a wrong token is `unauthorized` (exit 3) and the token is
written nowhere; a server hook that rejects one ref is named (exit 3) and status does not say in_sync;
a remote whose batches do not verify is refused and the bucket is left unchanged."""

from __future__ import annotations

import gzip
import os
import stat
import subprocess
from pathlib import Path

from syncrig import Machine, make_project, session
from bucketrig import REAL_CLAUDE, tree_digest


def _files_containing(root: Path, needle: bytes) -> list[str]:
    """Every file under ``root`` holding ``needle``, gzip files decompressed too."""
    hits = []
    for p in root.rglob("*"):
        if not p.is_file():
            continue
        data = p.read_bytes()
        if data[:2] == b"\x1f\x8b":
            try:
                data += gzip.decompress(data)
            except (OSError, EOFError):
                pass
        if needle in data:
            hits.append(str(p))
    return hits


def test_wrong_token_is_unauthorized_and_never_written(http_remote, tmp_path):
    r = http_remote
    a = Machine(tmp_path, "a")
    a.json("capture", "claude-code", REAL_CLAUDE)
    wrong = "wrong-" + os.urandom(8).hex()
    res = a.run("auth", "login", "--token", wrong, "--username", "alice", "--remote", r.url, "--json", expect=3)
    assert "refused the credentials" in res.stdout and wrong not in res.stdout + res.stderr
    assert not (a.ot_home / "credentials.json").exists()  # refused: nothing saved
    # the right token is accepted and stored 0600; config holds the URL and no secret
    a.json("auth", "login", "--token", r.token, "--username", "alice", "--remote", r.url)
    cred = a.ot_home / "credentials.json"
    assert stat.S_IMODE(cred.stat().st_mode) == 0o600
    a.json("setup", "bucket", "--remote", r.url, "--policy", "off")
    assert stat.S_IMODE((a.ot_home / "config.json").stat().st_mode) == 0o600
    assert r.token.encode() not in (a.ot_home / "config.json").read_bytes()
    st = a.run("auth", "status", "--json", expect=0)
    assert r.token not in st.stdout and '"token":"set"' in st.stdout
    a.json("bucket", "remote", "push")
    # a CI token in the environment wins, and a wrong one says unauthorized
    env = dict(a.env, OPENTRACES_TOKEN=wrong, OPENTRACES_USERNAME="alice")
    for cmd in (("bucket", "remote", "status"), ("bucket", "remote", "push"), ("bucket", "remote", "pull")):
        done = a.run(*cmd, "--json", env=env, expect=3)
        assert "unauthorized" in done.stdout or "refused the credentials" in done.stdout
        assert wrong not in done.stdout + done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    # nowhere on disk: home (credentials excepted, it holds the right token), bucket, its .git
    assert _files_containing(a.home, wrong.encode()) == []
    assert [h for h in _files_containing(a.home, r.token.encode()) if not h.endswith("credentials.json")] == []
    assert wrong not in (r.log.read_text() if r.log else "")


def test_a_hook_that_rejects_one_ref_is_named(daemon_remote, tmp_path):
    r = daemon_remote
    hook = r.repo / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nwhile read old new ref; do\n  case \"$ref\" in refs/opentraces/v1/trails/*)\n"
                    "    echo \"trails are frozen on this server\" >&2; exit 1;;\n  esac\ndone\nexit 0\n")
    hook.chmod(0o755)
    a = Machine(tmp_path, "a")
    a.json("capture", "claude-code", REAL_CLAUDE, "--project", make_project(tmp_path))
    a.connect(r)
    done = a.run("bucket", "remote", "push", "--json", expect=3)
    assert "refs/opentraces/v1/trails/" in done.stdout and "frozen" in done.stdout
    assert len(done.stderr.strip().splitlines()) == 1 and "refs/opentraces/v1/trails/" in done.stderr
    st = a.json("bucket", "remote", "status")["remote_status"]
    assert st["state"] != "in_sync" and any("/trails/" in n for n in st["local_ahead_refs"])
    # what landed before the refused stage is consistent: blobs and events, no bucket ref yet
    landed = subprocess.run(["git", "--git-dir", str(r.repo), "for-each-ref", "--format=%(refname)"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert any("/events/" in n for n in landed) and "refs/opentraces/v1/bucket" not in landed
    hook.unlink()
    a.json("bucket", "remote", "push")
    assert a.json("bucket", "remote", "status")["remote_status"]["state"] == "in_sync"


def test_a_remote_with_a_bad_batch_is_refused_and_the_bucket_unchanged(bare_remote, tmp_path):
    r = bare_remote
    a, b = Machine(tmp_path, "a"), Machine(tmp_path, "b")
    a.json("capture", "claude-code", session(tmp_path / "s" / "1.jsonl", 1, 10))
    a.connect(r)
    a.json("bucket", "remote", "push")
    b.json("capture", "claude-code", session(tmp_path / "s" / "2.jsonl", 2, 11))
    b.connect(r)
    # forge: a commit on A's events ref whose batch file is damaged (one flipped byte), pushed by plain git
    [events_ref] = [n for n in a.refs() if "/events/" in n]
    work = tmp_path / "forge"
    subprocess.run(["git", "clone", "-q", "--bare", str(r.repo), str(work)], check=True)
    subprocess.run(["git", "--git-dir", str(work), "fetch", "-q", str(r.repo), f"{events_ref}:{events_ref}"], check=True)
    tip = subprocess.run(["git", "--git-dir", str(work), "rev-parse", events_ref], capture_output=True, text=True).stdout.strip()
    listing = subprocess.run(["git", "--git-dir", str(work), "ls-tree", "-r", tip], capture_output=True, text=True).stdout
    mode, _t, blob, path = listing.split(None, 3)
    data = bytearray(subprocess.run(["git", "--git-dir", str(work), "cat-file", "blob", blob], capture_output=True).stdout)
    data[len(data) // 2] ^= 0xFF
    name = path.strip().rsplit("/", 1)[1].replace("000000000001", "000000000002")
    bad = subprocess.run(["git", "--git-dir", str(work), "hash-object", "-w", "--stdin"], input=bytes(data),
                         capture_output=True).stdout.decode().strip()
    tree = subprocess.run(["git", "--git-dir", str(work), "mktree"], input=f"100644 blob {bad}\t{name}\n",
                          capture_output=True, text=True).stdout.strip()
    for sub in ("batches", "v1", "events"):
        tree = subprocess.run(["git", "--git-dir", str(work), "mktree"], input=f"040000 tree {tree}\t{sub}\n",
                              capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, GIT_AUTHOR_NAME="x", GIT_AUTHOR_EMAIL="x@x", GIT_COMMITTER_NAME="x", GIT_COMMITTER_EMAIL="x@x")
    forged = subprocess.run(["git", "--git-dir", str(work), "commit-tree", tree, "-p", tip, "-m", f"batch 2\n\nBatch: {name}"],
                            capture_output=True, text=True, env=env).stdout.strip()
    subprocess.run(["git", "--git-dir", str(work), "push", "-q", str(r.repo), f"{forged}:{events_ref}"], check=True)
    before = tree_digest(b.bucket, exclude=(".git",))
    refs_before = b.refs()
    done = b.run("bucket", "remote", "pull", "--json", expect=5)
    assert events_ref in done.stdout and "refused" in done.stdout
    assert tree_digest(b.bucket, exclude=(".git",)) == before
    assert b.refs() == refs_before  # no staging ref left behind either
    assert b.json("bucket", "verify", "--full")["verify"]["ok"]


def test_a_remote_batch_naming_a_path_outside_the_bucket_is_refused(bare_remote, tmp_path):
    """A well-formed, correctly chained batch whose events name '../..' as their project."""
    import pygit2

    import gitref
    from opentraces.batches import encode_batch
    from opentraces.events import make_event

    r = bare_remote
    a, b = Machine(tmp_path, "a"), Machine(tmp_path, "b")
    a.json("capture", "claude-code", session(tmp_path / "s" / "1.jsonl", 1, 10))
    a.connect(r)
    a.json("bucket", "remote", "push")
    [events_ref] = [n for n in a.refs() if "/events/" in n]
    writer = events_ref.rsplit("/", 1)[1]
    repo = gitref.open_repo(r.repo)
    tip = gitref.get_ref(repo, events_ref)
    first = repo[tip].peel(pygit2.Tree)["events/v1/batches"]
    [entry] = list(repo[first.id])
    from opentraces.batches import decode_batch

    prev = decode_batch(entry.name, repo[entry.id].data)
    ev = make_event("trace.started", "../../escape", "39681675-2c55-53dc-b733-bab77aa7a4f1", None,
                    "2026-06-12T10:00:00Z", {"agent": "claude-code", "session_id": "x"})
    name, digest, data = encode_batch(writer, 2, prev.sha256, [ev])
    w = gitref.ObjectWriter(repo)
    tree = w.tree({"events": {"v1": {"batches": {name: data}}}})
    commit = w.commit(tree, [tip], f"batch 2\n\nBatch: {name}\n", 0)
    w.flush()
    gitref.update_ref(repo, events_ref, commit, tip, force=False)
    b.connect(r)
    done = b.run("bucket", "remote", "pull", "--json", expect=5)
    assert "not a safe path component" in done.stdout and events_ref in done.stdout
    # nothing but the lock file and an empty mirror: no batch, no trace folder, no manifest
    assert (tree_digest(b.bucket, exclude=(".git", ".state")) if b.bucket.exists() else {}) == {}
    assert not (tmp_path / "escape").exists() and not list(tmp_path.rglob("escape"))
