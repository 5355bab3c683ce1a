"""The JSON behind `runlake ui` (and for other tools): runs, one run, chart series downsampled
per pixel bucket, comparisons, the population forest, read-only SQL, and what changed since.

Pure functions of a Lake and the request's parameters; the web layer is in `server.py`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
import time
from typing import Any

import numpy as np
import polars as pl

from ..errors import RunlakeError, RunNotFoundError
from ..lake import Lake
from ..public.filters import where as filter_where
from ..read.charts import PANEL_FINE, downsample
from ..store import settings
from ..store.layout import MAX_STEP
from ..store.parquet import UnreadablePart, decode_any, verify_local

SORTABLE = (
    "created_at",
    "run_id",
    "name",
    "state",
    "group",
    "last_step",
    "project",
    "heartbeat_at",
    "finished_at",
)
RUN_COLUMNS = (
    "run_id", "project", "name", "state", "group", "tags", "job_type", "parent_run_id", "fork_step",
    "last_step", "created_at", "heartbeat_at", "finished_at", "exit_code", "segment", "source",
)  # fmt: skip
MAX_BUCKETS = 4000
_COLUMN_NAMES: dict[tuple[Any, ...], dict[str, list[str]]] = {}  # the runs table's column pickers
_COLUMN_NAMES_LOCK = threading.Lock()


def json_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for row in frame.iter_rows(named=True):
        out = {}
        for key, value in row.items():
            if hasattr(value, "timestamp"):
                value = value.timestamp()
            elif isinstance(value, float) and not math.isfinite(value):
                value = None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            out[key] = value
        rows.append(out)
    return rows


def projects(lake: Lake) -> list[dict[str, Any]]:
    frame = lake.sql(
        "SELECT project, count(*) AS runs, count(*) FILTER (WHERE state = 'running') AS running "
        "FROM runs GROUP BY project ORDER BY project"
    )
    return json_rows(frame)


def runs(
    lake: Lake,
    project: str | None = None,
    q: str | None = None,
    state: str | None = None,
    group: str | None = None,
    tag: str | None = None,
    sort: str = "created_at",
    order: str = "desc",
    offset: int = 0,
    limit: int = 100,
    summary_keys: list[str] | None = None,
    config_keys: list[str] | None = None,
    filters: str | None = None,
) -> dict[str, Any]:
    """One page of the runs table: filtered and sorted in SQL, with chosen summary/config columns;
    `filters`: W&B's MongoDB-style filter as JSON, the `Api`'s language (public/filters.py)."""
    by_value = sort.split(".", 1) if sort.startswith(("summary.", "config.")) else None
    if sort not in SORTABLE and (by_value is None or not by_value[1]):
        raise RunlakeError(
            f"cannot sort by {sort!r}: one of {', '.join(SORTABLE)}, summary.<key>, config.<key>"
        )
    where, params = ["true"], []
    for column, value in (("project", project), ("state", state), ('"group"', group)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if tag:
        where.append("list_contains(tags, ?)")
        params.append(tag)
    if q:
        where.append(
            "(run_id ILIKE ? OR name ILIKE ? OR coalesce(\"group\", '') ILIKE ? OR array_to_string(tags, ' ') ILIKE ?)"
        )
        params += [f"%{q}%"] * 4
    if filters:
        try:
            parsed = json.loads(filters)
        except ValueError as exc:
            raise ValueError(f"filters is not JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ValueError('filters must be a JSON object, e.g. {"config.lr": {"$gt": 0.01}}')
        condition, values = filter_where(parsed)
        where.append(f"({condition})")
        params += values
    limit = max(1, min(int(limit), 1000))
    offset = max(0, int(offset))
    extra, extra_params = [], []
    for prefix, column, keys in (("summary", "summary", summary_keys), ("config", "config", config_keys)):
        for i, key in enumerate(keys or []):
            extra.append(f'json_extract({column}, ?) AS "{prefix}_{i}"')
            extra_params.append("$." + json.dumps(key))  # a JSON path of one quoted member
    select = ", ".join([*(f'"{c}"' for c in RUN_COLUMNS), *extra])
    condition = " AND ".join(where)
    direction = "DESC" if order.lower() == "desc" else "ASC"
    sort_params: list[Any] = []
    if by_value is not None:  # a summary or config value: numbers by value, then the rest as text
        path = "$." + json.dumps(by_value[1])
        sort_column = (
            f"TRY_CAST(json_extract_string({by_value[0]}, ?) AS DOUBLE) {direction} NULLS LAST, "
            f"json_extract_string({by_value[0]}, ?)"
        )
        sort_params = [path, path]
    else:
        sort_column = '"group"' if sort == "group" else sort
    query = (
        f"SELECT {select}, count(*) OVER () AS _total FROM runs WHERE {condition} "
        f"ORDER BY {sort_column} {direction} NULLS LAST, run_id LIMIT {limit} OFFSET {offset}"
    )
    frame = lake.sql(query, [*extra_params, *params, *sort_params])
    total = int(frame["_total"][0]) if frame.height else 0
    rows = json_rows(frame.drop("_total"))
    for row in rows:
        for prefix, keys in (("summary", summary_keys), ("config", config_keys)):
            for i, key in enumerate(keys or []):
                raw = row.pop(f"{prefix}_{i}", None)
                row.setdefault(prefix, {})[key] = json.loads(raw) if isinstance(raw, str) else raw
    # what the column pickers offer: kept while the catalog has not changed (on 100,000 runs
    # the two lists cost more than the page itself)
    cached = (id(lake), lake.reader.catalog.generation, condition, json.dumps(params, default=str))
    names = _COLUMN_NAMES.get(cached)
    if names is None:
        names = {
            column: lake.sql(
                f"SELECT DISTINCT unnest(json_keys({column})) AS k FROM runs WHERE {condition} ORDER BY k LIMIT 500",
                params,
            )["k"].to_list()
            for column in ("summary", "config")
        }
        with _COLUMN_NAMES_LOCK:
            _COLUMN_NAMES[cached] = names
            while len(_COLUMN_NAMES) > 64:
                _COLUMN_NAMES.pop(next(iter(_COLUMN_NAMES)))
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "rows": rows,
        "summary_keys": names["summary"],
        "config_keys": names["config"],
    }


MEDIA_TYPES = (
    "image-file",
    "images/separated",
    "media-list",
    "table-file",
    "audio-file",
    "video-file",
    "html-file",
    "plotly-file",
    "histogram",
)


def _is_media(value: Any) -> bool:
    return isinstance(value, dict) and value.get("_type") in MEDIA_TYPES


def _chart_keys(summary: dict[str, Any]) -> list[str]:
    """Keys drawn as line charts: numbers, and define_metric summaries ({"min": ..}); not media."""
    return sorted(
        k
        for k, v in summary.items()
        if not k.startswith("_")
        and (isinstance(v, int | float) or (isinstance(v, dict) and not _is_media(v)))
    )


WORKSPACE_RUNS = 2_000  # runs one workspace may hold (grouped, 1,000 runs draw as a few bands)


PREFETCH_RUNS, PREFETCH_KEYS = 40, 24  # a workspace this small has its panels read ahead


def workspace_runs(
    lake: Lake, run_ids: list[str], keys: str | None = None, sweep: str | None = None
) -> dict[str, Any]:
    """What a workspace needs of its runs, in one read of the catalog: per run its name,
    group, job type, sweep, config and chart keys (`run()` would read each run's record and
    start reading its first charts: 200 runs, 200 requests). For a workspace of at most
    PREFETCH_RUNS runs, each run's first PREFETCH_KEYS keys (matching `keys`, the page's
    regular expression) start being read at once, one scan per run for all of them: the page
    asks for every panel right after. `sweep` (no `run_ids`): the sweep's runs, oldest first."""
    if not run_ids and sweep:
        run_ids = lake.sql(
            "SELECT run_id FROM runs WHERE sweep_id = ? ORDER BY created_at, run_id LIMIT ?",
            [sweep, WORKSPACE_RUNS],
        )["run_id"].to_list()
        if not run_ids:
            raise RunNotFoundError(f"no run of sweep {sweep!r}")
    if not run_ids:
        raise ValueError("runs= names no run")
    if len(run_ids) > WORKSPACE_RUNS:
        raise ValueError(f"a workspace holds at most {WORKSPACE_RUNS:,} runs, got {len(run_ids):,}")
    frame = lake.sql(
        'SELECT run_id, name, project, "group", job_type, sweep_id, config, summary FROM runs '
        "WHERE run_id IN (SELECT unnest(?))",
        [run_ids],
    )
    found = {}
    for row in frame.iter_rows(named=True):
        summary = json.loads(row.pop("summary") or "{}")
        row["config"] = json.loads(row["config"] or "{}")
        row["keys"] = _chart_keys(summary)
        found[row["run_id"]] = row
    missing = [r for r in run_ids if r not in found]
    if missing:
        raise RunNotFoundError(
            f"no run {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    if len(found) <= PREFETCH_RUNS:
        try:
            pattern = re.compile(keys, re.IGNORECASE) if keys else None
        except re.error:
            pattern = None  # the page says so; the panels are read as they are asked for
        wanted = [
            (
                run_id,
                [k for k in found[run_id]["keys"] if pattern is None or pattern.search(k)][:PREFETCH_KEYS],
            )
            for run_id in dict.fromkeys(run_ids)
        ]
        lake.charts.prefetch_many(wanted, fine=PANEL_FINE)
    return {"runs": [found[r] for r in dict.fromkeys(run_ids)]}


def sweeps(lake: Lake, project: str | None) -> list[dict[str, Any]]:
    """The sweeps (of a project) with their trial counts and best run by the sweep's metric."""
    out = []
    for row in lake.sweeps(project).iter_rows(named=True):
        metric = json.loads(row["metric"]) if row["metric"] else {}
        name, goal = metric.get("name"), metric.get("goal", "minimize")
        best = None
        if name:
            best = lake.sql(
                "SELECT run_id, TRY_CAST(json_extract_string(summary, ?) AS DOUBLE) AS v FROM runs "
                f"WHERE sweep_id = ? AND v IS NOT NULL ORDER BY v {'DESC' if goal == 'maximize' else 'ASC'} LIMIT 1",
                ["$." + json.dumps(name), row["sweep_id"]],
            )
        top = best.row(0, named=True) if best is not None and best.height else None
        out.append(
            {
                **{
                    k: row[k]
                    for k in ("sweep_id", "project", "method", "trials", "running", "finished", "failed")
                },
                "metric_name": name,
                "goal": goal,
                "best_run": top["run_id"] if top else None,
                "best_value": top["v"] if top else None,
            }
        )
    return out


TABLE_ROWS = 10_000  # rows one request of a table may ask for (a chart draws up to this many)


def table(lake: Lake, path: str, limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """`limit` rows of a logged table (its Parquet file) from row `offset`: a page of it on the
    run page, or the rows a logged chart draws."""
    if not path.endswith(".parquet"):
        raise ValueError(f"not a table file: {path!r:.120}")
    stored = decode_any(lake.media(path))
    head = stored.slice(min(offset, stored.num_rows), limit)
    rows = [[_cell(v) for v in row.values()] for row in head.to_pylist()]
    return {"columns": stored.column_names, "nrows": stored.num_rows, "rows": rows}


def _cell(value: Any) -> Any:
    """A table cell as JSON: a media reference (JSON text) decoded, other values as they are."""
    if isinstance(value, str) and value.startswith('{"_type"'):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def run(lake: Lake, run_id: str) -> dict[str, Any]:
    """A run's page: the run's record (`Lake.run`) with its metric keys grouped by "/" section;
    the first charts' data starts being read at once."""
    record = lake.run(run_id).to_dict()
    keys = _chart_keys(record["summary"])
    lake.charts.prefetch(run_id, keys[:50])
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.split("/", 1)[0] if "/" in key else "", []).append(key)
    media = [{"key": k, "value": v} for k, v in sorted(record["summary"].items()) if _is_media(v)]
    media += [
        {"key": k, "value": {"_type": "text", "text": v}}
        for k, v in sorted(record["summary"].items())
        if isinstance(v, str) and not k.startswith("_")
    ]  # text keys: a table of step -> text
    media += [
        {"key": k, "value": {"_type": "list", "items": v}}
        for k, v in sorted(record["summary"].items())
        if isinstance(v, list) and not k.startswith("_")
    ]  # lists: a table of step -> list
    alerts = json_rows(lake.alerts(run_id).drop("path"))
    return {**record, "keys": keys, "groups": groups, "media": media, "alerts": alerts}


def json_floats(values: np.ndarray) -> list[float | None]:
    """Numbers for JSON: NaN and infinities become null (JSON has neither)."""
    out: list[float | None] = values.tolist()
    if not bool(np.isfinite(values).all()):
        out = [v if math.isfinite(v) else None for v in out]  # type: ignore[arg-type]
    return out


def series(
    lake: Lake,
    run_id: str,
    key: str,
    *,
    x: str = "step",
    buckets: int = 1000,
    lo: float | None = None,
    hi: float | None = None,
    segment: int | None = None,
) -> dict[str, Any]:
    """One metric of one run, for a chart: downsampled to `buckets` (M4) over [lo, hi] (a zoom
    re-fetches at full resolution), split at the step where the run's own rows begin (the
    inherited part is drawn apart), with fork and rewind points as markers. `x` is "step",
    "wall" (the row's _timestamp) or a step metric (its value at or before each step)."""
    buckets = max(10, min(int(buckets), MAX_BUCKETS))
    version, markers, own_from = lake.charts.plan(run_id, segment)
    if segment is not None:
        markers = []
    for marker in markers:  # what the chart writes beside the line
        marker["label"] = f"{marker['kind']} @{marker['step']} ← {marker['from']}"
    out: dict[str, Any] = {"key": key, "x_label": x, "own_from": own_from, "markers": markers}
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    if x == "step":
        # reduced by DuckDB to FINE step buckets, then to the chart's buckets here; a window of
        # few enough points is read whole (a zoom shows every point)
        window = (None if lo is None else math.ceil(lo), None if hi is None else math.floor(hi))
        total, pieces = lake.charts.drawn(run_id, key, *window, segment, buckets, version)
        out["points"] = total
        for marker in markers:
            marker["x"] = float(marker["step"])
        if all(len(st) == n or n > 4 * buckets for st, _, n in pieces):
            parts = [(st.astype(np.float64), ys) for st, ys, _ in pieces]
    if not parts:  # another x-axis, or a window to show whole: every point, then M4 here
        steps, xs, values = lake.charts.points(run_id, key, x, segment, version)
        out["points"] = len(xs)
        for marker in markers:
            idx = int(np.searchsorted(steps, marker["step"], side="right")) - 1
            marker["x"] = float(xs[idx]) if idx >= 0 else None
        if lo is not None or hi is not None:
            keep = np.ones(len(xs), dtype=bool)
            if lo is not None:
                keep &= xs >= lo
            if hi is not None:
                keep &= xs <= hi
            xs, values, steps = xs[keep], values[keep], steps[keep]
        cut = int(np.searchsorted(steps, own_from, side="right")) if own_from is not None else 0
        parts = [(xs[:cut], values[:cut]), (xs[cut:], values[cut:])]
    for name, (px, py) in zip(("inherited", "own"), parts, strict=True):
        dx, dy = downsample(px, py, buckets)
        out[name] = {"x": dx.tolist(), "y": json_floats(dy)}
    out["shown"] = len(out["inherited"]["x"]) + len(out["own"]["x"])
    return out


def compare(
    lake: Lake,
    run_ids: list[str],
    key: str,
    buckets: int = 1000,
    *,
    x: str | None = None,
    lo: float | None = None,
    hi: float | None = None,
) -> dict[str, Any]:
    """Several runs' charts of one key as a fork tree: each lineage node drawn once (shared
    prefixes once, as runlake.plot draws them), downsampled over [lo, hi] (a zoom: shown point
    by point once few enough). `x`: "step", "wall" or a step metric (None: the key's
    define_metric step metric, else the step)."""
    buckets = max(10, min(int(buckets), MAX_BUCKETS))
    plot = lake.fork_tree(run_ids, key, x=x or None)
    lines = []
    for line in plot.lines:
        xs, ys = np.asarray(line.steps, dtype=np.float64), np.asarray(line.values, dtype=np.float64)
        keep = np.ones(len(xs), dtype=bool)
        if lo is not None:
            keep &= xs >= lo
        if hi is not None:
            keep &= xs <= hi
        dx, dy = downsample(xs[keep], ys[keep], buckets)
        lines.append(
            {
                "label": line.label,
                "run_id": line.run_id,
                "segment": line.segment,
                "x": dx.tolist(),
                "y": json_floats(dy),
                "points": len(line.steps),
            }
        )
    markers = [
        {"kind": m.kind, "x": m.step, "y": m.value, "label": m.label, "run_id": m.run_id}
        for m in plot.markers
    ]
    return {"key": key, "x_label": plot.x_key, "lines": lines, "markers": markers}


def warm_up(lake: Lake, stop: threading.Event) -> None:
    """What a server does before its first visit, in the background: the catalog read and the
    lineage index the chart reads use built (at 100,000 runs, half a second), then every file's
    page checksums checked (`verify_root`)."""
    with contextlib.suppress(RunlakeError):
        lake.reader.refresh().index()
    verify_root(lake, stop)


def verify_root(lake: Lake, stop: threading.Event) -> None:
    """Check the page checksums of every file of a local root once, biggest first, one file at
    a time, until `stop` (what a read would otherwise do on its first visit of a run). A
    broken file is left for the read of it to report."""
    if not lake.storage.is_local or not settings.verify_reads():
        return
    try:
        paths = [path for path, _ in lake.files()]
    except RunlakeError:
        return
    with contextlib.suppress(OSError, AttributeError):  # this thread only (Linux): reads come first
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    sized = []
    for path in paths:
        with contextlib.suppress(OSError):
            sized.append((os.path.getsize(path), path))
    for _, path in sorted(sized, reverse=True):
        if stop.is_set():
            return
        with contextlib.suppress(UnreadablePart):
            verify_local([path], threads=1, background=True)


def changes(lake: Lake, since: float) -> dict[str, Any]:
    """Runs whose state, heartbeat or last step moved since `since` (seconds): what a page polls.
    `now`, the next poll's `since`, is when the catalog read here was listed, not the clock: a
    catalog kept up to a second old (or slow to refresh under load) would otherwise let a change
    fall between two polls, never shown."""
    now = min(time.time(), lake.listed_at or time.time())  # before the read: it may refresh
    frame = lake.sql(
        "SELECT run_id, project, state, last_step, epoch(heartbeat_at) AS heartbeat, epoch(created_at) AS created, "
        "epoch(finished_at) AS finished FROM runs WHERE greatest(coalesce(epoch(heartbeat_at), 0), "
        "coalesce(epoch(created_at), 0), coalesce(epoch(finished_at), 0)) > ?",
        [since - 1.0],
    )
    return {"now": now, "runs": json_rows(frame)}


def bound(value: str | None, *, steps: bool = True) -> float | None:
    """A zoom's lo or hi from a query string: a finite number (None: not given). On the step
    axis it is clamped to the steps a run can have (the window goes to SQL as integers);
    wall time or a step metric (which may be negative) is taken as it is."""
    if value in (None, ""):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(f"lo and hi must be numbers, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"lo and hi must be finite numbers, got {value!r}")
    return max(min(number, float(MAX_STEP)), -1.0) if steps else number
