"""End-to-end encrypted remotes (issue #12, part 1), against real Git servers.

The host sees only shadows: after an encrypted push no planted plaintext
(trace text, project name, paths, trace ids, session ids) is in any object on
the server (read with ``git cat-file --batch-all-objects --batch``, i.e.
decompressed), in a ref name or in a commit message. A machine with the key
(moved as a passphrase-protected file) pulls, replays and verifies with the
same ids; one without it, or with another key, gets exit 3 and an unchanged
bucket; an object altered on the server is refused (exit 5). Pushes stay
incremental.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pygit2

from syncrig import Machine, fsck_ok, make_project, session
from bucketrig import REAL_CLAUDE, tree_digest

PASS = "correct horse battery staple"


def encrypted(m: Machine, r) -> dict:
    m.json("auth", "login", *r.login_args())
    return m.json("setup", "bucket", "--remote", r.url, "--policy", "off", "--encrypt")


def server_dump(r) -> bytes:
    objs = subprocess.run(["git", f"--git-dir={r.repo}", "cat-file", "--batch-all-objects", "--batch"],
                          capture_output=True, check=True).stdout
    refs = subprocess.run(["git", f"--git-dir={r.repo}", "for-each-ref", "--format=%(refname)"],
                          capture_output=True, check=True).stdout
    return objs + b"\n" + refs


def view(m: Machine) -> tuple[dict, dict]:
    """A refused pull leaves the bucket's files and refs as they were; fetched objects may stay in
    .git/objects, and the transport's map may learn shadow <-> plain pairs that opened (authentic)."""
    files = {k: v for k, v in tree_digest(m.bucket, exclude=(".git",)).items() if k != ".state/crypt-map.sqlite"}
    return files, m.refs()


