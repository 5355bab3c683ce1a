"""Run the benchmark scenarios, print a table, write benchmarks/results/latest.json.

python -m benchmarks [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

import runlake

RESULTS = Path(__file__).resolve().parent / "results"


def _median(fn: Callable[[], float], repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def _dir_bytes(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        if "_catalog" not in dirpath:
            total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    return total


def ingest(root: str, steps: int) -> dict[str, float]:
    """One run, `steps` x 10 float metrics, one run.log call per step, finish() included."""
    rng = random.Random(0)
    rows = [{f"m{j}": rng.random() for j in range(10)} for _ in range(1000)]
    run = runlake.init("bench", root=root)
    t0 = time.perf_counter()
    for i in range(steps):
        run.log(rows[i % 1000])
    t_log = time.perf_counter() - t0
    run.finish()
    total = time.perf_counter() - t0
    return {
        "points_per_s": steps * 10 / total,
        "us_per_call": t_log / steps * 1e6,
        "seconds": total,
        "bytes_per_point": _dir_bytes(root) / (steps * 10),
    }


def fork(root: str, parent_points: int) -> dict[str, float]:
    """Fork a parent of `parent_points` points at its last step: time and bytes written."""
    run = runlake.init("bench", root=root)
    steps = parent_points // 10
    row = {f"m{j}": float(j) for j in range(10)}
    for _ in range(steps):
        run.log(row)
    run.finish()
    before = _dir_bytes(root)
    t0 = time.perf_counter()
    child = runlake.init("bench", root=root, fork_from=f"{run.id}?_step={steps - 1}")
    elapsed = time.perf_counter() - t0
    written = _dir_bytes(root) - before
    child.finish()
    return {"ms": elapsed * 1e3, "bytes_written": written}


def deep_lineage(root: str, depth: int, steps: int = 1000) -> dict[str, float]:
    """A chain of `depth` forks of `steps` steps each; the leaf's effective history."""
    run = runlake.init("bench", root=root)
    for i in range(steps):
        run.log({"loss": float(i), "acc": 1.0, "lr": 0.1})
    run.finish()
    for d in range(1, depth):
        cut = d * steps - 1
        run = runlake.init("bench", root=root, fork_from=f"{run.id}?_step={cut}")
        for i in range(steps):
            run.log({"loss": float(cut + i), "acc": 1.0, "lr": 0.1})
        run.finish()
    runlake.history(run.id, ["loss"], root=root)  # warm the catalog

    def one_key() -> float:
        t0 = time.perf_counter()
        frame = runlake.history(run.id, ["loss"], root=root)
        assert frame.height == depth * steps
        return time.perf_counter() - t0

    def all_keys() -> float:
        t0 = time.perf_counter()
        runlake.history(run.id, root=root)
        return time.perf_counter() - t0

    return {"one_key_ms": _median(one_key, 5) * 1e3, "all_keys_ms": _median(all_keys, 3) * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, well under a minute")
    args = parser.parse_args()
    steps = 20_000 if args.quick else 100_000
    depths = (1, 10, 100) if args.quick else (1, 10, 100, 1000)
    results: dict[str, object] = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "versions": {
            "runlake": runlake.__version__,
            "duckdb": duckdb.__version__,
            "polars": pl.__version__,
            "pyarrow": pa.__version__,
        },
    }
    table = []
    base = tempfile.mkdtemp(prefix="runlake-bench-")
    try:
        runs = [ingest(os.path.join(base, f"ingest{i}"), steps) for i in range(3)]
        ing = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        results["ingest"] = ing
        table.append(
            (
                "ingest",
                f"{steps} steps x 10",
                f"{ing['points_per_s'] / 1e6:.2f} M points/s, "
                f"{ing['us_per_call']:.2f} us/call, {ing['bytes_per_point']:.2f} B/point",
            )
        )
        for points in (1_000, 1_000_000 if args.quick else 10_000_000):
            f = fork(os.path.join(base, f"fork{points}"), points)
            results[f"fork_{points}"] = f
            table.append(
                ("fork", f"parent {points:,} points", f"{f['ms']:.2f} ms, {f['bytes_written']:.0f} B")
            )
        for depth in depths:
            d = deep_lineage(os.path.join(base, f"deep{depth}"), depth, 1000 if depth < 1000 else 200)
            results[f"deep_{depth}"] = d
            table.append(
                (
                    "deep lineage",
                    f"depth {depth}",
                    f"one key {d['one_key_ms']:.1f} ms, all keys {d['all_keys_ms']:.1f} ms",
                )
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    width = max(len(r[1]) for r in table)
    for name, case, value in table:
        print(f"{name:<14} {case:<{width}}  {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    print(f"\nwrote {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
