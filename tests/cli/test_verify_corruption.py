"""``bucket verify --full`` recomputes every hash: each kind of damage is found,
named by its kind and the relative path of the damaged file, with exit 1.
"""

from __future__ import annotations

import gzip

import orjson
import pytest

from opentraces.batches import GZIP_HEADER, NAME_RE
from opentraces.encoding import address, canonical_json, gzip_bytes
from opentraces.ids import trace_id_for

from bucketrig import REAL_CLAUDE, BATCHES, batch_files, capture, claude_sessions, file_problems, tree_digest, verify_full

REAL_TRACE = trace_id_for("claude-code", "164b9ad1-4c1b-4602-9102-5276951a1594")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A bucket with two batches: the real session, then the authored ones."""
    from click.testing import CliRunner

    from opentraces.cli.main import cli as group

    root = tmp_path_factory.mktemp("pristine") / "bucket"
    runner = CliRunner()
    for files in ([REAL_CLAUDE], [p for p in claude_sessions() if p != REAL_CLAUDE]):
        res = runner.invoke(group, ["--bucket", str(root), "capture", "claude-code", *map(str, files), "--json"],
                            catch_exceptions=False)
        assert res.exit_code == 0, res.output
    assert len(batch_files(root)) == 2
    return root


@pytest.fixture
def bucket(pristine, tmp_path):
    import shutil

    b = tmp_path / "bucket"
    shutil.copytree(pristine, b)
    return b


def rel(root, path):
    return path.relative_to(root).as_posix()


def real_project(root):
    return next((root / "traces/v1").glob(f"*/{REAL_TRACE}")).parent.name


def blobs(root, kind, project=None):
    pat = f"blobs/v1/{project or '*'}/{kind}/*/*"
    return sorted(root.glob(pat))


def flip(path, pos):
    data = bytearray(path.read_bytes())
    data[pos] ^= 0x20
    path.write_bytes(bytes(data))


def only_problem(v):
    assert v["exit"] == 1, v
    problems = file_problems(v)
    assert len(problems) == 1, v["problems"]
    return problems[0]


def test_clean_bucket_verifies(bucket, cli):
    v = verify_full(cli, bucket)
    assert v["exit"] == 0 and v["ok"] is True and v["problems"] == []
    assert v["full"] is True and v["batches_checked"] == 2 and v["blobs_checked"] == v["blobs_total"] > 0
    res = cli("--bucket", bucket, "bucket", "verify", "--full")
    assert res.exit_code == 0 and res.stdout.strip().endswith("ok")


@pytest.mark.parametrize("pos", [4, 9, 12, "mid", -6, -1])
def test_flipped_byte_in_context_blob(bucket, cli, pos):
    target = blobs(bucket, "context", real_project(bucket))[0]
    size = target.stat().st_size
    flip(target, size // 2 if pos == "mid" else pos)
    p = only_problem(verify_full(cli, bucket))
    assert p["kind"] in ("blob_gzip", "blob_hash")
    assert p["path"] == rel(bucket, target)


@pytest.mark.parametrize("pos", [0, "mid", -1])
def test_flipped_byte_in_raw_blob(bucket, cli, pos):
    target = max(blobs(bucket, "raw", real_project(bucket)), key=lambda p: p.stat().st_size)
    flip(target, target.stat().st_size // 2 if pos == "mid" else pos)
    p = only_problem(verify_full(cli, bucket))
    assert (p["kind"], p["path"]) == ("blob_hash", rel(bucket, target))


def _batch_problem(v, batch_rel):
    assert v["exit"] == 1
    hits = [p for p in v["problems"] if p["path"] == batch_rel]
    assert len(hits) == 1, v["problems"]
    # every other finding is a projection of the events that became unreadable
    others = [p for p in file_problems(v) if p["path"] != batch_rel]
    assert all(p["path"].startswith("traces/v1/") for p in others), others
    return hits[0]


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("pos", [5, 9, "mid", -3])
def test_flipped_byte_in_batch(bucket, cli, which, pos):
    target = batch_files(bucket)[which]
    flip(target, target.stat().st_size // 2 if pos == "mid" else pos)
    p = _batch_problem(verify_full(cli, bucket), rel(bucket, target))
    assert p["kind"] in ("batch_gzip", "batch_hash")
    # read-side commands that need the batch stop with exit 5 (corruption), not a traceback
    # (prune refuses; see test_prune.py)


@pytest.mark.parametrize("keep", [0, 10, 100, -1, -8])
def test_truncated_batch(bucket, cli, keep):
    target = batch_files(bucket)[1]
    data = target.read_bytes()
    target.write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])
    p = _batch_problem(verify_full(cli, bucket), rel(bucket, target))
    assert p["kind"] == "batch_gzip"
    assert "gzip" in p["detail"]


@pytest.mark.parametrize("keep", [0, 10, -1, -8])
def test_truncated_context_blob(bucket, cli, keep):
    target = blobs(bucket, "context")[-1]
    data = target.read_bytes()
    target.write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])
    p = only_problem(verify_full(cli, bucket))
    assert (p["kind"], p["path"]) == ("blob_gzip", rel(bucket, target))


@pytest.mark.parametrize("kind", ["raw", "context"])
def test_deleted_blob_is_dangling(bucket, cli, kind):
    project = real_project(bucket)
    trail = [orjson.loads(x) for x in gzip.decompress(
        (bucket / "traces/v1" / project / REAL_TRACE / "trail.jsonl.gz").read_bytes()).splitlines()]
    ctx = [orjson.loads(x) for x in gzip.decompress(
        (bucket / "traces/v1" / project / REAL_TRACE / "context.jsonl.gz").read_bytes()).splitlines()]
    if kind == "raw":
        addr = next(e for e in trail if e["kind"] == "trail.patch")["payload"]["before"]
        suffix = ".blob"
    else:
        addr = next(e for e in ctx if e["kind"] == "context.node" and e["payload"]["pack"])["payload"]["pack"]
        suffix = ".json.gz"
    hexd = addr[7:]
    target = bucket / "blobs/v1" / project / kind / hexd[:2] / f"{hexd}{suffix}"
    target.unlink()
    p = only_problem(verify_full(cli, bucket))
    assert (p["kind"], p["path"]) == ("dangling_blob", rel(bucket, target))


def _rewrite_batch(target, edit):
    raw = gzip.decompress(target.read_bytes())
    lines = raw.split(b"\n")
    i = next(i for i, line in enumerate(lines[1:], 1) if line and orjson.loads(line)["kind"] == "trace.step")
    ev = orjson.loads(lines[i])
    edit(ev)
    lines[i] = canonical_json(ev)
    return b"\n".join(lines)


def test_edited_event_line_in_place(bucket, cli):
    """One event field changed and the batch re-gzipped under its old name."""
    target = batch_files(bucket)[0]

    def edit(ev):
        ev["payload"]["record"]["content"] = "something the agent never said"

    target.write_bytes(gzip_bytes(_rewrite_batch(target, edit)))
    p = _batch_problem(verify_full(cli, bucket), rel(bucket, target))
    assert p["kind"] in ("batch_hash", "event_id")


def test_edited_event_line_renamed_to_match(bucket, cli):
    """A forger who also renames the batch is caught by the recomputed event id."""
    target = batch_files(bucket)[0]
    raw = _rewrite_batch(target, lambda ev: ev.update(time="2001-01-01T00:00:00Z"))
    seq = NAME_RE.match(target.name).group(1)
    forged = target.with_name(f"{seq}-{address(raw)[7:23]}.jsonl.gz")
    target.unlink()
    forged.write_bytes(gzip_bytes(raw))
    v = verify_full(cli, bucket)
    assert v["exit"] == 1
    hits = [p for p in v["problems"] if p["path"] == rel(bucket, forged)]
    assert [p["kind"] for p in hits] == ["event_id"]


def test_edited_event_id_recomputed_breaks_chain(bucket, cli):
    """Even a consistent forgery (new event id, new name) fails the writer's signature; one that
    also drops the signature breaks the writer's hash chain."""
    from opentraces.events import event_id_of

    first, second = batch_files(bucket)

    def edit(ev):
        ev["payload"]["record"]["content"] = "forged"
        ev["event_id"] = event_id_of(ev)

    raw = _rewrite_batch(first, edit)
    forged = first.with_name(f"{NAME_RE.match(first.name).group(1)}-{address(raw)[7:23]}.jsonl.gz")
    first.unlink()
    forged.write_bytes(gzip_bytes(raw))
    v = verify_full(cli, bucket)
    assert v["exit"] == 1
    assert [p["kind"] for p in v["problems"] if p["path"] == rel(bucket, forged)] == ["batch_signature"]

    head, rest = raw.split(b"\n", 1)
    unsigned = canonical_json({k: x for k, x in orjson.loads(head).items() if k != "sig"}) + b"\n" + rest
    forged.unlink()
    forged = first.with_name(f"{NAME_RE.match(first.name).group(1)}-{address(unsigned)[7:23]}.jsonl.gz")
    forged.write_bytes(gzip_bytes(unsigned))
    v = verify_full(cli, bucket)
    assert v["exit"] == 1
    chain = [p for p in v["problems"] if p["kind"] == "batch_chain"]
    assert [p["path"] for p in chain] == [rel(bucket, second)]


