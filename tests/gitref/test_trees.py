"""build_tree / read_tree / iter_tree / read_blob against `git ls-tree` and `git cat-file`."""

from __future__ import annotations

import types
from pathlib import Path

import pygit2
import pytest

import gitref
from gitref import ObjectWriter, build_tree, iter_tree, read_blob, read_tree

FILES = {
    "README.md": b"# hi\n",
    "events/000001.json": b'{"seq": 1}\n',
    "events/000002.json": b'{"seq": 2}\n',
    "snapshots/src/app.py/before": b"print(1)\n",
    "snapshots/src/app.py/after": b"print(2)\n",
    "a/b/c/d/e/deep.txt": b"deep\n",
    "binary.bin": bytes(range(256)),
    "empty": b"",
    "unicode/é ü.txt": "ünïcode\n".encode(),
}


def ls_tree(git, repo, oid) -> list[tuple[str, str, str, bytes]]:
    out = git(Path(repo.path), "ls-tree", "-r", "-z", str(oid)).stdout
    rows = []
    for record in out.split(b"\0")[:-1]:
        meta, path = record.split(b"\t", 1)
        mode, type_, sha = meta.decode().split()
        rows.append((mode, type_, sha, path))
    return rows


def test_nested_build_reads_back_and_git_agrees(bare, git):
    with ObjectWriter(bare) as w:
        tree = build_tree(w, FILES)
        commit = w.commit(tree, [], "snapshot\n", 1_700_000_000)
    assert read_tree(bare, tree) == FILES
    assert read_tree(bare, commit) == FILES
    rows = ls_tree(git, bare, tree)
    assert {path.decode(): sha for _, _, sha, path in rows} == {
        p: git(Path(bare.path), "hash-object", "--stdin", input=data).stdout.decode().strip()
        for p, data in FILES.items()
    }
    assert {(mode, type_) for mode, type_, _, _ in rows} == {("100644", "blob")}
    for _, _, sha, path in rows:
        assert git(Path(bare.path), "cat-file", "blob", sha).stdout == FILES[path.decode()]
    subtrees = git(Path(bare.path), "ls-tree", "-d", "-r", str(tree)).stdout.decode().split("\n")[:-1]
    assert all(line.startswith("040000 tree ") for line in subtrees) and len(subtrees) == 10


def test_iter_tree_is_lazy_and_in_git_order(bare, git):
    with ObjectWriter(bare) as w:
        tree = build_tree(w, FILES)
    it = iter_tree(bare, tree)
    assert isinstance(it, types.GeneratorType)
    got = [(path.encode(), str(oid), f"{mode:06o}") for path, oid, mode in it]
    assert got == [(path, sha, mode) for mode, _, sha, path in ls_tree(git, bare, tree)]


def test_entry_kinds_modes_and_grafted_subtrees(bare, git):
    with ObjectWriter(bare) as w:
        blob = w.blob(b"#!/bin/sh\n")
        target = w.blob(b"README.md")
        sub = build_tree(w, {"x/y.txt": b"y\n"})
        tree = build_tree(w, {
            "run.sh": (0o100755, blob),
            "link": (0o120000, target),
            "copy.sh": blob,
            "graft": sub,
            "deeper/graft": sub,
        })
    rows = {path.decode(): (mode, type_, sha) for mode, type_, sha, path in ls_tree(git, bare, tree)}
    assert rows == {
        "copy.sh": ("100644", "blob", str(blob)),
        "deeper/graft/x/y.txt": ("100644", "blob", rows["graft/x/y.txt"][2]),
        "graft/x/y.txt": ("100644", "blob", rows["graft/x/y.txt"][2]),
        "link": ("120000", "blob", str(target)),
        "run.sh": ("100755", "blob", str(blob)),
    }
    top = git(Path(bare.path), "ls-tree", str(tree)).stdout.decode()
    assert f"040000 tree {sub}\tgraft\n" in top


UNSAFE = [
    "", "/", "/abs", "trailing/", "a//b", ".", "a/./b", "..", "a/../b", "../up",
    ".git", ".GIT/config", "a/.Git", "x\0y", "git~1", "GIT~1/x", ".git.", ".git ", ".git...",
    ".git:stream", ".git\\x", ".g\u200cit", "\ufeff.git",
]


@pytest.mark.parametrize("path", UNSAFE, ids=[repr(p) for p in UNSAFE])
def test_unsafe_paths_are_refused(bare, path):
    w = ObjectWriter(bare)
    with pytest.raises(gitref.UnsafeNameError) as info:
        build_tree(w, {path: b"x"})
    assert isinstance(info.value, ValueError) and isinstance(info.value, gitref.GitrefError)
    assert len(w) == 0  # nothing half-built was staged


def test_unsafe_names_in_nested_mappings_are_refused(bare):
    w = ObjectWriter(bare)
    with pytest.raises(gitref.UnsafeNameError):
        w.tree({"ok": {".git": b"x"}})
    with pytest.raises(gitref.UnsafeNameError):
        w.tree({"a/b": b"x"})


SAFE = [".gitignore", ".github/workflows/ci.yml", "..a", "a..", "git~2", ".gitx", "x.git", "-", " sp ace "]


def test_names_that_merely_resemble_dotgit_are_accepted_and_fsck_clean(bare, git):
    with ObjectWriter(bare) as w:
        commit = w.commit(build_tree(w, {p: b"x\n" for p in SAFE}), [], "m\n", 0)
    git(Path(bare.path), "update-ref", "refs/test/safe", str(commit))
    assert sorted(read_tree(bare, commit)) == sorted(SAFE)
    fsck = git(Path(bare.path), "fsck", "--full", "--strict", check=False)
    assert fsck.returncode == 0, fsck.stderr


@pytest.mark.parametrize("files", [{"a": b"1", "a/b": b"2"}, {"a/b": b"2", "a": b"1"}, {"a/b/c": b"1", "a/b": b"2"}])
def test_a_path_cannot_be_both_file_and_folder(bare, files):
    with pytest.raises(gitref.PathConflictError):
        build_tree(ObjectWriter(bare), files)


def test_read_errors_are_typed(bare):
    with ObjectWriter(bare) as w:
        blob = w.blob(b"b")
        tree = build_tree(w, {"b": blob})
    missing = gitref.object_id(3, b"not here")
    with pytest.raises(gitref.NotFoundError):
        read_blob(bare, missing)
    with pytest.raises(KeyError):
        read_tree(bare, missing)
    with pytest.raises(gitref.ObjectTypeError):
        read_blob(bare, tree)
    with pytest.raises(gitref.ObjectTypeError):
        list(iter_tree(bare, blob))
    assert read_blob(bare, blob) == b"b"


def test_build_tree_ids_are_independent_of_insertion_order(bare):
    w = ObjectWriter(bare)
    forward = build_tree(w, FILES)
    backward = build_tree(w, dict(reversed(list(FILES.items()))))
    assert forward == backward


def test_tree_with_submodule_entry(bare, git):
    commit_id = pygit2.Oid(hex="1" * 40)  # a gitlink names a commit in another repository
    with ObjectWriter(bare) as w:
        tree = build_tree(w, {"vendor/lib": (0o160000, commit_id), "f": b"f\n"})
    assert list(iter_tree(bare, tree))[1] == ("vendor/lib", commit_id, 0o160000)
    assert read_tree(bare, tree) == {"f": b"f\n"}
    out = git(Path(bare.path), "ls-tree", "-r", str(tree)).stdout.decode()
    assert f"160000 commit {commit_id}\tvendor/lib\n" in out
