"""The `workspace` scenario (#29): what the web app's workspace asks the server for.

- grouping 200 runs (10,000 steps each; 100,000 without --quick would be 20M points) into 4
  bands of one key (`GET /api/group`, mean with ±std and with min-max), median of 5;
- the panels of a workspace of 20 runs x 12 keys (`GET /api/compare` per key, what the page
  fetches as the panels scroll into view): all 12, one after the other.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

import runlake
from runlake.ui import api, panels

Rows = list[tuple[str, str, str]]


def workspace(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    steps = 2_000 if quick else 10_000
    lake = runlake.Lake(path)
    rng = np.random.default_rng(3)
    ids = []
    for i in range(200):
        run = lake.init(
            "ws",
            id=f"r{i:03d}",
            group=f"g{i % 4}",
            config={"lr": float(i % 4)},
            settings={"console": "off", "x_disable_stats": True},
        )
        base = rng.normal(size=(steps, 12)).cumsum(axis=0) / np.sqrt(steps)
        for row in base.tolist():
            run.log({f"k{j:02d}": row[j] for j in range(12)})
        run.finish()
        ids.append(run.id)
    lake.compact(progress=False)
    out: dict[str, Any] = {"runs": len(ids), "steps": steps}
    for band in ("std", "minmax"):
        panels.group_lines(lake, ids, "k00", "group", band)  # warm: the catalog read once
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            groups = panels.group_lines(lake, ids, "k00", "group", band)
            times.append(time.perf_counter() - t0)
        assert len(groups["groups"]) == 4
        out[f"group_{band}_ms"] = statistics.median(times) * 1e3
    twenty = ids[:20]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        for j in range(12):
            api.compare(lake, twenty, f"k{j:02d}", 1000)
        times.append(time.perf_counter() - t0)
    out["panels_20x12_ms"] = statistics.median(times) * 1e3
    lake.close()
    return out, [
        ("workspace", f"200 runs x {steps:,} steps into 4 bands (±std)", f"{out['group_std_ms']:.0f} ms"),
        (
            "workspace",
            f"200 runs x {steps:,} steps into 4 bands (min-max)",
            f"{out['group_minmax_ms']:.0f} ms",
        ),
        (
            "workspace",
            f"20 runs x 12 keys x {steps:,} steps: every panel's data",
            f"{out['panels_20x12_ms']:.0f} ms",
        ),
    ]
