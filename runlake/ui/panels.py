"""The web app's panels beyond a run's line charts (JSON for `static/`): a key over steps (an
image's slider, a histogram's heat map, text by step), the workspace's grouped bands, and a
run's console tab and system charts. Every answer is computed here, on the server, so a page
draws a few series whatever the number of runs or steps."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import polars as pl

from ..lake import Lake
from ..read.charts import step_metric_of
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


PANEL_RUNS = 100  # runs a panel draws one by one (more: group them, api/group)


def _extremes(
    px: np.ndarray, py: np.ndarray, lo: float, width: float, buckets: int
) -> tuple[np.ndarray, np.ndarray]:
    """Points (x ascending) onto a grid of `buckets` equal x buckets, two slots each: per bucket
    its min and its max, in the order they came (a spike is never lost, the line keeps its
    shape), as (slot index, value). A few passes of numpy, no loop over buckets."""
    ok = ~np.isnan(py)
    px, py = px[ok], py[ok]
    if not len(px):
        return np.empty(0, np.int64), np.empty(0)
    b = np.clip(((px - lo) / width).astype(np.int64), 0, buckets - 1)
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])  # x ascending: a bucket is a run
    counts = np.diff(np.r_[starts, len(px)])
    position = np.arange(len(px))
    at_min = np.minimum.reduceat(
        np.where(py == np.repeat(np.minimum.reduceat(py, starts), counts), position, len(px)), starts
    )
    at_max = np.minimum.reduceat(
        np.where(py == np.repeat(np.maximum.reduceat(py, starts), counts), position, len(px)), starts
    )
    first, second = np.minimum(at_min, at_max), np.maximum(at_min, at_max)
    bucket = b[starts]
    return np.concatenate([2 * bucket, 2 * bucket + 1]), np.concatenate([py[first], py[second]])


def panel(
    lake: Lake,
    run_ids: list[str],
    key: str,
    buckets: int = 400,
    x: str | None = "step",
    lo: float | None = None,
    hi: float | None = None,
) -> dict[str, Any]:
    """A workspace panel: each run's effective history of `key` as a line of its own (its
    inherited part apart from its own, as lineage says), every run on one shared x grid — per
    x bucket the min and the max of each run in the order they came —, so the page draws a few
    hundred points per run whatever the steps and never aligns runs itself. Over [lo, hi] (a
    zoom); few enough points are sent as they are (a step metric's repeated values: the last).
    `x`: "step", "wall", "_runtime", a step metric, or None for the key's define_metric step
    metric (else the step). Reads through the web app's chart caches (one scan per run for all
    its keys when the workspace asked for them: see `api.workspace_runs`)."""
    if not run_ids:
        raise ValueError("runs= names no run")
    if len(run_ids) > PANEL_RUNS:
        raise ValueError(
            f"a panel draws at most {PANEL_RUNS} runs one by one, got {len(run_ids)}: group them"
        )
    buckets = max(10, min(int(buckets), 1000))
    if not x:  # auto: the key's define_metric step metric, else the step
        x = step_metric_of(lake.reader, list(run_ids), key) or "step"
    parts: list[tuple[str, str, np.ndarray, np.ndarray, int]] = []
    markers = []
    for run_id in dict.fromkeys(run_ids):
        version, marks, own_from = lake.charts.plan(run_id)
        if x == "step":
            window = (None if lo is None else math.ceil(lo), None if hi is None else math.floor(hi))
            total, pieces = lake.charts.drawn(run_id, key, *window, None, buckets, version, extremes_ok=True)
            halves = [(st.astype(np.float64), ys) for st, ys, _ in pieces]
            for m in marks:
                m["x"] = float(m["step"])
        else:
            steps, xs, values = lake.charts.points(run_id, key, x, None, version)
            keep = np.ones(len(xs), dtype=bool)
            if lo is not None:
                keep &= xs >= lo
            if hi is not None:
                keep &= xs <= hi
            for m in marks:
                i = int(np.searchsorted(steps, m["step"], side="right")) - 1
                m["x"] = float(xs[i]) if i >= 0 else None
            steps, xs, values = steps[keep], xs[keep], values[keep]
            cut = int(np.searchsorted(steps, own_from, side="right")) if own_from is not None else 0
            halves = []
            for hx, hy in ((xs[:cut], values[:cut]), (xs[cut:], values[cut:])):
                order = np.argsort(hx, kind="stable")  # a step metric need not grow
                halves.append((hx[order], hy[order]))
            total = len(xs)
        for part, (px, py) in zip(("inherited", "own"), halves, strict=True):
            if len(px):
                parts.append((run_id, part, px, np.asarray(py, dtype=np.float64), total))
        markers += [
            {**m, "run_id": run_id, "label": f"{m['kind']} @{m['step']} ← {m['from']}"} for m in marks
        ]
    out: dict[str, Any] = {"key": key, "x_label": x, "markers": markers}
    if not parts:
        return {**out, "x": [], "lines": []}
    if sum(len(px) for _, _, px, _, _ in parts) <= 2 * buckets:  # few points: each as it is
        grid = np.unique(np.concatenate([px for _, _, px, _, _ in parts]))
        lines = []
        for run_id, part, px, py, total in parts:
            ys = np.full(len(grid), np.nan)
            ys[np.searchsorted(grid, px)] = py
            lines.append((run_id, part, ys, total))
    else:
        first = min(float(px[0]) for _, _, px, _, _ in parts)
        last = max(float(px[-1]) for _, _, px, _, _ in parts)
        g_lo = first if lo is None else max(float(lo), first)
        g_hi = last if hi is None else min(float(hi), last)
        width = (g_hi - g_lo) / buckets or 1.0
        grid = g_lo + width * (np.repeat(np.arange(buckets), 2) + np.tile([0.25, 0.75], buckets))
        lines = []
        for run_id, part, px, py, total in parts:
            ys = np.full(2 * buckets, np.nan)
            slots, values = _extremes(px, py, g_lo, width, buckets)
            ys[slots] = values
            lines.append((run_id, part, ys, total))
    return {
        **out,
        "x": grid.tolist(),
        "lines": [
            {"run_id": run_id, "part": part, "y": json_floats(ys), "points": total}
            for run_id, part, ys, total in lines
        ],
    }


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


def run_artifacts(lake: Lake, run_id: str) -> dict[str, Any]:
    """A run's artifacts tab: what it logged (output) and used (input), each version with its
    type, size, step, the run that logged it and its file count."""
    lake.run(run_id)  # a 404 for a run that does not exist
    frame = lake.sql(
        "SELECT u.direction, u.artifact_project AS project, u.name, u.version, u.type, u.digest, u.size, "
        "u.step, epoch(u.used_at) AS at, a.run_id AS logged_by, "
        "(SELECT count(*) FROM artifact_files f WHERE f.artifact_project = u.artifact_project "
        "AND f.name = u.name AND f.version = u.version) AS files "
        "FROM artifact_usage u LEFT JOIN artifacts a "
        "ON a.project = u.artifact_project AND a.name = u.name AND a.version = u.version "
        "WHERE u.run_id = ? ORDER BY u.direction DESC, u.used_at, u.name",
        [run_id],
    )
    return {"artifacts": [dict(row) for row in frame.iter_rows(named=True)]}


ARTIFACT_FILES = 500  # files an artifact's row lists (the rest are counted)


def artifact_files(lake: Lake, project: str, name: str, version: int) -> dict[str, Any]:
    """An artifact version's files (path, size, sha256), the first ARTIFACT_FILES by path."""
    frame = lake.sql(
        "SELECT file_path AS path, size, sha256, count(*) OVER () AS total FROM artifact_files "
        "WHERE artifact_project = ? AND name = ? AND version = ? ORDER BY file_path LIMIT ?",
        [project, name, int(version), ARTIFACT_FILES],
    )
    total = int(frame["total"][0]) if frame.height else 0
    return {"total": total, "files": [dict(r) for r in frame.drop("total").iter_rows(named=True)]}
