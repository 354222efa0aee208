"""Signed batches and trusted writer keys (issue #12, part 2), against real Git servers.

Every batch carries its writer's Ed25519 signature over its content and its
predecessor's hash; a bucket that pinned a root key refuses, at pull, any
new batch that is unsigned, does not verify, or was signed by a key no
trusted key vouched for (exit 5, named, the bucket unchanged); a ref the
host rolled back is refused too. ``verify --full`` checks every signature.
"""

from __future__ import annotations

import gzip
import subprocess

import orjson
import pygit2

from opentraces.batches import encode_batch
from opentraces.encoding import gunzip_bytes

from syncrig import Machine, make_project, session
from bucketrig import REAL_CLAUDE, tree_digest


def view(m: Machine) -> tuple[dict, dict]:
    """Everything a refused pull must leave as it was: the bucket's files and its Git refs
    (fetched objects may stay in .git/objects, unreferenced)."""
    return tree_digest(m.bucket, exclude=(".git",)), m.refs()


def own_key(m: Machine) -> str:
    [me] = [k for k in m.json("bucket", "trust", "list")["trust"]["keys"] if k["this_writer"]]
    return me["key"]


def test_batches_are_signed_and_plain_git_shows_who_signed(tmp_path):
    a = Machine(tmp_path, "a")
    a.json("capture", "claude-code", REAL_CLAUDE)
    [batch] = sorted((a.bucket / "events" / "v1" / "batches").glob("*.jsonl.gz"))
    header = orjson.loads(gunzip_bytes(batch.read_bytes()).split(b"\n", 1)[0])
    assert header["sig"]["key"] == own_key(a) and len(header["sig"]["value"]) == 88
    log = subprocess.run(["git", f"--git-dir={a.bucket / '.git'}", "log", "--format=%B", "--all",
                          "--grep=^Signed-By:"], capture_output=True, text=True, check=True).stdout
    assert f"Signed-By: {own_key(a)}" in log and "Key-Fingerprint: SHA256:" in log

    # a flipped byte inside the signed part: the batch's own name check catches it first; a batch
    # re-hashed and re-named after the change still fails on its signature
    raw = gunzip_bytes(batch.read_bytes())
    head, body = raw.split(b"\n", 1)
    forged_events = [orjson.loads(line) for line in body.splitlines()]
    forged_events[0]["payload"] = {**forged_events[0]["payload"], "forged": True}
    from opentraces.events import make_event

    ev = forged_events[0]
    forged_events[0] = make_event(ev["kind"], ev["project"], ev["trace_id"], ev["step"], ev["time"], ev["payload"])
    h = orjson.loads(head)
    name, _, data = encode_batch(h["writer"], h["seq"], h["prev"], forged_events)
    raw2 = gunzip_bytes(data)
    raw2 = orjson.dumps({**orjson.loads(raw2.split(b"\n", 1)[0]), "sig": h["sig"]}, option=orjson.OPT_SORT_KEYS) \
        + b"\n" + raw2.split(b"\n", 1)[1]
    from opentraces.batches import BatchError, decode_batch
    from opentraces.encoding import address, gzip_bytes

    forged_name = f"{h['seq']:012d}-{address(raw2)[7:23]}.jsonl.gz"
    try:
        decode_batch(forged_name, gzip_bytes(raw2))
        raise AssertionError("a forged batch decoded")
    except BatchError as exc:
        assert "does not verify" in str(exc)


def test_pull_refuses_an_untrusted_writer_until_a_trusted_machine_vouches(http_remote, tmp_path):
    r = http_remote
    project = make_project(tmp_path)
    a, b = Machine(tmp_path, "a"), Machine(tmp_path, "b")
    a.json("capture", "claude-code", session(tmp_path / "s" / "one.jsonl", 1, 9), "--project", project)
    init = a.json("bucket", "trust", "init", "--note", "laptop")["trust"]
    assert init["enforced"] and [k["root"] for k in init["keys"]] == [True]
    a.connect(r)
    a.json("bucket", "remote", "push")

    b.connect(r)
    pulled = b.json("bucket", "remote", "pull")["pull"]
    assert pulled["state"] == "pulled" and pulled["trust_pinned"] == [init["keys"][0]["fingerprint"]]
    b.json("capture", "claude-code", session(tmp_path / "s" / "two.jsonl", 2, 10), "--project", project)
    b.json("bucket", "remote", "push")
    b_key = own_key(b)

    before = view(a)
    refused = a.run("bucket", "remote", "pull", expect=5)
    assert f"bucket trust add {b_key}" in refused.stderr and "does not trust" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert view(a) == before  # nothing changed

    a.json("bucket", "trust", "add", b_key, "--note", "desktop")
    assert a.json("bucket", "remote", "pull")["pull"]["state"] == "pulled"
    assert a.trace_ids() == b.trace_ids() and len(a.trace_ids()) == 2
    a.json("bucket", "remote", "push")  # the endorsement travels
    v = a.json("bucket", "verify", "--full")["verify"]
    assert v["ok"], v["problems"][:3]

    # a third machine that joins trusts both writers through the root's endorsement
    c = Machine(tmp_path, "c")
    c.connect(r)
    assert c.json("bucket", "remote", "pull")["pull"]["state"] == "pulled"
    keys = {k["key"]: k for k in c.json("bucket", "trust", "list")["trust"]["keys"]}
    assert keys[b_key]["trusted"] and keys[b_key]["note"] == "desktop"
    assert c.trace_ids() == a.trace_ids()


