"""ObjectWriter: ids equal Git's, one pack per flush, no loose objects, fsck clean."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

import gitref
from gitref import Identity, ObjectWriter

T0 = 1_700_000_000
GIT_IDENTITY_ENV = {
    "GIT_AUTHOR_NAME": "opentraces",
    "GIT_AUTHOR_EMAIL": "opentraces@localhost",
    "GIT_AUTHOR_DATE": f"{T0} +0000",
    "GIT_COMMITTER_NAME": "opentraces",
    "GIT_COMMITTER_EMAIL": "opentraces@localhost",
    "GIT_COMMITTER_DATE": f"{T0} +0000",
}


def gitdir(repo: pygit2.Repository) -> Path:
    return Path(repo.path)


def pack_files(repo: pygit2.Repository) -> set[str]:
    return {p.name for p in (gitdir(repo) / "objects" / "pack").iterdir()}


def count_objects(git, repo) -> dict[str, str]:
    out = git(gitdir(repo), "count-objects", "-v").stdout.decode()
    return dict(line.split(": ", 1) for line in out.splitlines())


def packed_ids(git, pack: Path) -> set[str]:
    out = git(pack.parent.parent.parent, "show-index", input=pack.with_suffix(".idx").read_bytes())
    return {line.split()[1] for line in out.stdout.decode().splitlines()}


@pytest.mark.parametrize(
    "data",
    [b"", b"hello\n", b"\0\x01\xff binary \0", bytes(range(256)) * 4096],
    ids=["empty", "text", "binary", "1MiB"],
)
def test_blob_id_equals_git_hash_object(bare, git, data):
    w = ObjectWriter(bare)
    expected = git(gitdir(bare), "hash-object", "--stdin", input=data).stdout.decode().strip()
    assert str(w.blob(data)) == expected
    assert str(gitref.object_id(3, data)) == expected


def test_tree_id_equals_git_mktree(bare, git):
    w = ObjectWriter(bare)
    blob = w.blob(b"content\n")
    sub = w.tree({"inner": blob})
    # Git's order compares a subtree's name as if it ended in '/':
    # foo-bar (0x2d) < foo.txt (0x2e) < foo/ (0x2f) < foo0 (0x30).
    tree = w.tree({"foo0": blob, "foo": sub, "foo.txt": blob, "foo-bar": (0o100755, blob),
                   "link": (0o120000, blob), "é.txt": blob})
    w.flush()
    listing = (
        f"100644 blob {blob}\tfoo0\n040000 tree {sub}\tfoo\n100644 blob {blob}\tfoo.txt\n"
        f"100755 blob {blob}\tfoo-bar\n120000 blob {blob}\tlink\n100644 blob {blob}\té.txt\n"
    )
    expected = git(gitdir(bare), "mktree", input=listing.encode()).stdout.decode().strip()
    assert str(tree) == expected
    names = git(gitdir(bare), "ls-tree", "--name-only", "-z", str(tree)).stdout.split(b"\0")[:-1]
    assert names == [b"foo-bar", b"foo.txt", b"foo", b"foo0", b"link", "é.txt".encode()]


def test_empty_tree_is_gits_empty_tree(bare):
    assert str(ObjectWriter(bare).tree({})) == "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def test_commit_ids_equal_git_commit_tree(bare, git):
    w = ObjectWriter(bare)
    tree = w.tree({"a": w.blob(b"a\n")})
    root = w.commit(tree, [], "root\n", T0)
    side = w.commit(tree, [], "side\n", T0)
    merge = w.commit(tree, [root, side], "merge\n\nbody line\n", T0)
    w.flush()
    d = gitdir(bare)
    env = GIT_IDENTITY_ENV
    assert str(root) == git(d, "commit-tree", str(tree), input=b"root\n", env=env).stdout.decode().strip()
    assert str(side) == git(d, "commit-tree", str(tree), input=b"side\n", env=env).stdout.decode().strip()
    got = git(d, "commit-tree", str(tree), "-p", str(root), "-p", str(side),
              input=b"merge\n\nbody line\n", env=env).stdout.decode().strip()
    assert str(merge) == got


def test_commit_id_equals_pygit2_create_commit(tmp_path, bare):
    w = ObjectWriter(bare)
    tree = w.tree({"x": w.blob(b"x")})
    ours = w.commit(tree, [], "m\n", T0 + 5)
    scratch = pygit2.init_repository(str(tmp_path / "scratch.git"), bare=True)
    scratch_tree = scratch.create_blob(b"x")
    tb = scratch.TreeBuilder()
    tb.insert("x", scratch_tree, pygit2.enums.FileMode.BLOB)
    sig = pygit2.Signature("opentraces", "opentraces@localhost", T0 + 5, 0)
    theirs = scratch.create_commit(None, sig, sig, "m\n", tb.write(), [])
    assert ours == theirs


def test_commit_identity_ignores_environment_and_repo_config(bare, git, monkeypatch):
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Leak")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "leak@example.com")
    bare.config["user.name"] = "Leak"
    bare.config["user.email"] = "leak@example.com"
    w = ObjectWriter(bare)
    tree = w.tree({})
    oid = w.commit(tree, [], "fixed\n", T0)
    w.flush()
    body = git(gitdir(bare), "cat-file", "commit", str(oid)).stdout
    assert body == (
        b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
        b"author opentraces <opentraces@localhost> 1700000000 +0000\n"
        b"committer opentraces <opentraces@localhost> 1700000000 +0000\n\nfixed\n"
    )


def test_custom_identity_is_written(bare, git):
    w = ObjectWriter(bare, identity=Identity("Bucket Bot", "bot@example.org"))
    oid = w.commit(w.tree({}), [], "x\n", T0)
    w.flush()
    out = git(gitdir(bare), "log", "-1", "--format=%an|%ae|%cn|%ce|%at|%ct", str(oid)).stdout
    assert out == f"Bucket Bot|bot@example.org|Bucket Bot|bot@example.org|{T0}|{T0}\n".encode()


@pytest.mark.parametrize("name,email", [("a<b", "e@x"), ("n", "e>x"), ("n\n", "e"), ("", "e"), (" n", "e")])
def test_identity_rejects_fields_git_would_garble(name, email):
    with pytest.raises(gitref.InvalidObjectError):
        Identity(name, email)


def test_flush_writes_one_pack_and_no_loose_objects(bare, git):
    before = pack_files(bare)
    w = ObjectWriter(bare)
    tip = None
    for i in range(50):
        tree = gitref.build_tree(w, {"n.txt": b"%d\n" % i, "dir/same.txt": b"same\n"})
        tip = w.commit(tree, [tip] if tip else [], f"c{i}\n", T0 + i)
    staged = set(map(str, w))
    pack = w.flush()
    assert pack is not None and pack.exists() and pack.with_suffix(".idx").exists()
    new = pack_files(bare) - before
    assert new == {pack.name, pack.with_suffix(".idx").name}
    stats = count_objects(git, bare)
    assert stats["count"] == "0" and stats["packs"] == "1"
    assert int(stats["in-pack"]) == len(staged) == 50 * 3 + 2  # commit, tree, blob each; dir tree + its blob once
    assert packed_ids(git, pack) == staged
    git(gitdir(bare), "update-ref", "refs/test/tip", str(tip))
    fsck = git(gitdir(bare), "fsck", "--full", "--strict", "--no-dangling", check=False)
    assert fsck.returncode == 0, fsck.stderr
    assert git(gitdir(bare), "rev-list", "--count", "refs/test/tip").stdout == b"50\n"
    assert len(w) == 0


def test_second_flush_of_same_objects_writes_nothing(bare):
    w = ObjectWriter(bare)
    w.commit(gitref.build_tree(w, {"a": b"1"}), [], "m\n", T0)
    assert w.flush() is not None
    before = pack_files(bare)
    w2 = ObjectWriter(bare)
    w2.commit(gitref.build_tree(w2, {"a": b"1"}), [], "m\n", T0)
    assert len(w2) == 3
    assert w2.flush() is None
    assert pack_files(bare) == before
    assert ObjectWriter(bare).flush() is None


def test_objects_already_in_target_are_not_repacked(bare, git):
    loose = git(gitdir(bare), "hash-object", "-w", "--stdin", input=b"already loose\n").stdout.decode().strip()
    w = ObjectWriter(bare)
    first = w.blob(b"first pack\n")
    w.flush()
    w.blob(b"already loose\n")
    w.blob(b"first pack\n")
    fresh = w.blob(b"fresh\n")
    assert str(first) != loose
    pack = w.flush()
    assert packed_ids(git, pack) == {str(fresh)}


def test_flushed_objects_are_readable_through_the_same_repository(bare):
    w = ObjectWriter(bare)
    blob = w.blob(b"visible\n")
    assert blob not in bare
    w.flush()
    assert bare[blob].data == b"visible\n"
    assert gitref.read_blob(bare, blob) == b"visible\n"


def test_context_manager_flushes_on_success_and_discards_on_error(bare):
    with ObjectWriter(bare) as w:
        kept = w.blob(b"kept\n")
    assert w.last_pack is not None and kept in bare
    before = pack_files(bare)
    with pytest.raises(RuntimeError):
        with ObjectWriter(bare) as w:
            dropped = w.blob(b"dropped\n")
            raise RuntimeError("boom")
    assert dropped not in bare and pack_files(bare) == before


def test_entries_may_reference_objects_already_in_target(bare, git):
    blob = pygit2.Oid(hex=git(gitdir(bare), "hash-object", "-w", "--stdin", input=b"old\n").stdout.decode().strip())
    w = ObjectWriter(bare)
    base = w.commit(w.tree({"old": blob}), [], "base\n", T0)
    w.flush()
    w = ObjectWriter(bare)
    old_tree = bare[base].tree_id
    child = w.commit(w.tree({"graft": old_tree, "old": blob}), [base], "child\n", T0 + 1)
    pack = w.flush()
    assert packed_ids(git, pack) == {str(child), str(bare[child].tree_id)}
    out = git(gitdir(bare), "ls-tree", "-r", str(child)).stdout.decode()
    assert out == f"100644 blob {blob}\tgraft/old\n100644 blob {blob}\told\n"


def test_references_must_exist_with_the_right_type(bare):
    w = ObjectWriter(bare)
    blob = w.blob(b"b")
    tree = w.tree({"b": blob})
    ghost = gitref.object_id(3, b"never written")
    with pytest.raises(gitref.NotFoundError) as info:
        w.tree({"g": ghost})
    assert isinstance(info.value, KeyError)
    with pytest.raises(gitref.NotFoundError):
        w.commit(tree, [gitref.object_id(1, b"nope")], "m\n", T0)
    with pytest.raises(gitref.ObjectTypeError):
        w.commit(blob, [], "m\n", T0)
    with pytest.raises(gitref.ObjectTypeError):
        w.commit(tree, [tree], "m\n", T0)
    with pytest.raises(gitref.ObjectTypeError):
        w.tree({"x": (0o040000, blob)})
    with pytest.raises(gitref.InvalidObjectError):
        w.tree({"x": (0o100664, blob)})


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_commit_time_must_be_whole_non_negative_seconds(bare, bad):
    w = ObjectWriter(bare)
    with pytest.raises(gitref.InvalidObjectError):
        w.commit(w.tree({}), [], "m\n", bad)


def test_commit_message_with_nul_is_refused(bare):
    w = ObjectWriter(bare)
    with pytest.raises(gitref.InvalidObjectError):
        w.commit(w.tree({}), [], "a\0b", T0)


def test_same_inputs_same_ids_across_repositories(tmp_path):
    def build(path):
        repo = gitref.open_or_init_bare(path)
        with ObjectWriter(repo) as w:
            tip = None
            for i in range(5):
                tip = w.commit(gitref.build_tree(w, {f"e/{i}.json": b"{}\n"}), [tip] if tip else [], f"{i}\n", T0 + i)
        return tip

    assert build(tmp_path / "one.git") == build(tmp_path / "two.git")
