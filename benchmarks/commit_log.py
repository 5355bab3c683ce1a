"""The `log` scenario (#28): what a read costs once the root has a commit log and checkpoints,
next to the same root read by listing it whole (the root without its log origin: what every
read did before the log), side by side in one run.

- local root of 100,000 runs (10,000 with --quick): a new reader's first `runs()` (from the
  compaction's checkpoint; a local reader also lists the root once at start), a warm `runs()`
  with nothing new, `history()` of one run, a warm `runs()` after 10 new runs;
- S3 API (moto's server on 127.0.0.1) with 10,000 runs (1,000 with --quick): the same reads,
  timed and counted in requests. The root is built on a local disk and uploaded (a PUT to moto
  costs ~10 ms); the id claims and writer claims, which no reader reads, are not uploaded.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import runlake

Rows = list[tuple[str, str, str]]
WINDOW = 1.0


def _build(path: str, runs: int) -> None:
    lake = runlake.Lake(path)
    for i in range(runs):
        run = lake.init("big", id=f"r{i:06d}")
        run.log({"loss": float(i)})
        run.log({"loss": float(i) / 2})
        run.finish()
    time.sleep(2 * WINDOW)  # the entries older than the window: settled (a benchmark may sleep)
    lake.compact(progress=False, grace=0)
    lake.close()


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _reads(root: str, runs: int, count: Callable[[], dict[str, int]] | None) -> dict[str, Any]:
    """The four reads, each timed (and counted, on S3)."""
    out: dict[str, Any] = {}

    def measure(name: str, fn: Callable[[], object], repeat: int = 1) -> None:
        before = count() if count else {}
        times = [_timed(fn) for _ in range(repeat)]
        after = count() if count else {}
        requests = {k: (after.get(k, 0) - before.get(k, 0)) // repeat for k in after}
        out[name] = {
            "ms": statistics.median(times) * 1e3,
            "requests": {k: v for k, v in requests.items() if v},
        }

    lake = runlake.Lake(root)
    measure("new reader runs()", lambda: lake.runs())
    time.sleep(2 * WINDOW)
    measure("warm runs(), nothing new", lambda: lake.runs(), repeat=5)
    measure("history() of one run", lambda: lake.history(f"r{runs // 2:06d}"), repeat=5)
    writer = runlake.Lake(root)
    for i in range(10):
        writer.init("big", id=f"new{i}-{time.time_ns()}").finish()
    writer.close()
    measure("warm runs() after 10 new runs", lambda: lake.runs())
    lake.close()
    return out


def _listing_only(root_dir: str) -> None:
    """The same root as a release before the log left it: no origin, no checkpoints."""
    shutil.rmtree(os.path.join(root_dir, "_log"), ignore_errors=True)
    shutil.rmtree(os.path.join(root_dir, "_catalog"), ignore_errors=True)


def _moto() -> tuple[subprocess.Popen[bytes], str]:
    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def log(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    os.environ["RUNLAKE_LOG_WINDOW"] = str(WINDOW)
    os.environ["RUNLAKE_LOG_GRACE"] = "0"  # compaction keeps only the log after its checkpoint
    local_runs, s3_runs = (10_000, 1_000) if quick else (100_000, 10_000)
    out: dict[str, Any] = {}
    rows: Rows = []
    # ---- a local root
    local = os.path.join(path, "local")
    t0 = time.perf_counter()
    _build(local, local_runs)
    built = time.perf_counter() - t0
    out["local"] = {"runs": local_runs, "build_s": built, "log": _reads(local, local_runs, None)}
    shutil.copytree(local, local + "-listed", ignore=shutil.ignore_patterns("_log", "_catalog"))
    out["local"]["listing"] = _reads(local + "-listed", local_runs, None)
    for name, value in out["local"]["log"].items():
        rows.append(
            (
                "log",
                f"local {local_runs:,} runs: {name}",
                f"{value['ms']:.1f} ms with the log, {out['local']['listing'][name]['ms']:.1f} ms listing the root",
            )
        )
    # ---- the S3 API
    try:
        import s3fs
    except ImportError:
        return out, rows
    proc, endpoint = _moto()
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    os.environ["RUNLAKE_STORAGE_OPTIONS"] = json.dumps({"client_kwargs": {"endpoint_url": endpoint}})
    try:
        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
        fs.call_s3("create_bucket", Bucket="bench")
        source = os.path.join(path, "s3-source")
        _build(source, s3_runs)
        files = [
            p
            for p in glob.glob(f"{source}/**", recursive=True)
            if os.path.isfile(p) and not any(x in p for x in ("/_catalog/", "/_ids/", "/writer-"))
        ]
        t0 = time.perf_counter()
        fs.put(files, [f"bench/log/{os.path.relpath(p, source)}" for p in files], batch_size=256)
        upload = time.perf_counter() - t0
        counts: collections.Counter[str] = collections.Counter()
        fs.connect()
        fs.s3.meta.events.register("before-call.s3", lambda model, **_: counts.update([model.name]))
        os.environ["RUNLAKE_CACHE_DIR"] = os.path.join(path, "cache-new-reader")
        out["s3"] = {
            "runs": s3_runs,
            "upload_s": upload,
            "log": _reads("s3://bench/log", s3_runs, lambda: dict(counts)),
        }
        for name, value in out["s3"]["log"].items():
            total = sum(value["requests"].values())
            rows.append(
                (
                    "log",
                    f"S3 {s3_runs:,} runs: {name}",
                    f"{value['ms']:.1f} ms, {total} requests {value['requests']}",
                )
            )
    finally:
        proc.kill()
        proc.wait()
    return out, rows
