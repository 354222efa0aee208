"""``task.repository_url`` in one form whatever the remote was written as, never with credentials."""

import pytest

from opentraces.repourl import canonical_url, repository_name


@pytest.mark.parametrize("url,want", [
    ("git@github.com:acme/app.git", "https://github.com/acme/app"),
    ("ssh://git@github.com:22/acme/app", "https://github.com/acme/app"),
    ("https://github.com/acme/app/", "https://github.com/acme/app"),
    ("https://user:tok3n@gitlab.example.com/g/sub/app.git", "https://gitlab.example.com/g/sub/app"),
    ("git://git.example.org/team/repo", "https://git.example.org/team/repo"),
    ("HTTPS://GitHub.com/Acme/App.git", "https://github.com/Acme/App"),
    ("/srv/git/app.git", None), ("file:///srv/git/app.git", None), ("C:/Users/me/app", None),
    ("../app", None), ("https://github.com/../etc", None), ("", None), (None, None),
])
def test_canonical_url(url, want):
    assert canonical_url(url) == want
    if want:
        assert "tok3n" not in want and "@" not in want


def test_repository_name():
    assert repository_name("https://github.com/acme/app") == "acme/app"
    assert repository_name("https://gitlab.example.com/g/sub/app") == "g/sub/app"
    assert repository_name("https://example.com/app") is None and repository_name(None) is None
