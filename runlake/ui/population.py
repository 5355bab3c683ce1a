"""The population view's data (JSON for `static/app.js`): a project's runs as lanes on one step
axis — each lane a run's segments in order, each segment a strip of the chosen metric binned
over its steps —, the forks that started new runs and the exploits that re-forked a member from
another (how PBT continues a trial from a better one's checkpoint), so a population reads by
exploit generation, left to right, whatever the ids."""

from __future__ import annotations

import json
import math
from typing import Any

import polars as pl

from ..lake import Lake
from .api import json_floats

STRIP_BINS = 60  # metric bins along the whole step axis (a lane's colour strip)


def _number(value: Any) -> float | None:
    if isinstance(value, dict):  # a define_metric summary ({"min": ..}): its first number
        value = next((v for v in value.values() if isinstance(v, int | float)), None)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def population(lake: Lake, project: str, metric: str | None = None) -> dict[str, Any]:
    """Every run of `project` as a lane: its parent and depth in the fork forest, its
    generation (depth plus the exploits on its way), the chosen summary metric (default: `loss`
    if logged, else the first numeric summary key) and its segments — kind, the run it was
    forked from and the cutoff, its first and last step, the metric binned over the step axis
    (STRIP_BINS bins) —; lanes in fork-forest order (a fork right under its parent)."""
    forest = lake.tree(project)
    meta = lake.sql(
        "SELECT run_id, name, state, parent_run_id, fork_step, summary FROM runs WHERE project = ?", [project]
    )
    info = {r["run_id"]: r for r in meta.iter_rows(named=True)}
    keys: set[str] = set()
    for row in info.values():
        summary = json.loads(row.get("summary") or "{}")
        keys.update(k for k, v in summary.items() if _number(v) is not None and not k.startswith("_"))
    chosen = metric or ("loss" if "loss" in keys else min(keys, default=None))
    segments = lake.sql(
        "SELECT run_id, segment, kind, parent_run_id, cutoff FROM segments WHERE project = ? ORDER BY run_id, segment",
        [project],
    )
    # one read of the chosen key's rows: each segment's span and its strip (no key to choose:
    # the spans of every key, no strip)
    if chosen is not None:
        rows = lake.sql(
            "SELECT run_id, segment, step, value FROM raw_history WHERE project = ? AND key = ?",
            [project, chosen],
        )
        spans = rows.group_by("run_id", "segment").agg(
            pl.col("step").min().alias("first"), pl.col("step").max().alias("last")
        )
    else:
        spans = lake.sql(
            "SELECT run_id, segment, min(step) AS first, max(step) AS last FROM raw_history "
            "WHERE project = ? GROUP BY ALL",
            [project],
        )
        rows = pl.DataFrame(
            schema={"run_id": pl.String, "segment": pl.Int64, "step": pl.Int64, "value": pl.Float64}
        )
    bounds = (spans["first"].min(), spans["last"].max()) if spans.height else (0, 0)
    lo, hi = int(bounds[0] or 0), int(bounds[1] or 0)  # type: ignore[arg-type]
    width = max(1.0, (hi - lo + 1) / STRIP_BINS)
    strips: dict[tuple[str, int], tuple[list[float], list[float | None]]] = {}
    binned = (
        rows.filter(pl.col("value").is_not_null() & pl.col("value").is_finite())
        .with_columns(((pl.col("step") - lo) / width).floor().alias("bin"))
        .group_by("run_id", "segment", "bin")
        .agg(pl.col("step").min().alias("x"), pl.col("value").mean())
        .sort("run_id", "segment", "bin")
    )
    for (run_id, segment), part in binned.group_by(["run_id", "segment"], maintain_order=True):
        strips[(str(run_id), int(segment))] = (part["x"].to_list(), json_floats(part["value"].to_numpy()))
    span = {(r["run_id"], r["segment"]): r for r in spans.iter_rows(named=True)}
    per_run: dict[str, list[dict[str, Any]]] = {}
    for row in segments.iter_rows(named=True):
        run_id, segment = row["run_id"], row["segment"]
        steps, values = strips.get((run_id, segment), ([], []))
        first_last = span.get((run_id, segment), {})
        per_run.setdefault(run_id, []).append(
            {
                "segment": segment,
                "kind": row["kind"],
                "from": row["parent_run_id"],
                "cutoff": row["cutoff"],
                "first": first_last.get("first"),
                "last": first_last.get("last"),
                "x": steps,
                "values": values,
            }
        )
    nodes = []
    for row in forest.iter_rows(named=True):
        run_id = row["run_id"]
        m = info.get(run_id, {})
        segs = per_run.get(run_id, [])
        exploits = [
            {"segment": s["segment"], "from": s["from"], "step": s["cutoff"]}
            for s in segs
            if s["segment"] > 0 and s["kind"] == "fork"
        ]
        summary = json.loads(m.get("summary") or "{}")
        nodes.append(
            {
                "run_id": run_id,
                "name": m.get("name"),
                "state": m.get("state"),
                "parent": m.get("parent_run_id"),
                "fork_step": m.get("fork_step"),
                "depth": row.get("depth", 0),
                "generation": row.get("depth", 0) + len(exploits),
                "root": row.get("root_run_id"),
                "value": _number(summary.get(chosen)) if chosen else None,
                "exploits": exploits,
                "segments": segs,
            }
        )
    return {
        "project": project,
        "metric": chosen,
        "metrics": sorted(keys),
        "steps": [lo, hi],
        "nodes": _forest_order(nodes),
    }


def _forest_order(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Depth first: each run right under its parent (a fork's lane next to where it came from)."""
    ids = {n["run_id"] for n in nodes}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for n in nodes:
        children.setdefault(n["parent"] if n["parent"] in ids else None, []).append(n)
    out: list[dict[str, Any]] = []
    stack = sorted(children.get(None, []), key=lambda n: n["run_id"], reverse=True)
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(sorted(children.get(node["run_id"], []), key=lambda n: n["run_id"], reverse=True))
    return out
