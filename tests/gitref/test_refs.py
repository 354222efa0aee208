"""Reference CAS, force, delete, listing and racing appenders, judged by `git rev-parse`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pygit2
import pytest

import gitref
from gitref import ObjectWriter, RefConflictError, append_commit, delete_ref, get_ref, list_refs, update_ref

REF = "refs/opentraces/v1/test"
ROOT = Path(__file__).resolve().parents[2]


def commits(repo, n: int) -> list[pygit2.Oid]:
    out, tip = [], None
    with ObjectWriter(repo) as w:
        for i in range(n):
            tip = w.commit(w.tree({"n": b"%d" % i}), [tip] if tip else [], f"{i}\n", i)
            out.append(tip)
    return out


def rev_parse(git, repo, name: str) -> str | None:
    done = git(Path(repo.path), "rev-parse", "--verify", "-q", name, check=False)
    return done.stdout.decode().strip() if done.returncode == 0 else None


def test_create_then_compare_and_swap(bare, git):
    a, b = commits(bare, 2)
    update_ref(bare, REF, a, None, force=False)
    assert rev_parse(git, bare, REF) == str(a) and get_ref(bare, REF) == a
    update_ref(bare, REF, b, a, force=False)
    assert rev_parse(git, bare, REF) == str(b) and get_ref(bare, REF) == b


def test_conflict_raises_and_leaves_the_ref_alone(bare, git):
    a, b, c = commits(bare, 3)
    update_ref(bare, REF, b, None, force=False)
    with pytest.raises(RefConflictError) as info:
        update_ref(bare, REF, c, a, force=False)
    assert (info.value.name, info.value.expected, info.value.actual) == (REF, a, b)
    assert rev_parse(git, bare, REF) == str(b)
    assert not (Path(bare.path) / (REF + ".lock")).exists()


def test_create_only_when_expected_is_none(bare, git):
    a, b = commits(bare, 2)
    update_ref(bare, REF, a, None, force=False)
    with pytest.raises(RefConflictError) as info:
        update_ref(bare, REF, b, None, force=False)
    assert info.value.actual == a
    assert rev_parse(git, bare, REF) == str(a)


def test_expected_value_for_a_missing_ref_conflicts(bare, git):
    (a,) = commits(bare, 1)
    with pytest.raises(RefConflictError) as info:
        update_ref(bare, REF, a, a, force=False)
    assert info.value.actual is None
    assert rev_parse(git, bare, REF) is None


def test_force_sets_unconditionally(bare, git):
    a, b = commits(bare, 2)
    update_ref(bare, REF, b, None, force=False)
    update_ref(bare, REF, a, pygit2.Oid(hex="0" * 39 + "1"), force=True)
    assert rev_parse(git, bare, REF) == str(a)
    update_ref(bare, REF + "2", b, None, force=True)
    assert rev_parse(git, bare, REF + "2") == str(b)


def test_new_value_must_already_be_in_the_repository(bare, git):
    (a,) = commits(bare, 1)
    update_ref(bare, REF, a, None, force=False)
    w = ObjectWriter(bare)
    unflushed = w.commit(w.tree({}), [], "never flushed\n", 0)
    for force in (False, True):
        with pytest.raises(gitref.NotFoundError):
            update_ref(bare, REF, unflushed, a, force=force)
    assert rev_parse(git, bare, REF) == str(a)


def test_lock_held_by_another_writer(bare, git):
    a, b = commits(bare, 2)
    update_ref(bare, REF, a, None, force=False)
    lock = Path(bare.path) / (REF + ".lock")
    lock.write_text("held\n")
    with pytest.raises(gitref.RefLockedError) as info:
        update_ref(bare, REF, b, a, force=False)
    assert isinstance(info.value, RefConflictError)
    assert lock.read_text() == "held\n"
    lock.unlink()
    assert rev_parse(git, bare, REF) == str(a)


def test_our_lock_stops_git_update_ref(bare, git):
    a, b = commits(bare, 2)
    update_ref(bare, REF, a, None, force=False)
    with pygit2.ReferenceTransaction(bare) as txn:  # the same lock update_ref takes
        txn.lock_ref(REF)
        done = git(Path(bare.path), "update-ref", REF, str(b), check=False)
        assert done.returncode != 0 and b"cannot lock ref" in done.stderr
    assert rev_parse(git, bare, REF) == str(a)


def test_delete_with_expected_value(bare, git):
    a, b = commits(bare, 2)
    update_ref(bare, REF, b, None, force=False)
    with pytest.raises(RefConflictError):
        delete_ref(bare, REF, a)
    assert rev_parse(git, bare, REF) == str(b)
    with pytest.raises(RefConflictError):
        delete_ref(bare, REF, None)
    delete_ref(bare, REF, b)
    assert rev_parse(git, bare, REF) is None and get_ref(bare, REF) is None
    delete_ref(bare, REF, None)  # absent, as expected
    with pytest.raises(RefConflictError):
        delete_ref(bare, REF, b)


def test_delete_a_packed_ref(bare, git):
    (a,) = commits(bare, 1)
    update_ref(bare, REF, a, None, force=False)
    git(Path(bare.path), "pack-refs", "--all")
    assert not (Path(bare.path) / REF).exists()
    assert get_ref(bare, REF) == a
    delete_ref(bare, REF, a)
    assert rev_parse(git, bare, REF) is None
    assert git(Path(bare.path), "for-each-ref").stdout == b""


@pytest.mark.parametrize("name", ["HEAD", "master", "refs/a..b", "refs/a/", "refs/a b", "refs/x.lock", "refs/*"])
def test_invalid_names_are_refused(bare, name):
    (a,) = commits(bare, 1)
    with pytest.raises(gitref.InvalidRefNameError):
        update_ref(bare, name, a, None, force=False)
    with pytest.raises(ValueError):
        get_ref(bare, name)


def test_list_refs_matches_git_for_each_ref(bare, git):
    a, b, c = commits(bare, 3)
    update_ref(bare, "refs/opentraces/v1/events/w1", a, None, force=False)
    update_ref(bare, "refs/opentraces/v1/events/w2", b, None, force=False)
    update_ref(bare, "refs/opentraces/v1/trails/p", c, None, force=False)
    update_ref(bare, "refs/heads/main", c, None, force=False)
    got = list_refs(bare, "refs/opentraces/v1/events/")
    out = git(Path(bare.path), "for-each-ref", "--format=%(refname) %(objectname)", "refs/opentraces/v1/events/").stdout
    assert {k: str(v) for k, v in got.items()} == dict(line.split() for line in out.decode().splitlines())
    assert list(got) == ["refs/opentraces/v1/events/w1", "refs/opentraces/v1/events/w2"]
    assert set(list_refs(bare)) == {*got, "refs/opentraces/v1/trails/p", "refs/heads/main"}
    assert list_refs(bare, "refs/nothing/") == {}


def test_append_commit_rebuilds_on_the_new_tip_after_a_conflict(bare, git):
    (base,) = commits(bare, 1)
    seen = []

    def build(parent):
        seen.append(parent)
        if len(seen) == 1:  # another writer lands between our read and our swap
            with ObjectWriter(bare) as w:
                other = w.commit(w.tree({"o": b"other"}), [parent], "other\n", 1)
            update_ref(bare, REF, other, parent, force=False)
        with ObjectWriter(bare) as w:
            return w.commit(w.tree({"m": b"mine"}), [parent] if parent else [], "mine\n", 2)

    update_ref(bare, REF, base, None, force=False)
    tip = append_commit(bare, REF, build)
    assert seen[0] == base and seen[1] != base and len(seen) == 2
    assert rev_parse(git, bare, REF) == str(tip)
    log = git(Path(bare.path), "log", "--format=%s", REF).stdout
    assert log == b"mine\nother\n0\n"


def test_append_commit_gives_up_after_retries(bare, git):
    (base,) = commits(bare, 1)
    update_ref(bare, REF, base, None, force=False)
    calls = []

    def build(parent):
        calls.append(parent)
        with ObjectWriter(bare) as w:
            other = w.commit(w.tree({"n": b"%d" % len(calls)}), [parent], "other\n", len(calls))
        update_ref(bare, REF, other, parent, force=False)  # always beaten
        return other

    with pytest.raises(RefConflictError):
        append_commit(bare, REF, build, retries=2)
    assert len(calls) == 3


def test_append_commit_creates_the_ref(bare, git):
    def build(parent):
        assert parent is None
        with ObjectWriter(bare) as w:
            return w.commit(w.tree({}), [], "first\n", 0)

    tip = append_commit(bare, REF, build)
    assert rev_parse(git, bare, REF) == str(tip)


RACER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    import gitref
    repo_path, who, n, go = sys.argv[2], sys.argv[3], int(sys.argv[4]), Path(sys.argv[5])
    repo = gitref.open_repo(repo_path)
    while not go.exists():
        time.sleep(0.001)
    for i in range(n):
        def build(parent):
            with gitref.ObjectWriter(repo) as w:
                tree = gitref.build_tree(w, {f"{who}/{i}.json": f"{who} {i}".encode()})
                return w.commit(tree, [parent] if parent else [], f"{who} {i}\\n", i)
        gitref.append_commit(repo, "refs/opentraces/v1/race", build, retries=1000)
    """
)