def test_the_host_sees_no_plaintext_and_a_keyholder_gets_everything(http_remote, tmp_path):
    r = http_remote
    project = make_project(tmp_path)
    a, b = Machine(tmp_path, "a"), Machine(tmp_path, "b")
    sid = str(uuid.UUID(int=0x5C0000 + 1))
    a.json("capture", "claude-code", session(tmp_path / "s" / "one.jsonl", 1, 9), "--project", project)
    setup = encrypted(a, r)
    assert setup["encryption"]["fingerprint"] and "lost" in setup["encryption"]["warning"]
    pushed = a.json("bucket", "remote", "push")["push"]
    assert pushed["state"] == "pushed"
    st = a.json("bucket", "remote", "status")["remote_status"]
    assert st["state"] == "in_sync" and st["encrypted"] == setup["encryption"]["fingerprint"]

    [trace] = a.trace_ids()
    slug = a.json("trace", "get", trace)["project"]
    planted = [sid, trace, slug, "project", "src/app.py", "farewell", "goodbye", "hello, {name}",
               "refs/opentraces/v1", "events/v1/batches", "trace.json", "claude-code"]
    dump = server_dump(r)
    for text in planted:
        assert text.encode() not in dump, text
    names = subprocess.run(["git", f"--git-dir={r.repo}", "for-each-ref", "--format=%(refname)"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert names and all(n.startswith("refs/opentraces/e1/") for n in names)

    # the key moves as a passphrase-protected file
    key_file = tmp_path / "bucket.key"
    a.run("key", "export", "--out", key_file, env={**a.env, "OPENTRACES_KEY_PASSPHRASE": PASS})
    wrong = b.run("key", "import", key_file, env={**b.env, "OPENTRACES_KEY_PASSPHRASE": "not the passphrase"}, expect=3)
    assert "wrong passphrase" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
    b.json("key", "import", key_file, env={**b.env, "OPENTRACES_KEY_PASSPHRASE": PASS})
    b.json("auth", "login", *r.login_args())
    b.json("setup", "bucket", "--remote", r.url, "--policy", "off")
    pulled = b.json("bucket", "remote", "pull")["pull"]
    assert pulled["state"] == "pulled" and set(pulled["traces"]) == {trace}
    assert b.json("trace", "get", trace)["trace"]["session_id"] == sid
    assert b.json("ctx", trace)["context"] == a.json("ctx", trace)["context"]  # lazy fetch through shadows
    blob_refs = [n for n in b.refs() if n.startswith("refs/opentraces/v1/blobs/")]
    assert [n.rsplit("/", 1)[1] for n in blob_refs] == [trace]  # one ref's shadows, opened
    b.json("bucket", "prefetch", trace)
    v = b.json("bucket", "verify", "--full")["verify"]
    assert v["ok"], v["problems"][:3]
    plain_refs = {n: o for n, o in b.refs().items() if n.startswith(("refs/opentraces/v1/", "refs/heads/"))}
    assert plain_refs == {n: o for n, o in a.refs().items() if n in plain_refs}
    ca, cb = tmp_path / "clone-a", tmp_path / "clone-b"
    subprocess.run(["git", "clone", "-q", str(project), str(ca)], check=True)
    subprocess.run(["git", "clone", "-q", str(project), str(cb)], check=True)
    assert a.json("bucket", "replay", "--repo", ca)["replay"]["head"] == b.json("bucket", "replay", "--repo", cb)["replay"]["head"]

    # b adds a session and pushes: a pulls it; both hold the same refs
    b.json("capture", "claude-code", session(tmp_path / "s" / "two.jsonl", 2, 10), "--project", project)
    b.json("bucket", "remote", "push")
    assert a.json("bucket", "remote", "pull")["pull"]["state"] == "pulled"
    assert a.trace_ids() == b.trace_ids() and len(a.trace_ids()) == 2
    for text in [str(uuid.UUID(int=0x5C0000 + 2))]:
        assert text.encode() not in server_dump(r)


def test_no_key_or_another_key_is_exit_3_and_nothing_changes(bare_remote, tmp_path):
    r = bare_remote
    a, c, d = Machine(tmp_path, "a"), Machine(tmp_path, "c"), Machine(tmp_path, "d")
    a.json("capture", "claude-code", REAL_CLAUDE)
    encrypted(a, r)
    a.json("bucket", "remote", "push")

    c.json("capture", "claude-code", session(tmp_path / "s" / "c.jsonl", 3, 11))
    c.json("auth", "login", *r.login_args())
    before = view(c)
    no_key = c.run("setup", "bucket", "--remote", r.url, "--policy", "off", expect=3)
    assert "encrypted" in no_key.stderr and "key import" in no_key.stderr
    assert view(c) == before

    d.json("capture", "claude-code", session(tmp_path / "s" / "d.jsonl", 4, 12))
    d.json("auth", "login", *r.login_args())
    d.json("setup", "bucket", "--policy", "off", "--encrypt")  # a key of its own
    d.json("config", "set", "bucket.remote", r.url)
    before = view(d)
    other = d.run("bucket", "remote", "pull", expect=3)
    assert "encrypted with key" in other.stderr and len(other.stderr.strip().splitlines()) == 1
    assert view(d) == before


def test_an_object_altered_on_the_server_is_refused(bare_remote, tmp_path):
    r = bare_remote
    a, b = Machine(tmp_path, "a"), Machine(tmp_path, "b")
    a.json("capture", "claude-code", session(tmp_path / "s" / "one.jsonl", 1, 9))
    encrypted(a, r)
    a.json("bucket", "remote", "push")
    key_file = tmp_path / "k"
    a.run("key", "export", "--out", key_file, env={**a.env, "OPENTRACES_KEY_PASSPHRASE": PASS})
    b.json("key", "import", key_file, env={**b.env, "OPENTRACES_KEY_PASSPHRASE": PASS})
    b.json("auth", "login", *r.login_args())
    b.json("setup", "bucket", "--remote", r.url, "--policy", "off")
    b.json("bucket", "remote", "pull")
    a.json("capture", "claude-code", session(tmp_path / "s" / "two.jsonl", 2, 10))
    a.json("bucket", "remote", "push")

    # the host flips one byte of every blob the newest commit of every ref added, keeping Git consistent
    server = pygit2.Repository(str(r.repo))

    def flipped(tree_id):
        tb = server.TreeBuilder()
        for e in server[tree_id]:
            if e.filemode == pygit2.GIT_FILEMODE_TREE:
                tb.insert(e.name, flipped(e.id), e.filemode)
            else:
                data = bytearray(server[e.id].data)
                data[len(data) // 2] ^= 0x01
                tb.insert(e.name, server.create_blob(bytes(data)), e.filemode)
        return tb.write()

    for ref in [n for n in server.references if "/key-" not in n]:
        c = server[server.references[ref].target]
        forged = server.create_commit(None, c.author, c.committer, c.message, flipped(c.tree_id), list(c.parent_ids))
        server.references[ref].set_target(forged)
    before = view(b)
    refused = b.run("bucket", "remote", "pull", expect=5)
    assert "does not open" in refused.stderr or "altered" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert view(b) == before


def test_pushes_stay_incremental(bare_remote, tmp_path):
    r = bare_remote
    plain_srv = tmp_path / "plain.git"
    subprocess.run(["git", "init", "-q", "--bare", str(plain_srv)], check=True)
    a, p = Machine(tmp_path, "a"), Machine(tmp_path, "p")
    for m in (a, p):
        for n in range(1, 6):
            m.json("capture", "claude-code", session(tmp_path / "s" / m.name / f"{n}.jsonl", n, n + 3))
    encrypted(a, r)
    p.json("auth", "login", *r.login_args())
    p.json("setup", "bucket", "--remote", str(plain_srv), "--policy", "off")
    first = a.json("bucket", "remote", "push")["push"]["sent"]["bytes"]
    p.json("bucket", "remote", "push")
    for m in (a, p):
        m.json("capture", "claude-code", session(tmp_path / "s" / m.name / "6.jsonl", 6, 12))
    enc = a.json("bucket", "remote", "push")["push"]["sent"]
    plain = p.json("bucket", "remote", "push")["push"]["sent"]
    assert enc["bytes"] < first / 2  # only the new session's objects moved
    assert enc["bytes"] <= 2 * plain["bytes"] + 4096, (enc, plain)
    again = a.json("bucket", "remote", "push")["push"]
    assert again["state"] == "up_to_date"


def _keyed_pair(r, tmp_path) -> tuple[Machine, Machine]:
    a, b = Machine(tmp_path, "a"), Machine(tmp_path, "b")
    encrypted(a, r)
    key_file = tmp_path / "k"
    a.run("key", "export", "--out", key_file, env={**a.env, "OPENTRACES_KEY_PASSPHRASE": PASS})
    b.json("key", "import", key_file, env={**b.env, "OPENTRACES_KEY_PASSPHRASE": PASS})
    b.json("auth", "login", *r.login_args())
    b.json("setup", "bucket", "--remote", r.url, "--policy", "off")
    return a, b


def test_two_machines_pushing_at_once_converge(ssh_remote, tmp_path):
    """As in the sync issue, over SSH: each round both machines capture and push at the same time."""
    r = ssh_remote
    a, b = _keyed_pair(r, tmp_path)
    hours_a = [10, 3, 12, 14, 1, 16, 18, 5]
    hours_b = [11, 2, 13, 4, 15, 0, 17, 19]
    for i in range(len(hours_a)):
        a.json("capture", "claude-code", session(tmp_path / "sa" / f"{i}.jsonl", 100 + i, hours_a[i]))
        b.json("capture", "claude-code", session(tmp_path / "sb" / f"{i}.jsonl", 200 + i, hours_b[i]))
        procs = [subprocess.Popen([sys.executable, "-m", "opentraces.cli", "bucket", "remote", "push", "--json"],
                                  env=m.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for m in (a, b)]
        for m, p in zip((a, b), procs):
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, (i, m.name, out[-1500:], err[-1500:])
    for m in (a, b, a):
        m.json("bucket", "remote", "pull")
        m.json("bucket", "remote", "push")
    b.json("bucket", "remote", "pull")
    assert a.trace_ids() == b.trace_ids() and len(a.trace_ids()) == 2 * len(hours_a)
    plain = lambda m: {n: o for n, o in m.refs().items() if n.startswith(("refs/opentraces/v1/events", "refs/opentraces/v1/bucket",
                                                                          "refs/opentraces/v1/trails", "refs/heads/"))}
    assert plain(a) == plain(b)
    for m in (a, b):
        v = m.json("bucket", "verify", "--full")["verify"]
        assert v["ok"], v["problems"][:5]
        assert m.json("bucket", "remote", "status")["remote_status"]["state"] == "in_sync"
    fsck_ok(r.repo)


def test_a_swapped_ref_is_refused(bare_remote, tmp_path):
    """The host points the encrypted events ref at the shadow of a trail: it opens, but under the
    wrong name the plain checks refuse it (an events ref that holds no batch)."""
    from opentraces import remotekey
    from opentraces.sync.crypt import Crypt

    r = bare_remote
    a, b = _keyed_pair(r, tmp_path)
    a.json("capture", "claude-code", session(tmp_path / "s" / "one.jsonl", 1, 9))
    a.json("bucket", "remote", "push")
    b.json("bucket", "remote", "pull")
    a.json("capture", "claude-code", session(tmp_path / "s" / "two.jsonl", 2, 10))
    a.json("bucket", "remote", "push")
    fp = a.json("key", "show")["fingerprint"]
    crypt = Crypt(pygit2.Repository(str(a.bucket / ".git")), remotekey.load(a.ot_home, fp), tmp_path / "map.sqlite")
    [events] = [n for n in a.refs() if n.startswith("refs/opentraces/v1/events/")]
    trail = next(n for n in a.refs() if n.startswith("refs/opentraces/v1/trails/"))
    server = pygit2.Repository(str(r.repo))
    ev_shadow, tr_shadow = crypt.ref_name(events), crypt.ref_name(trail)
    t_ev, t_tr = server.references[ev_shadow].target, server.references[tr_shadow].target
    server.references[ev_shadow].set_target(t_tr)
    server.references[tr_shadow].set_target(t_ev)
    before = view(b)
    refused = b.run("bucket", "remote", "pull", expect=5)
    assert len(refused.stderr.strip().splitlines()) == 1 and "refused" in refused.stderr, refused.stderr
    assert view(b) == before
