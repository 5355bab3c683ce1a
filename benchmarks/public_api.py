"""The `api` scenario (#27): `runlake.Api()` reads, next to the Lake reads they are built on.

- scan_history of a 1M-step run (2 keys): rows per second as dicts (W&B's form), as polars
  frames (`HistoryScan.frames()`), next to `runlake.history` of the same run; and the peak
  memory (ru_maxrss) of a fresh process doing each, so "bounded by a window" is measured;
- api.runs over 10,000 runs with a filter: the time to its length (ids), then to the first page.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

import runlake

Rows = list[tuple[str, str, str]]

_PEAK = """
import json, os, sys, threading, time
import runlake
root, how = sys.argv[1], sys.argv[2]
runlake.default(root).history("big", max_step=1)  # the catalog loaded, files checked: not timed
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * page
base = rss()
top = [base]
done = threading.Event()
def sample():  # the resident set while the read runs, every 5 ms
    while not done.wait(0.005):
        top[0] = max(top[0], rss())
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
if how == "history":
    n = runlake.history("big", root=root).height
elif how == "scan":
    n = sum(1 for _ in runlake.Api(root=root).run("big").scan_history())
else:
    n = sum(f.height for f in runlake.Api(root=root).run("big").scan_history().frames())
# (the module-level functions, Api and the warm-up share one default Lake of the root)
seconds = time.perf_counter() - t0
done.set()
top[0] = max(top[0], rss())
print(json.dumps({"rows": n, "seconds": seconds, "peak_mb": top[0] / 2**20, "grew_mb": (top[0] - base) / 2**20}))
"""


def _child(root: str, how: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _PEAK, root, how], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def api(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    steps = 200_000 if quick else 1_000_000
    runs_count = 1_000 if quick else 10_000
    root = f"{path}/scan"
    lake = runlake.Lake(root)
    run = lake.init("p", id="big")
    for s in range(steps):
        run.log({"loss": 1.0 / (s + 1), "acc": s * 1e-6})
    run.finish()
    lake.history("big")  # checksums checked, files cached by the OS: every side reads warm
    lake.close()
    sides: dict[str, list[dict[str, Any]]] = {"history": [], "scan": [], "frames": []}
    for _ in range(3):  # side by side, interleaved
        for how in sides:
            sides[how].append(_child(root, how))
    med = {
        how: {
            "rows_per_s": statistics.median(r["rows"] / r["seconds"] for r in results),
            "seconds": statistics.median(r["seconds"] for r in results),
            "grew_mb": statistics.median(r["grew_mb"] for r in results),
        }
        for how, results in sides.items()
    }

    many = f"{path}/many"
    lake = runlake.Lake(many)
    for i in range(runs_count):
        r = lake.init("many", id=f"r{i:05d}", config={"lr": (i % 100) / 100, "seed": i % 7})
        r.log({"loss": float(i)})
        r.finish()
    lake.close()
    api_ = runlake.Api(root=many)
    api_.runs("many")[0]  # the catalog and the SQL sandbox made once
    filters = {"$and": [{"config.lr": {"$gte": 0.5}}, {"config.seed": {"$in": [1, 2]}}]}
    length, first = [], []
    for _ in range(7):
        api_.flush()
        t0 = time.perf_counter()
        runs = api_.runs("many", filters=filters, order="-summary_metrics.loss")
        n = len(runs)
        length.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        runs[0].summary["loss"]
        first.append((time.perf_counter() - t0) * 1e3)
    out = {
        "steps": steps,
        "scan": med,
        "runs": runs_count,
        "filtered": n,
        "runs_len_ms": statistics.median(length),
        "first_page_ms": statistics.median(first),
    }
    rows: Rows = [
        (
            "api",
            f"Lake.history of {steps:,} steps x 2 keys",
            f"{med['history']['rows_per_s'] / 1e6:.2f} M rows/s, resident +{med['history']['grew_mb']:.0f} MB",
        ),
        (
            "api",
            "run.scan_history(), rows as dicts",
            f"{med['scan']['rows_per_s'] / 1e6:.2f} M rows/s, resident +{med['scan']['grew_mb']:.0f} MB",
        ),
        (
            "api",
            "run.scan_history().frames(), polars",
            f"{med['frames']['rows_per_s'] / 1e6:.2f} M rows/s, resident +{med['frames']['grew_mb']:.0f} MB",
        ),
        (
            "api",
            f"api.runs(filter, order) over {runs_count:,} runs: len()",
            f"{out['runs_len_ms']:.1f} ms ({n} runs)",
        ),
        ("api", "then its first page (50 runs)", f"{out['first_page_ms']:.1f} ms"),
    ]
    return out, rows
