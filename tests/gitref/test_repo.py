"""Opening and creating repositories; counting packs and loose objects."""

from __future__ import annotations

from pathlib import Path

import pygit2
import pytest

import gitref


def test_init_creates_a_bare_repository_git_can_read(tmp_path, git):
    repo = gitref.open_or_init_bare(tmp_path / "new" / "bucket.git")
    assert repo.is_bare
    done = git(Path(repo.path), "rev-parse", "--is-bare-repository")
    assert done.stdout == b"true\n"


def test_init_in_an_empty_folder_and_reopen(tmp_path):
    (tmp_path / "empty").mkdir()
    repo = gitref.open_or_init_bare(tmp_path / "empty")
    with gitref.ObjectWriter(repo) as w:
        blob = w.blob(b"kept\n")
    again = gitref.open_or_init_bare(tmp_path / "empty")
    assert gitref.read_blob(again, blob) == b"kept\n"
    assert gitref.read_blob(gitref.open_repo(tmp_path / "empty"), blob) == b"kept\n"


def test_existing_non_bare_repository_is_opened_not_reinitialised(tmp_path, git):
    work = pygit2.init_repository(str(tmp_path / "work"))
    opened = gitref.open_or_init_bare(tmp_path / "work")
    assert not opened.is_bare and Path(opened.path) == Path(work.path)


def test_a_folder_with_other_data_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine")
    with pytest.raises(gitref.NotARepositoryError):
        gitref.open_or_init_bare(tmp_path / "data")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["notes.txt"]


def test_open_repo_errors(tmp_path):
    with pytest.raises(gitref.NotFoundError):
        gitref.open_repo(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(gitref.NotARepositoryError):
        gitref.open_repo(tmp_path / "plain")
    inner = gitref.open_or_init_bare(tmp_path / "outer.git")
    (Path(inner.path) / "sub").mkdir()
    with pytest.raises(gitref.NotARepositoryError):  # no search upwards
        gitref.open_repo(Path(inner.path) / "sub")


def test_counts_agree_with_git_count_objects(bare, git):
    d = Path(bare.path)
    for i in range(3):
        git(d, "hash-object", "-w", "--stdin", input=b"loose %d\n" % i)
    for i in range(2):
        with gitref.ObjectWriter(bare) as w:
            w.blob(b"packed %d\n" % i)
    stats = dict(line.split(": ") for line in git(d, "count-objects", "-v").stdout.decode().splitlines())
    assert gitref.loose_object_count(bare) == int(stats["count"]) == 3
    assert gitref.pack_count(bare) == int(stats["packs"]) == 2
    assert len(gitref.pack_paths(bare)) == 2
    assert not any(p.name.startswith("gitref-pack-") for p in d.iterdir())  # temp folders removed