def test_deleted_batch_breaks_chain(bucket, cli):
    first, second = batch_files(bucket)
    first.unlink()
    v = verify_full(cli, bucket)
    assert v["exit"] == 1
    assert any(p["kind"] == "batch_chain" and p["path"] == rel(bucket, second) for p in v["problems"]), v["problems"]


def test_edited_trace_json(bucket, cli):
    project = real_project(bucket)
    target = bucket / "traces/v1" / project / REAL_TRACE / "trace.json"
    doc = orjson.loads(target.read_bytes())
    doc["task"]["description"] = "rewritten history"
    target.write_bytes(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n")
    p = only_problem(verify_full(cli, bucket))
    assert (p["kind"], p["path"]) == ("projection_mismatch", rel(bucket, target))


def test_edited_companion_and_history(bucket, cli):
    project = real_project(bucket)
    base = bucket / "traces/v1" / project / REAL_TRACE
    diff = next((base / "trace_history").iterdir())
    diff.write_text(diff.read_text().replace("goodbye", "farewell"))
    comp = base / "context.jsonl.gz"
    comp.write_bytes(gzip_bytes(gzip.decompress(comp.read_bytes())[:-1]))
    v = verify_full(cli, bucket)
    assert v["exit"] == 1
    assert sorted((p["kind"], p["path"]) for p in file_problems(v)) == sorted([
        ("projection_mismatch", rel(bucket, diff)), ("projection_mismatch", rel(bucket, comp))])


def test_edited_manifest_and_index(bucket, cli):
    m = bucket / "manifest.json"
    data = m.read_bytes()
    n = orjson.loads(data)["summary"]["trace_count"]
    edited = data.replace(b'"trace_count": %d' % n, b'"trace_count": %d' % (n + 1))
    assert edited != data
    m.write_bytes(edited)
    idx = bucket / "events/v1/index.json"
    idx.write_bytes(idx.read_bytes() + b"\n")
    v = verify_full(cli, bucket)
    assert v["exit"] == 1
    assert sorted(p["path"] for p in file_problems(v)) == ["events/v1/index.json", "manifest.json"]


def test_verify_reports_in_text_mode_and_changes_nothing(bucket, cli):
    target = blobs(bucket, "raw")[0]
    flip(target, 0)
    before = tree_digest(bucket)
    res = cli("--bucket", bucket, "bucket", "verify", "--full")
    assert res.exit_code == 1
    assert rel(bucket, target) in res.stdout and "blob_hash" in res.stdout
    assert tree_digest(bucket) == before


def test_canonical_gzip_header_constant():
    assert gzip_bytes(b"anything")[:10] == GZIP_HEADER


def _leaf_blob(bucket):  # the context blob a ctx read of the last step needs
    project = real_project(bucket)
    ctx = [orjson.loads(x) for x in gzip.decompress(
        (bucket / "traces/v1" / project / REAL_TRACE / "context.jsonl.gz").read_bytes()).splitlines()]
    node = max((e for e in ctx if e["kind"] == "context.node" and e["payload"]["pack"]), key=lambda e: e["step"])
    hexd = node["payload"]["pack"][7:]  # the pack blob holding the node's messages
    return bucket / "blobs/v1" / project / "context" / hexd[:2] / f"{hexd}.json.gz"


def test_readers_report_missing_and_damaged_blobs_with_their_exit_codes(bucket, cli):
    from bucketrig import one_line_error

    leaf = _leaf_blob(bucket)
    saved = leaf.read_bytes()
    leaf.unlink()
    res = cli("--bucket", bucket, "ctx", REAL_TRACE[:8])
    assert res.exit_code == 4, res.stderr  # data needed but not present offline
    assert "prefetch" in one_line_error(res.stderr)
    leaf.write_bytes(saved[:-3])
    res = cli("--bucket", bucket, "ctx", REAL_TRACE[:8])
    assert res.exit_code == 5, res.stderr  # corruption that stops the command
    one_line_error(res.stderr)
    leaf.write_bytes(saved)
    assert cli("--bucket", bucket, "ctx", REAL_TRACE[:8]).exit_code == 0

    tj = bucket / "traces/v1" / real_project(bucket) / REAL_TRACE / "trace.json"
    tj.write_bytes(tj.read_bytes()[:50])
    res = cli("--bucket", bucket, "trace", "get", REAL_TRACE[:8])
    assert res.exit_code == 5
    assert "repair" in one_line_error(res.stderr)