def test_two_processes_racing_append_commit_both_land(bare, git, tmp_path):
    go = tmp_path / "go"
    n = 40
    procs = [
        subprocess.Popen([sys.executable, "-c", RACER, str(ROOT), bare.path, who, str(n), str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for who in ("alice", "bob")
    ]
    go.write_text("go")
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    d = Path(bare.path)
    assert git(d, "rev-list", "--count", "refs/opentraces/v1/race").stdout == f"{2 * n}\n".encode()
    subjects = set(git(d, "log", "--format=%s", "refs/opentraces/v1/race").stdout.decode().splitlines())
    assert subjects == {f"{who} {i}" for who in ("alice", "bob") for i in range(n)}
    fsck = git(d, "fsck", "--full", "--strict", "--no-dangling", check=False)
    assert fsck.returncode == 0, fsck.stderr
    assert gitref.loose_object_count(bare) == 0


def test_file_folder_name_clash_is_not_reported_as_a_lock(bare, git):
    a, b = commits(bare, 2)
    update_ref(bare, "refs/x/a", a, None, force=False)
    update_ref(bare, "refs/y", a, None, force=False)
    for name in ("refs/x", "refs/y/b"):
        for force in (False, True):
            with pytest.raises(gitref.RefUpdateError) as info:
                update_ref(bare, name, b, None, force=force)
            assert not isinstance(info.value, RefConflictError)
    assert rev_parse(git, bare, "refs/x/a") == str(a) and rev_parse(git, bare, "refs/y") == str(a)


def test_force_update_of_a_locked_ref_reports_the_lock(bare, git):
    a, b = commits(bare, 2)
    update_ref(bare, REF, a, None, force=False)
    (Path(bare.path) / (REF + ".lock")).write_text("held\n")
    with pytest.raises(gitref.RefLockedError):
        update_ref(bare, REF, b, None, force=True)
    assert rev_parse(git, bare, REF) == str(a)
