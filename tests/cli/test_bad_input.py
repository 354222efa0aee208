"""Bad input is skipped or refused with one clear line, never a traceback,
never a write outside the bucket, never a change to a folder that is not ours."""

from __future__ import annotations

import os

import orjson
import pytest

from opentraces.ids import trace_id_for

from bucketrig import REAL_CLAUDE, capture, one_line_error, run_cli_process, tree_digest, verify_full

REAL_TRACE = trace_id_for("claude-code", "164b9ad1-4c1b-4602-9102-5276951a1594")


def rows(path=REAL_CLAUDE):
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def write_rows(path, objs, edit=None):
    out = []
    for o in objs:
        o = dict(o)
        if edit:
            edit(o)
        out.append(orjson.dumps(o))
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


def outside_snapshot(tmp_path, bucket):
    """Everything under tmp_path except the bucket itself."""
    return tree_digest(tmp_path, exclude=(os.path.relpath(bucket, tmp_path),))


def test_malformed_lines_are_skipped_and_counted(tmp_path, cli):
    lines = REAL_CLAUDE.read_bytes().splitlines(keepends=True)
    bad = (lines[:3] + [b'{"type": "user", "broken json\n'] + lines[3:6]
           + [b'\xff\xfe{"not": "utf-8 \xc3"}\n'] + lines[6:9] + [b'["an", "array"]\n'] + lines[9:])
    f = tmp_path / "bad.jsonl"
    f.write_bytes(b"".join(bad))
    bucket = tmp_path / "bucket"
    res = cli("--bucket", bucket, "capture", "claude-code", f, "--json")
    assert res.exit_code == 0, res.stderr
    cap = res.json["capture"]
    assert cap["lines_skipped"] == 3
    assert cap["skipped"] == []
    [item] = cap["captured"]
    assert item["trace_id"] == REAL_TRACE
    assert [n for n, _reason in item["skipped_lines"]] == [4, 8, 12]
    assert all(reason for _n, reason in item["skipped_lines"])
    # the trace is still complete: same steps and the same patch as the clean session
    clean = tmp_path / "clean"
    capture(cli, clean, REAL_CLAUDE)
    a = orjson.loads(next(bucket.glob(f"traces/v1/*/{REAL_TRACE}/trace.json")).read_bytes())
    z = orjson.loads(next(clean.glob(f"traces/v1/*/{REAL_TRACE}/trace.json")).read_bytes())
    assert a["steps"] == z["steps"]
    assert a["patches"] == z["patches"]
    # the bad bytes are kept verbatim as the raw source
    blob = next(bucket.glob("blobs/v1/*/raw/*/*.blob"), None)
    assert any(p.read_bytes() == f.read_bytes() for p in bucket.glob("blobs/v1/*/raw/*/*.blob")), blob
    # text mode says so too
    text = cli("--bucket", tmp_path / "b2", "capture", "claude-code", f)
    assert text.exit_code == 0 and "3 unreadable line(s) skipped" in text.stdout
    assert verify_full(cli, bucket)["exit"] == 0


def test_lone_surrogate_and_non_utf8_content_is_captured(tmp_path, cli):
    objs = rows()
    f = tmp_path / "s.jsonl"
    raw = b"\n".join(orjson.dumps(o) for o in objs) + b"\n"
    # a valid JSON escape that is not valid UTF-8 once decoded
    raw = raw.replace(b"add a farewell", b"add a \\ud800 farewell", 1)
    f.write_bytes(raw)
    bucket = tmp_path / "bucket"
    cap = capture(cli, bucket, f)["capture"]
    assert len(cap["captured"]) == 1
    assert verify_full(cli, bucket)["exit"] == 0


@pytest.mark.parametrize("content,why", [
    (b"", "empty"),
    (bytes(range(256)) * 64, "binary"),
    (b"\x1f\x8b\x08\x00" + os.urandom(2000), "gzip"),
    (b"\n\n\n", "blank"),
    (b'{"type": "summary", "summary": "no session id here"}\n', "no session"),
    (b'{"sessionId": "abc", "type": "user"', "truncated"),
])
def test_unusable_files_are_skipped_with_a_reason(tmp_path, cli, content, why):
    bucket = tmp_path / "bucket"
    capture(cli, bucket, REAL_CLAUDE)
    before = tree_digest(bucket, exclude=(".state",))
    f = tmp_path / f"{why.replace(' ', '-')}.jsonl"
    f.write_bytes(content)
    res = cli("--bucket", bucket, "capture", "claude-code", f, REAL_CLAUDE, "--json")
    assert res.exit_code == 0, res.stderr
    cap = res.json["capture"]
    assert [s["path"] for s in cap["skipped"]] == [str(f)]
    assert cap["skipped"][0]["reason"].strip()
    assert "\n" not in cap["skipped"][0]["reason"]
    assert cap["captured"] == [] and cap["batches"] == []
    assert tree_digest(bucket, exclude=(".state",)) == before
    assert verify_full(cli, bucket)["exit"] == 0
    text = cli("--bucket", bucket, "capture", "claude-code", f)
    assert text.exit_code == 0 and f"skipped  {f}" in text.stdout


