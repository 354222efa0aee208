"""The push gate and re-filtering, against a real bare repository (issue #9 parts 4 and 5).

A bucket captured before any policy: the gate refuses a push with exit 2
and nothing reaches the remote; ``bucket refilter`` rewrites the traces so
no planted value is left in any bucket file or ``.git`` object; flagged
traces stay held until reviewed and cleared; then the push goes through and
the remote holds no planted value either.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bucketrig import capture, one_line_error, verify_full  # noqa: E402
from corpus import planted  # noqa: E402
from test_planted_corpus import USER, all_bytes, git_objects, leaks, planted_sessions  # noqa: E402


def _reachable_objects(gitdir: Path) -> bytes:
    """Every object reachable from a ref, as ``git cat-file --batch`` prints it."""
    listing = subprocess.run(["git", f"--git-dir={gitdir}", "rev-list", "--objects", "--all"],
                             capture_output=True, text=True, check=True).stdout
    oids = "".join(line.split(" ", 1)[0] + "\n" for line in listing.splitlines())
    return subprocess.run(["git", f"--git-dir={gitdir}", "cat-file", "--batch"], input=oids.encode(),
                          capture_output=True, check=True).stdout


def _remote_refs(gitdir: Path) -> dict[str, str]:
    out = subprocess.run(["git", f"--git-dir={gitdir}", "for-each-ref", "--format=%(refname) %(objectname)"],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def _object_count(gitdir: Path) -> int:
    out = subprocess.run(["git", f"--git-dir={gitdir}", "count-objects", "-v"], capture_output=True, text=True,
                         check=True).stdout
    stats = dict(line.split(": ") for line in out.splitlines())
    return int(stats["count"]) + int(stats["in-pack"])


def _terms(cli, values) -> None:
    term = next(v for k, _, v in values if k == "business_term")
    assert cli("config", "set", "security.business_logic.terms", term).exit_code == 0


def _capture_all(cli, bucket, sessions):
    for agent, files in sessions.items():
        rep = capture(cli, bucket, *files, agent=agent)["capture"]
        assert len(rep["captured"]) == len(files)


def _connect(cli, bucket, remote, policy):
    assert cli("auth", "login", *remote.login_args()).exit_code == 0
    res = cli("--bucket", bucket, "setup", "bucket", "--remote", remote.url, "--policy", policy, "--json")
    assert res.exit_code == 0, res.stderr


def test_gate_refuses_unfiltered_then_refilter_and_review_open_it(cli, tmp_path, bare_remote):
    values = planted(seed=23, user=USER)
    bucket = tmp_path / "bucket"
    sessions = planted_sessions(tmp_path, values)
    _terms(cli, values)
    _capture_all(cli, bucket, sessions)  # no policy yet: stored verbatim
    n = sum(len(f) for f in sessions.values())
    assert leaks(all_bytes(bucket), values)  # the test can fail: the secrets are there
    _connect(cli, bucket, bare_remote, "recommended")

    status = cli("--bucket", bucket, "bucket", "status", "--json").json["bucket"]
    assert status["push_gate"]["state"] == "closed" and status["push_gate"]["held"]["unfiltered"] == n
    before = _object_count(bare_remote.repo)
    res = cli("--bucket", bucket, "bucket", "remote", "push", "--json")
    assert res.exit_code == 2
    line = one_line_error(res.stderr)
    assert "nothing sent" in line and "opentraces bucket refilter --trace" in line
    held = res.json["gate"]["traces"]
    assert len(held) == n and {h["reason"] for h in held} == {"unfiltered"}
    assert all(h["fix"] == f"opentraces bucket refilter --trace {h['trace_id']}" for h in held)
    assert _remote_refs(bare_remote.repo) == {} and _object_count(bare_remote.repo) == before == 0

    dry = cli("--bucket", bucket, "bucket", "refilter", "--dry-run", "--json").json["refilter"]
    assert len(dry["traces"]) == n and leaks(all_bytes(bucket), values)  # a dry run changes nothing
    done = cli("--bucket", bucket, "bucket", "refilter", "--json")
    assert done.exit_code == 0, done.stderr
    rf = done.json["refilter"]
    assert len(rf["traces"]) == n and rf["events_dropped"] > 0 and rf["record"]
    assert leaks(all_bytes(bucket), values) == []
    assert leaks(git_objects(bucket / ".git"), values) == []
    v = verify_full(cli, bucket)
    assert v["exit"] == 0, v["problems"]
    assert len(cli("--bucket", bucket, "trace", "list", "--json").json["traces"]) == n
    assert list((bucket / "events/v1/refilters").glob("*.json"))  # the rewrite is recorded

    # what stays held is only what the classifier flagged; it needs a review
    gate = cli("--bucket", bucket, "bucket", "status", "--json").json["bucket"]["push_gate"]
    assert gate["held"]["unfiltered"] == 0 and gate["held"]["stale"] == 0
    flagged = cli("--bucket", bucket, "bucket", "review", "--json").json["flagged"]
    assert len(flagged) == gate["held"]["flagged"] > 0
    for item in flagged:
        assert item["reasons"] and not leaks("\n".join(item["reasons"]).encode(), values)
    res = cli("--bucket", bucket, "bucket", "remote", "push", "--json")
    assert res.exit_code == 2 and {h["reason"] for h in res.json["gate"]["traces"]} == {"flagged"}
    assert _object_count(bare_remote.repo) == 0
    cleared = cli("--bucket", bucket, "bucket", "review", "--clear", *[i["trace_id"] for i in flagged], "--json")
    assert cleared.exit_code == 0 and len(cleared.json["cleared"]) == len(flagged)
    assert cli("--bucket", bucket, "bucket", "status", "--json").json["bucket"]["push_gate"]["state"] == "open"

    res = cli("--bucket", bucket, "bucket", "remote", "push", "--json")
    assert res.exit_code == 0, res.stderr
    assert res.json["push"]["security_gate"] == "open" and res.json["push"]["refs"]
    assert leaks(git_objects(bare_remote.repo), values) == []


def test_refilter_after_a_push_replaces_the_remote_history(cli, tmp_path, bare_remote):
    """Evidence pushed unfiltered: after a re-filter the remote's refs reach no planted value
    (its disk keeps the old objects until the host collects them: docs/SECURITY.md)."""
    values = planted(seed=5, user=USER)
    bucket = tmp_path / "bucket"
    sessions = planted_sessions(tmp_path, values)
    _terms(cli, values)
    _connect(cli, bucket, bare_remote, "off")
    _capture_all(cli, bucket, sessions)
    res = cli("--bucket", bucket, "bucket", "remote", "push", "--json")
    assert res.exit_code == 0 and res.json["push"]["security_gate"] == "off"
    assert leaks(_reachable_objects(bare_remote.repo), values)
    assert cli("bucket", "security", "--policy", "recommended").exit_code == 0
    assert cli("--bucket", bucket, "bucket", "refilter", "--json").exit_code == 0
    flagged = [i["trace_id"] for i in cli("--bucket", bucket, "bucket", "review", "--json").json["flagged"]]
    if flagged:
        assert cli("--bucket", bucket, "bucket", "review", "--clear", *flagged).exit_code == 0
    res = cli("--bucket", bucket, "bucket", "remote", "push", "--json")
    assert res.exit_code == 0, res.stderr
    local = subprocess.run(["git", f"--git-dir={bucket / '.git'}", "for-each-ref", "--format=%(refname) %(objectname)",
                            "refs/opentraces/v1", "refs/heads/main"], capture_output=True, text=True, check=True).stdout
    remote = _remote_refs(bare_remote.repo)
    for line in local.splitlines():
        name, oid = line.split(" ")
        assert remote.get(name) == oid, name
    assert leaks(_reachable_objects(bare_remote.repo), values) == []
    subprocess.run(["git", f"--git-dir={bare_remote.repo}", "fsck", "--strict"], check=True, capture_output=True)


def test_another_machine_tells_a_refilter_from_tampering_and_adopts_it(tmp_path, bare_remote):
    """B pulled A's unfiltered traces; A re-filters and pushes. B's plain pull refuses (exit 5, the
    re-filter named, B unchanged); ``--adopt-refilter`` replaces B's copies: no planted value left
    in B's files or .git, the same traces and events as A, verify clean."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sync"))
    from bucketrig import tree_digest
    from syncrig import Machine

    values = planted(seed=31, user=USER)
    sessions = planted_sessions(tmp_path, values)
    a, b = Machine(tmp_path, "a"), Machine(tmp_path, "b")
    term = next(v for k, _, v in values if k == "business_term")
    for m in (a, b):
        m.connect(bare_remote, policy="off")
        m.json("config", "set", "security.business_logic.terms", term)
    for agent, files in sessions.items():
        a.json("capture", agent, *files)
    a.json("bucket", "remote", "push")
    b.json("bucket", "remote", "pull")
    assert leaks(all_bytes(b.bucket), values)
    a.json("bucket", "security", "--policy", "recommended")
    assert a.json("bucket", "refilter")["refilter"]["events_dropped"] > 0
    flagged = [i["trace_id"] for i in a.json("bucket", "review")["flagged"]]
    if flagged:
        a.json("bucket", "review", "--clear", *flagged)
    a.json("bucket", "remote", "push")

    def state():  # files and refs; fetched objects of a refused pull stay unreachable until a prune
        return {k: v for k, v in tree_digest(b.bucket).items() if not k.startswith(".git/objects/")}, b.refs()

    before = state()
    refused = b.run("bucket", "remote", "pull", expect=5)
    line = one_line_error(refused.stderr)
    assert "re-filtered" in line and "--adopt-refilter" in line
    assert state() == before

    done = b.json("bucket", "remote", "pull", "--adopt-refilter")["pull"]
    assert done["refilters_adopted"]
    assert leaks(all_bytes(b.bucket), values) == []
    assert leaks(git_objects(b.bucket / ".git"), values) == []
    v = b.json("bucket", "verify", "--full")
    assert v["verify"]["ok"], v["verify"]["problems"]
    assert b.trace_ids() == a.trace_ids()
    ev_a = {r["trace_id"]: r["events"] for r in a.json("trace", "list")["traces"]}
    ev_b = {r["trace_id"]: r["events"] for r in b.json("trace", "list")["traces"]}
    assert ev_a == ev_b


