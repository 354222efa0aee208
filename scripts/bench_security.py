"""The ``--security`` section of scripts/bench.py (issue #9).

- Redaction throughput per tool and per policy, in MB/s of session bytes,
  over generated Claude Code sessions (``gen_sessions``) and over ordinary
  material (this repository's ``git log -p`` and sources as tool output).
- Capture under ``recommended`` next to capture with ``off`` (same sessions,
  fresh buckets, interleaved, medians): the issue's target is within 2x.
- Ordinary material: the fraction of its lines that ``recommended`` changes.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import orjson

from opentraces.bucket import Bucket
from opentraces.capture import capture_paths
from opentraces.capture import claude_code
from opentraces.security.policy import POLICIES
from opentraces.security.redact import Redactor
from opentraces.security.tools import CaptureFilter
from opentraces.security.redact import SECURITY_VERSION

REPO = Path(__file__).resolve().parent.parent
KEY = b"b" * 32


def ordinary_material() -> tuple[bytes, list[str]]:
    log = subprocess.run(["git", "log", "-p", "-n", "200", "--", "*.py", "*.md"], cwd=REPO,
                         capture_output=True).stdout.decode("utf-8", "replace")
    src = "".join(p.read_text() for p in sorted((REPO / "opentraces").rglob("*.py")))
    shell = subprocess.run("ls -la /usr/bin | head -3000; ps aux; df -h; git status; git log --stat -n 50",
                           shell=True, cwd=REPO, capture_output=True).stdout.decode("utf-8", "replace")
    lines = (log + src + shell).splitlines()
    rows = [orjson.dumps({"type": "tool_result", "content": "\n".join(lines[i:i + 40])}) for i in range(0, len(lines), 40)]
    return b"\n".join(rows) + b"\n", lines


def _filter(tools) -> CaptureFilter:
    ready = sorted(t for t in tools if t not in ("trufflehog", "privacy_filter"))
    return CaptureFilter(Redactor(ready, key=KEY, users=["root"]), "classifier" in ready,
                         {"policy": "bench", "tools": ready, "version": SECURITY_VERSION, "not_ready": []})


def bench_security(run, bench) -> None:
    a = run.args
    src, paths, nbytes = bench.sessions(a.cap_sessions, a.cap_steps, a.seed)
    data = [p.read_bytes() for p in paths]
    ordinary, lines = ordinary_material()
    sec = "security"
    res: dict = {"input_bytes": nbytes, "ordinary_bytes": len(ordinary), "tools": {}, "policies": {}}
    bench.log(f"security: {len(paths)} sessions, {bench.mb(nbytes):.1f} MB; ordinary material {bench.mb(len(ordinary)):.1f} MB")
    run.row(sec, f"input: {len(paths)} sessions + ordinary", f"{bench.mb(nbytes):.1f} MB + {bench.mb(len(ordinary)):.1f} MB")
    for label, tools in [*((t, {t}) for t in ("regex", "entropy", "business_logic", "path_anonymizer", "classifier")),
                         *((f"policy {p}", set(ts)) for p, ts in POLICIES.items() if p != "off")]:
        f = _filter(tools)
        times, otimes = [], []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            for d in data:
                r = f.run(d)
                if f.classifier:
                    f.payload(r)
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            r = f.run(ordinary)
            if f.classifier:
                f.payload(r)
            otimes.append(time.perf_counter() - t0)
        sessions_mbps = bench.mb(nbytes) / bench.med(times)
        ordinary_mbps = bench.mb(len(ordinary)) / bench.med(otimes)
        key = "policies" if label.startswith("policy") else "tools"
        res[key][label.replace("policy ", "")] = {"sessions_MBps": sessions_mbps, "ordinary_MBps": ordinary_mbps}
        note = " (trufflehog, privacy_filter not installed here: not timed)" if label == "policy strict" else ""
        run.row(sec, f"redaction, {label}", f"{sessions_mbps:.1f} MB/s sessions, {ordinary_mbps:.1f} MB/s ordinary{note}")
    # ordinary material: lines changed under recommended
    f = _filter(POLICIES["recommended"])
    out = f.run(ordinary).data
    after = "\n".join(orjson.loads(r)["content"] for r in out.splitlines() if r.strip()).splitlines()
    changed = sum(1 for x, y in zip(lines, after) if x != y)
    res["ordinary_lines"] = len(lines)
    res["ordinary_lines_changed"] = changed
    run.row(sec, "ordinary material, lines changed", f"{changed} of {len(lines)} ({100 * changed / len(lines):.3f}%)")
    # capture: recommended vs off
    off, rec = [], []
    for r in range(a.repeats):
        for what in (("off", "rec") if r % 2 == 0 else ("rec", "off")):
            dest = run.fresh(f"sec-{what}-{r}")
            t0 = time.perf_counter()
            rep = capture_paths(Bucket(dest), claude_code, paths, security=None if what == "off" else f)
            (off if what == "off" else rec).append(time.perf_counter() - t0)
            if len(rep.captured) != len(paths):
                raise SystemExit(f"bench: security capture took {len(rep.captured)} of {len(paths)}")
            bench.rmtree(dest)
    ratio = bench.med(rec) / bench.med(off)
    res.update({"capture_off_s": off, "capture_recommended_s": rec, "capture_ratio": ratio})
    run.row(sec, "capture off", f"{bench.mb(nbytes) / bench.med(off):.2f} MB/s ({bench.med(off):.2f} s)")
    run.row(sec, "capture recommended", f"{bench.mb(nbytes) / bench.med(rec):.2f} MB/s ({bench.med(rec):.2f} s)")
    run.row(sec, "ratio recommended / off", f"{ratio:.2f}x", "<= 2x", "ok" if ratio <= 2 else "MISS")
    run.results["security"] = res
