"""The web app's panels beyond a run's line charts (JSON for `static/`): a key over steps (an
image's slider, a histogram's heat map, text by step), the workspace's grouped bands, and a
run's console tab and system charts. Every answer is computed here, on the server, so a page
draws a few series whatever the number of runs or steps."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import polars as pl

from ..lake import Lake
from .api import json_floats

HEATMAP_BINS = 32


def steps_of(lake: Lake, run_id: str, key: str, limit: int = 200) -> dict[str, Any]:
    """A media or histogram key over the run's steps (its effective history), at most `limit`
    steps evenly spaced (the first and last kept): images for a step slider; for a histogram
    key also a heat map, each step's counts re-binned onto one grid of HEATMAP_BINS bins over
    every step's range (W&B's default view of a histogram over time)."""
    frame = lake.history(run_id, [key])
    if key not in frame.columns:
        raise ValueError(f"run {run_id!r} has no key {key!r}")
    frame = frame.select("_step", key).drop_nulls(key)
    if frame.height > limit:
        picks = sorted({round(i * (frame.height - 1) / (limit - 1)) for i in range(limit)})
        frame = frame[picks]
    steps, values = [], []
    for step, raw in frame.iter_rows():
        try:
            value = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            value = raw
        steps.append(step)
        values.append(value)
    out: dict[str, Any] = {"key": key, "steps": steps, "values": values}
    hists = [v for v in values if isinstance(v, dict) and v.get("_type") == "histogram" and v.get("bins")]
    if hists and len(hists) == len(values):
        lo = min(float(h["bins"][0]) for h in hists)
        hi = max(float(h["bins"][-1]) for h in hists)
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, HEATMAP_BINS + 1)
        grid = []
        for h in hists:
            bins = np.asarray(h["bins"], dtype=np.float64)
            centres = (bins[:-1] + bins[1:]) / 2 if len(bins) > len(h["values"]) else bins[: len(h["values"])]
            counts, _ = np.histogram(centres, bins=edges, weights=np.asarray(h["values"], dtype=np.float64))
            grid.append(json_floats(counts))
        out["heatmap"] = {"edges": json_floats(edges), "counts": grid}
        out["values"] = []  # the heat map says it; the latest histogram is on the page already
    return out


GROUP_FIELDS = ("group", "job_type", "sweep")  # and config.<key>


def group_lines(
    lake: Lake,
    run_ids: list[str],
    key: str,
    by: str,
    band: str = "std",
    buckets: int = 200,
    x: str | None = None,
) -> dict[str, Any]:
    """A workspace panel grouped: the runs' effective histories of `key` binned on a common
    grid of x — the step, or `x`, another key logged at the same steps (`_runtime`: seconds
    since the run started; a step metric such as `epoch`) —, then per group (by "group",
    "job_type", "sweep" or "config.<key>") and bin the mean of the runs' values with a band
    (`band` "std": mean ± one standard deviation; "minmax": the runs' min and max) and how many
    runs it holds: 1,000 runs draw as a few bands."""
    if not run_ids:
        raise ValueError("runs= names no run")
    if by not in GROUP_FIELDS and not by.startswith("config."):
        raise ValueError(f"group by one of {', '.join(GROUP_FIELDS)} or config.<key>, got {by!r}")
    if band not in ("std", "minmax"):
        raise ValueError(f"band must be std or minmax, got {band!r}")
    buckets = max(10, min(int(buckets), 2000))
    field = {"group": '"group"', "job_type": "job_type", "sweep": "sweep_id"}.get(by)
    label_sql = field if field else "json_extract_string(config, ?)"
    params: list[Any] = [] if field else ["$." + json.dumps(by[len("config.") :])]
    runs = lake.sql(
        f"SELECT run_id, coalesce(CAST({label_sql} AS VARCHAR), '(none)') AS label FROM runs "
        "WHERE run_id IN (SELECT unnest(?))",
        [*params, run_ids],
    )
    x = None if x in (None, "", "step", "_step") else x
    if x is None:
        points = lake.sql(
            "SELECT run_id, CAST(step AS DOUBLE) AS step, value FROM history WHERE key = ? "
            "AND value IS NOT NULL AND run_id IN (SELECT unnest(?))",
            [key, run_ids],
        )
    else:  # each point at the value `x` had at its step
        points = lake.sql(
            "SELECT h.run_id, a.value AS step, h.value FROM history h JOIN history a "
            "ON a.run_id = h.run_id AND a.step = h.step AND a.key = ? WHERE h.key = ? "
            "AND h.value IS NOT NULL AND a.value IS NOT NULL AND h.run_id IN (SELECT unnest(?))",
            [x, key, run_ids],
        )
    points = points.filter(pl.col("value").is_finite() & pl.col("step").is_finite())
    out = {"key": key, "by": by, "band": band, "x": x or "step"}
    if points.is_empty():
        return {**out, "groups": []}
    lo, hi = float(points["step"].min()), float(points["step"].max())  # type: ignore[arg-type]
    width = (hi - lo) / buckets if x else max(1.0, (hi - lo + 1) / buckets)
    width = width or 1.0
    per_run = (
        points.with_columns(((pl.col("step") - lo) / width).floor().cast(pl.Int64).alias("bin"))
        .group_by("run_id", "bin")
        .agg(pl.col("value").mean(), pl.col("step").mean().alias("x"))
        .join(runs, on="run_id")
    )
    stats = (
        per_run.group_by("label", "bin")
        .agg(
            pl.col("x").mean(),
            pl.col("value").mean().alias("mean"),
            pl.col("value").std(ddof=0).fill_null(0.0).alias("std"),
            pl.col("value").min().alias("min"),
            pl.col("value").max().alias("max"),
        )
        .sort("label", "bin")
    )
    counts = dict(per_run.group_by("label").agg(pl.col("run_id").n_unique()).iter_rows())
    groups = []
    for (label,), rows in stats.group_by(["label"], maintain_order=True):
        mean = rows["mean"].to_numpy()
        low = mean - rows["std"].to_numpy() if band == "std" else rows["min"].to_numpy()
        high = mean + rows["std"].to_numpy() if band == "std" else rows["max"].to_numpy()
        groups.append(
            {
                "label": str(label),
                "runs": int(counts.get(label, 0)),
                "x": json_floats(rows["x"].to_numpy()),
                "mean": json_floats(mean),
                "lo": json_floats(low),
                "hi": json_floats(high),
            }
        )
    return {**out, "groups": groups}


SYSTEM_PANELS = 12  # system charts on a run page (the first keys by name: cpu, memory, ...)


def console(lake: Lake, run_id: str, grep: str | None, label: str | None, limit: int) -> dict[str, Any]:
    """A run's console tab: its last `limit` lines (matching `grep`, a regular expression)."""
    if grep:
        try:
            re.compile(grep)
        except re.error as exc:
            raise ValueError(f"grep is not a regular expression: {exc}") from None
    lines = lake.console(run_id, label=label or None, grep=grep or None)
    shown = lines.tail(limit)
    return {
        "total": lines.height,
        "labels": sorted(set(lines["label"].to_list())),
        "lines": [
            {
                "line": r["line"],
                "step": r["step"],
                "stream": r["stream"],
                "label": r["label"],
                "content": r["content"],
            }
            for r in shown.iter_rows(named=True)
        ],
    }


def system(lake: Lake, run_id: str) -> dict[str, Any]:
    """A run's system charts: per key, one series per process label, x = seconds since start."""
    metrics = lake.system_metrics(run_id)
    out: dict[str, dict[str, dict[str, list[float | None]]]] = {}
    for key in sorted(set(metrics["key"].to_list()))[:SYSTEM_PANELS]:
        rows = metrics.filter(metrics["key"] == key)
        for label in sorted(set(rows["label"].to_list())):
            mine = rows.filter(rows["label"] == label)
            out.setdefault(key, {})[label or "main"] = {
                "x": json_floats(mine["runtime"].to_numpy()),
                "y": json_floats(mine["value"].to_numpy()),
            }
    return {"keys": out, "total_keys": metrics["key"].n_unique() if metrics.height else 0}