def test_verify_names_a_replaced_batch_that_came_back(cli, tmp_path):
    values = planted(seed=41, user=USER)
    bucket = tmp_path / "bucket"
    sessions = planted_sessions(tmp_path, values)
    _terms(cli, values)
    _capture_all(cli, bucket, sessions)
    old = {p.name: p.read_bytes() for p in (bucket / "events/v1/batches").glob("*.jsonl.gz")}
    assert cli("bucket", "security", "--policy", "recommended").exit_code == 0
    assert cli("--bucket", bucket, "bucket", "refilter").exit_code == 0
    assert verify_full(cli, bucket)["exit"] == 0
    name, data = next(iter(old.items()))
    (bucket / "events/v1/batches" / name).write_bytes(data)  # an old copy restored from a backup
    v = verify_full(cli, bucket)
    assert v["exit"] != 0 and "refilter_undone" in {p["kind"] for p in v["problems"]}


def test_a_machine_that_never_held_the_old_batches_carries_the_record_on(tmp_path, bare_remote):
    """C joins after A's re-filter: its pull keeps A's record, and C's own pushes keep it in the
    remote's bucket tree, so B (who still holds the replaced batches) is still told."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sync"))
    from syncrig import Machine, session

    values = planted(seed=47, user=USER)
    sessions = planted_sessions(tmp_path, values)
    a, c = Machine(tmp_path, "a"), Machine(tmp_path, "c")
    for m in (a, c):
        m.connect(bare_remote, policy="off")
    a.json("capture", "claude-code", *sessions["claude-code"])
    a.json("bucket", "remote", "push")
    a.json("bucket", "security", "--policy", "recommended")
    a.json("bucket", "refilter")
    flagged = [i["trace_id"] for i in a.json("bucket", "review")["flagged"]]
    if flagged:
        a.json("bucket", "review", "--clear", *flagged)
    a.json("bucket", "remote", "push")
    c.json("bucket", "remote", "pull")
    assert list((c.bucket / "events/v1/refilters").glob("*.json"))
    c.json("capture", "claude-code", session(tmp_path / "c-s" / "c.jsonl", 7, 9))
    c.json("bucket", "remote", "push")
    tree = subprocess.run(["git", f"--git-dir={bare_remote.repo}", "ls-tree", "-r", "--name-only",
                           "refs/opentraces/v1/bucket", "events/v1/refilters"], capture_output=True, text=True,
                          check=True).stdout
    assert tree.strip(), "the record left the remote's bucket tree"