def test_traversal_session_id_is_refused_and_writes_nothing_outside(tmp_path, cli):
    bucket = tmp_path / "bucket"
    f = write_rows(tmp_path / "evil.jsonl", rows(),
                   lambda o: o.__setitem__("sessionId", "../../etc/passwd") if "sessionId" in o else None)
    outside = outside_snapshot(tmp_path, bucket)
    res = cli("--bucket", bucket, "capture", "claude-code", f, "--json")
    assert res.exit_code == 0, res.stderr
    cap = res.json["capture"]
    assert cap["captured"] == []
    [skip] = cap["skipped"]
    assert skip["path"] == str(f)
    assert "session id" in skip["reason"] and "../../etc/passwd" in skip["reason"]
    assert outside_snapshot(tmp_path, bucket) == outside
    assert not list(bucket.glob("traces/**/*.json"))


@pytest.mark.parametrize("cwd", ["/workspace/../../../etc", "../../../../etc", "/tmp/../..", "..", "/"])
def test_traversal_cwd_stays_inside_the_bucket(tmp_path, cli, cwd, monkeypatch):
    bucket = tmp_path / "bucket"
    sid = f"cwd-{abs(hash(cwd)) % 10**8}"

    def edit(o):
        if "sessionId" in o:
            o["sessionId"] = sid
        if "cwd" in o:
            o["cwd"] = cwd

    f = write_rows(tmp_path / "evil.jsonl", rows(), edit)
    work = tmp_path / "a" / "b" / "c" / "d"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    outside = outside_snapshot(tmp_path, bucket)
    res = cli("--bucket", bucket, "capture", "claude-code", f, "--json")
    assert res.exit_code == 0, res.stderr
    cap = res.json["capture"]
    assert len(cap["captured"]) + len(cap["skipped"]) == 1
    assert outside_snapshot(tmp_path, bucket) == outside
    for p in bucket.rglob("*"):
        assert os.path.realpath(p).startswith(os.path.realpath(bucket) + os.sep)
    for project in (bucket / "traces/v1").iterdir() if (bucket / "traces/v1").exists() else []:
        assert project.name not in ("", ".", "..") and not project.name.startswith(".")
    assert verify_full(cli, bucket)["exit"] == 0


def test_relative_cwd_does_not_depend_on_where_capture_runs(tmp_path, cli, monkeypatch):
    """A relative cwd in a transcript must not be resolved against the capturing process."""
    def edit(o):
        if "cwd" in o:
            o["cwd"] = "project"

    f = write_rows(tmp_path / "rel.jsonl", rows(), edit)
    projects = []
    for where in ("x", "y"):
        (tmp_path / where).mkdir()
        monkeypatch.chdir(tmp_path / where)
        cap = capture(cli, tmp_path / f"bucket-{where}", f)["capture"]
        projects.append(cap["captured"][0]["project"])
    assert projects[0] == projects[1]


# ------------------------------------------------------------- wrong buckets

COMMANDS = [
    ("bucket", "status"),
    ("bucket", "status", "--json"),
    ("bucket", "manifest"),
    ("bucket", "manifest", "--heal"),
    ("bucket", "verify", "--full"),
    ("bucket", "verify", "--sample", "3"),
    ("bucket", "repair"),
    ("bucket", "rebuild"),
    ("bucket", "rebuild", "--substrate", "trail"),
    ("bucket", "prune"),
    ("bucket", "prune", "--dry-run"),
    ("trace", "list"),
    ("trace", "get", "abcd"),
    ("ctx", "abcd"),
    ("capture", "claude-code", str(REAL_CLAUDE)),
    ("capture", "claude-code", str(REAL_CLAUDE), "--json"),
]


def _snapshot(root):
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return tree_digest(root), out


