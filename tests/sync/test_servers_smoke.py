"""Each server fixture really serves: plain git pushes and lists a ref through it."""

import subprocess


def test_each_server_accepts_a_plain_git_push(any_remote, tmp_path):
    r = any_remote
    work = tmp_path / "w"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "a").write_text("x\n")
    env = r.git_env()
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@e")
    subprocess.run(["git", "-C", str(work), "add", "a"], check=True, env=env)
    subprocess.run(["git", "-C", str(work), "commit", "-qm", "x"], check=True, env=env)
    done = subprocess.run(["git", "-C", str(work), "push", r.url, "main:refs/heads/main"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    ls = subprocess.run(["git", "ls-remote", r.url], capture_output=True, text=True, env=env)
    assert "refs/heads/main" in ls.stdout, ls.stderr
    assert subprocess.run(["git", "--git-dir", str(r.repo), "rev-parse", "main"], capture_output=True).returncode == 0
