"""runlake's benchmark suite: seeded, synthesized data; a table on stdout and
benchmarks/results/latest.json (machine, versions, medians).

    python -m benchmarks [--quick] [--only NAME ...]

Scenarios: ingest, fork, deep, pbt (with the copy-on-fork baseline), many, cold (a new process\non a 20,000-run root without and with its catalog cache), storage,
concurrency, peers (MLflow / W&B offline when the `bench` extra is installed), imports (each
`runlake import` source, when the `import` extra is installed), spark (the PBT root on Spark and
DuckDB side by side, and the catalog export of 10,000 runs, with the `spark` extra), ui (the web
app's endpoints on a 10-key x 1M-step run, 10,000 runs and a 400-run PBT project), sql (user SQL
in its sandbox on 10,000 runs: steady, after a catalog change, a history query), api (runlake.Api:
scan_history of a 1M-step run next to history(), api.runs with a filter over 10,000 runs),
artifacts (log_artifact of 1 GB of checkpoints next to a plain copy; re-logging it unchanged), log
(reads of a 100,000-run local root and a 10,000-run root on the S3 API with the commit log, timed
and counted, next to listing the root whole), streams (ingest with console capture and system
metrics on and off, interleaved; a 100,000-line console read back), workspace (200 runs grouped
into 4 bands; a 20-run x 12-key workspace's panels; in Chromium, a 20-run x 12-key x 100,000-step
workspace drawn, 200 runs grouped, a page of a 100,000-run runs table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

import runlake

from . import artifacts, commit_log, public_api, scenarios, streams, workspace

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = (
    "ingest",
    "fork",
    "deep",
    "pbt",
    "many",
    "cold",
    "storage",
    "concurrency",
    "peers",
    "imports",
    "spark",
    "ui",
    "sql",
    "api",
    "artifacts",
    "log",
    "streams",
    "workspace",
)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes: under a minute")
    parser.add_argument("--only", nargs="+", choices=ORDER, help="run only these scenarios")
    args = parser.parse_args()
    chosen = args.only or list(ORDER)
    results: dict[str, object] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "versions": {
            "runlake": runlake.__version__,
            "duckdb": duckdb.__version__,
            "polars": pl.__version__,
            "pyarrow": pa.__version__,
        },
    }
    rows: list[tuple[str, str, str]] = []
    base = tempfile.mkdtemp(prefix="runlake-bench-")
    os.environ.setdefault("RUNLAKE_CACHE_DIR", os.path.join(base, "cache"))
    started = time.time()
    try:
        for name in chosen:
            t0 = time.time()
            print(f"[{name}] ...", file=sys.stderr, flush=True)
            module = {
                "api": public_api,
                "artifacts": artifacts,
                "log": commit_log,
                "streams": streams,
                "workspace": workspace,
            }.get(name, scenarios)
            out, table = getattr(module, name)(os.path.join(base, name), quick=args.quick)
            results[name] = out
            rows += table
            print(f"[{name}] {time.time() - t0:.1f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    results["seconds"] = round(time.time() - started, 1)
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    print(f"{'scenario':<{w1}}  {'case':<{w2}}  result")
    for scenario, case, value in rows:
        print(f"{scenario:<{w1}}  {case:<{w2}}  {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwrote {RESULTS / 'latest.json'} ({results['seconds']} s)")


if __name__ == "__main__":
    main()