def test_a_stolen_token_cannot_inject_batches(bare_remote, tmp_path):
    """Someone with the remote's credentials pushes batches signed by a key nobody vouched for,
    and forges one of the owner's batches: pulls refuse both, named, nothing changes."""
    r = bare_remote
    a, b, thief = Machine(tmp_path, "a"), Machine(tmp_path, "b"), Machine(tmp_path, "thief")
    a.json("capture", "claude-code", REAL_CLAUDE)
    a.json("bucket", "trust", "init")
    a.connect(r)
    a.json("bucket", "remote", "push")
    b.connect(r)
    b.json("bucket", "remote", "pull")

    thief.connect(r)
    thief.json("bucket", "remote", "pull")
    thief.json("capture", "claude-code", session(tmp_path / "s" / "evil.jsonl", 7, 11))
    thief.json("bucket", "remote", "push")  # the server takes it: it checks nothing
    before = view(b)
    refused = b.run("bucket", "remote", "pull", expect=5)
    assert "does not trust" in refused.stderr and own_key(thief) in refused.stderr
    assert view(b) == before


def test_a_batch_re_signed_by_nobody_and_a_rolled_back_ref_are_refused(bare_remote, tmp_path):
    r = bare_remote
    a, b = Machine(tmp_path, "a"), Machine(tmp_path, "b")
    a.json("capture", "claude-code", session(tmp_path / "s" / "one.jsonl", 1, 9))
    a.json("bucket", "trust", "init")
    a.connect(r)
    a.json("bucket", "remote", "push")
    b.connect(r)
    b.json("bucket", "remote", "pull")
    a.json("capture", "claude-code", session(tmp_path / "s" / "two.jsonl", 2, 10))
    a.json("bucket", "remote", "push")
    b.json("bucket", "remote", "pull")  # b has seen both of a's batches

    # the host rolls a's events ref back by one batch
    server = pygit2.Repository(str(r.repo))
    [events_ref] = [n for n in server.references if n.startswith("refs/opentraces/v1/events/")]
    tip = server.references[events_ref].target
    parent = server[tip].parent_ids[0]
    server.references[events_ref].set_target(parent)
    before = view(b)
    refused = b.run("bucket", "remote", "pull", expect=5)
    assert "rolled back" in refused.stderr and events_ref in refused.stderr
    assert view(b) == before
    a.json("bucket", "remote", "push")  # the owner puts it back
    assert b.json("bucket", "remote", "pull")["pull"]["state"] in ("up_to_date", "pulled")

    # a new batch for a's writer, chained right, but unsigned (the host cannot sign as a)
    head_commit = server[server.references[events_ref].target]
    tree = head_commit.peel(pygit2.Tree)
    batches = server[server[server[tree["events"].id].peel(pygit2.Tree)["v1"].id].peel(pygit2.Tree)["batches"].id]
    [entry] = list(batches)
    raw = gzip.decompress(server[entry.id].data)
    h = orjson.loads(raw.split(b"\n", 1)[0])
    events = [orjson.loads(line) for line in raw.split(b"\n", 1)[1].splitlines()]
    from opentraces.encoding import address

    name, _digest, data = encode_batch(h["writer"], h["seq"] + 1, address(raw), events[:1])
    blob = server.create_blob(data)
    tb = server.TreeBuilder()
    tb.insert(name, blob, pygit2.GIT_FILEMODE_BLOB)
    t_batches = tb.write()
    tb = server.TreeBuilder(); tb.insert("batches", t_batches, pygit2.GIT_FILEMODE_TREE); t_v1 = tb.write()
    tb = server.TreeBuilder(); tb.insert("v1", t_v1, pygit2.GIT_FILEMODE_TREE); t_events = tb.write()
    tb = server.TreeBuilder(); tb.insert("events", t_events, pygit2.GIT_FILEMODE_TREE); root = tb.write()
    sig = pygit2.Signature("host", "host@example.invalid", 0, 0)
    forged = server.create_commit(None, sig, sig, f"batch {h['seq'] + 1}\n\nBatch: {name}\n", root, [head_commit.id])
    server.references[events_ref].set_target(forged)
    before = view(b)
    refused = b.run("bucket", "remote", "pull", expect=5)
    assert "is not signed" in refused.stderr and name in refused.stderr
    assert view(b) == before


def test_verify_full_names_a_batch_no_trusted_key_signed(tmp_path):
    a, other = Machine(tmp_path, "a"), Machine(tmp_path, "other")
    a.json("capture", "claude-code", REAL_CLAUDE)
    a.json("bucket", "trust", "init")
    assert a.json("bucket", "verify", "--full")["verify"]["ok"]
    other.json("capture", "claude-code", session(tmp_path / "s" / "x.jsonl", 3, 12))
    [foreign] = sorted((other.bucket / "events" / "v1" / "batches").glob("*.jsonl.gz"))
    (a.bucket / "events" / "v1" / "batches" / foreign.name).write_bytes(foreign.read_bytes())
    v = a.json("bucket", "verify", "--full", expect=1)["verify"]
    untrusted = [p for p in v["problems"] if p["kind"] == "batch_untrusted"]
    assert [p["path"].rsplit("/", 1)[1] for p in untrusted] == [foreign.name]
    assert own_key(other) in untrusted[0]["detail"]
    a.json("bucket", "trust", "add", own_key(other))
    v = a.json("bucket", "verify", "--full", expect=None)["verify"]
    assert not [p for p in v["problems"] if p["kind"] == "batch_untrusted"]