def test_folder_with_unrelated_files_is_refused(tmp_path, cli):
    folder = tmp_path / "my-documents"
    (folder / "notes").mkdir(parents=True)
    (folder / "todo.txt").write_text("buy milk\n")
    (folder / "notes" / "a.md").write_text("# a\n")
    before = _snapshot(folder)
    for args in COMMANDS:
        res = cli("--bucket", folder, *args)
        assert res.exit_code == 2, (args, res.exit_code, res.stdout, res.stderr)
        line = one_line_error(res.stderr)
        assert "not an opentraces bucket" in line, line
        assert _snapshot(folder) == before, args
        if "--json" in args:
            assert res.json["status"] == "error" and res.json["exit_code"] == 2


def _reference_bucket(root, sort_keys=True):
    """A bucket as PyPI opentraces 0.4.x writes it (manifest v2; see research/)."""
    trace = root / "traces/v1/demo-app/0b6f2c4e-2d33-4d0e-9a63-2b1d1c9f0a11"
    trace.mkdir(parents=True)
    (trace / "trace.json").write_text('{"trace_id": "0b6f2c4e-2d33-4d0e-9a63-2b1d1c9f0a11"}\n')
    (root / "events/v1/demo-app").mkdir(parents=True)
    (root / "events/v1/demo-app/000000000001.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 20)
    manifest = {
        "traces": [{"project_slug": "demo-app", "trace_id": "0b6f2c4e-2d33-4d0e-9a63-2b1d1c9f0a11",
                    "trace_path": "traces/v1/demo-app/0b6f2c4e-2d33-4d0e-9a63-2b1d1c9f0a11/trace.json",
                    "lifecycle": "provisional", "digest": "0" * 64}],
        "bucket_root": "demo-app", "root": str(root), "generated_at": "2025-05-01T00:00:00Z",
        "updated_at": "2025-05-01T00:00:00Z", "security_version": 3,
        "events_v1": {"schema_version": "opentraces.bucket.events.v1", "batch_count": 1},
        "schema_version": "opentraces.bucket.manifest.v2",
    }
    opt = orjson.OPT_INDENT_2 | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    (root / "manifest.json").write_bytes(orjson.dumps(manifest, option=opt) + b"\n")
    return root


@pytest.mark.parametrize("sort_keys", [True, False])
def test_reference_implementation_bucket_is_refused_untouched(tmp_path, cli, sort_keys):
    ref = _reference_bucket(tmp_path / "ref-bucket", sort_keys)
    before = _snapshot(ref)
    for args in COMMANDS:
        res = cli("--bucket", ref, *args)
        assert res.exit_code == 2, (args, res.exit_code, res.stdout, res.stderr)
        line = one_line_error(res.stderr)
        assert "reference implementation" in line, (args, line)
        assert _snapshot(ref) == before, args


def test_reference_bucket_refused_as_a_process_and_at_the_default_location(tmp_path):
    env = os.environ.copy()
    _reference_bucket(tmp_path / "ot" / "bucket")
    env["OPENTRACES_HOME"] = str(tmp_path / "ot")
    before = _snapshot(tmp_path / "ot")
    for args in (("bucket", "status"), ("capture", "claude-code", REAL_CLAUDE)):
        r = run_cli_process(*args, env=env)
        assert r.returncode == 2
        assert r.stdout == b""
        line = one_line_error(r.stderr.decode())
        assert "reference implementation" in line
    assert _snapshot(tmp_path / "ot") == before


def test_nonexistent_path_exits_2(tmp_path, cli):
    bucket = tmp_path / "bucket"
    missing = tmp_path / "no-such-session.jsonl"
    for extra in ((), ("--json",)):
        res = cli("--bucket", bucket, "capture", "claude-code", missing, *extra)
        assert res.exit_code == 2
        line = one_line_error(res.stderr)
        assert str(missing) in line
    assert not bucket.exists()
    # the same with a good file alongside: nothing is captured, nothing is created
    res = cli("--bucket", bucket, "capture", "claude-code", REAL_CLAUDE, missing)
    assert res.exit_code == 2
    one_line_error(res.stderr)
    assert not bucket.exists()


def test_bucket_path_that_is_a_file_is_refused(tmp_path, cli):
    f = tmp_path / "not-a-folder"
    f.write_text("hello\n")
    for args in (("bucket", "status"), ("capture", "claude-code", REAL_CLAUDE), ("bucket", "repair")):
        res = cli("--bucket", f, *args)
        assert res.exit_code == 2, (args, res.stderr)
        one_line_error(res.stderr)
    assert f.read_text() == "hello\n"


def test_usage_errors_exit_2(tmp_path, cli):
    res = cli("--bucket", tmp_path / "b", "bucket", "verify", "--full", "--sample", "3")
    assert res.exit_code == 2
    res = cli("--bucket", tmp_path / "b", "capture", "no-such-agent", REAL_CLAUDE)
    assert res.exit_code == 2
    res = cli("--bucket", tmp_path / "b", "bucket", "rebuild", "--substrate", "nope")
    assert res.exit_code == 2
    assert not (tmp_path / "b").exists()


def _project_repo(root):
    """A developer's project checkout: a Git repository with its own files."""
    from bucketrig import git

    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hi')\n")
    (root / "README.md").write_text("# app\n")
    git("init", "-q", cwd=root)
    git("add", ".", cwd=root)
    git("commit", "-q", "-m", "init", cwd=root)
    return root


def _web_extension(root):
    """A folder whose manifest.json is somebody else's."""
    root.mkdir(parents=True)
    (root / "manifest.json").write_text('{\n  "manifest_version": 3,\n  "name": "my extension"\n}\n')
    (root / "background.js").write_text("console.log(1)\n")
    return root


def _analytics(root):
    """A folder that happens to hold 'events' and 'traces' folders of its own."""
    (root / "events").mkdir(parents=True)
    (root / "events" / "2024-01.csv").write_text("a,b\n")
    (root / "traces").mkdir()
    (root / "traces" / "run1.txt").write_text("x\n")
    (root / "report.md").write_text("# r\n")
    return root


@pytest.mark.parametrize("make", [_project_repo, _web_extension, _analytics])
def test_folders_that_look_a_bit_like_buckets_are_refused(tmp_path, cli, make):
    folder = make(tmp_path / "folder")
    before = _snapshot(folder)
    for args in COMMANDS:
        res = cli("--bucket", folder, *args)
        assert res.exit_code == 2, (args, res.exit_code, res.stdout, res.stderr)
        line = one_line_error(res.stderr)
        assert "not an opentraces bucket" in line, (args, line)
        assert _snapshot(folder) == before, args


def test_a_real_bucket_is_still_accepted_after_the_mirror_exists(tmp_path, cli):
    bucket = tmp_path / "bucket"
    capture(cli, bucket, REAL_CLAUDE)
    for args in COMMANDS:
        res = cli("--bucket", bucket, *args)
        assert res.exit_code in (0, 2), (args, res.stderr)
        if res.exit_code == 2:  # only the made-up trace id of COMMANDS
            assert "abcd" in res.stderr


def test_session_file_with_non_utf8_name_does_not_block_the_others(tmp_path, cli):
    import shutil

    folder = tmp_path / "sessions"
    folder.mkdir()
    good = folder / REAL_CLAUDE.name
    shutil.copyfile(REAL_CLAUDE, good)
    odd = os.path.join(os.fsencode(folder), b"odd-\xff\xfe.jsonl")
    with open(odd, "wb") as f:
        f.write(write_rows(tmp_path / "x.jsonl", rows(),
                           lambda o: o.__setitem__("sessionId", "odd-name") if "sessionId" in o else None).read_bytes())
    bucket = tmp_path / "bucket"
    for extra in (("--json",), ()):
        res = cli("--bucket", bucket, "capture", "claude-code", folder, *extra)
        assert res.exit_code == 0, (res.stdout, res.stderr)
    res = cli("--bucket", bucket, "capture", "claude-code", folder, "--json")
    doc = res.json["capture"]  # one valid JSON object
    assert str(good) in doc["unchanged"] + [c["path"] for c in doc["captured"]]
    assert REAL_TRACE in {p.name for p in bucket.glob("traces/v1/*/*")}
    assert verify_full(cli, bucket)["exit"] == 0


def test_bucket_path_with_non_utf8_name(tmp_path, cli):
    bucket = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"bucket-\xff"))
    for args in (("bucket", "status", "--json"), ("capture", "claude-code", str(REAL_CLAUDE), "--json"),
                 ("bucket", "status"), ("bucket", "verify", "--full", "--json")):
        res = cli("--bucket", bucket, *args)
        assert res.exit_code == 0, (args, res.stdout, res.stderr)
        if "--json" in args:
            assert res.json["status"] == "ok"
