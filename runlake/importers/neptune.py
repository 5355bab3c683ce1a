"""`runlake import neptune DIR`: the Parquet that neptune-exporter writes
(`<dir>/<project>/<run>_part_<n>.parquet`, one row per attribute value or series point, its
documented schema: project_id, run_id, attribute_path, attribute_type, step (decimal 18,6),
timestamp, int/float/string/bool/datetime/string_set/file/histogram values), read with pyarrow.

Float series are metrics; string series are text; histogram series are W&B-shaped histogram
JSON; single-valued attributes outside `sys/` are the config. Forks (`sys/forking/parent`,
`sys/forking/step`) become runlake forks. Neptune's steps are decimals: when a run has
fractional steps they are all scaled by the smallest power of ten that makes them whole
(recorded as `step_multiplier` in the run's metadata).
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import RunlakeError
from .model import Skipped, SourceRun, SourceSegment

REQUIRED = ("project_id", "run_id", "attribute_path", "attribute_type", "step", "timestamp")
_PARAM_TYPES = ("float", "int", "string", "bool", "datetime", "string_set")


def _read_parquet(path: str) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _run_files(path: str) -> dict[str, list[str]]:
    """run file prefix -> its parts in order, under `path` (an export directory or one project's)."""
    if not os.path.isdir(path):
        raise RunlakeError(
            f"{path} is not a directory: expected a neptune-exporter data directory (<project>/<run>_part_0.parquet)"
        )
    parts = glob.glob(os.path.join(path, "*_part_*.parquet")) + glob.glob(
        os.path.join(path, "*", "*_part_*.parquet")
    )
    runs: dict[str, list[str]] = {}
    for part in parts:
        prefix, _, number = os.path.basename(part)[: -len(".parquet")].rpartition("_part_")
        if number.isdigit():
            runs.setdefault(os.path.join(os.path.dirname(part), prefix), []).append(part)
    runs = {k: v for k, v in runs.items() if any(p.endswith("_part_0.parquet") for p in v)}  # complete runs
    if not runs:
        raise RunlakeError(
            f"{path} holds no neptune-exporter runs: expected <project>/<run>_part_0.parquet files "
            "(the data directory of `neptune-exporter export`)"
        )
    return {
        k: sorted(v, key=lambda p: int(p[: -len(".parquet")].rpartition("_part_")[2]))
        for k, v in sorted(runs.items())
    }


def read(path: str, project: str | None, skipped: list[Skipped]) -> list[SourceRun]:
    runs = []
    for prefix, parts in _run_files(path).items():
        tables = []
        for part in parts:
            try:
                table = _read_parquet(part)
            except Exception as exc:  # noqa: BLE001 - a damaged part is listed, the rest comes in
                skipped.append(Skipped(part, f"not readable as Parquet ({exc})"))
                continue
            missing = [c for c in REQUIRED if c not in table.column_names]
            if missing:
                skipped.append(
                    Skipped(part, f"not a neptune-exporter part: no column(s) {', '.join(missing)}")
                )
                continue
            tables.append(table)
        if not tables:
            continue
        table = pa.concat_tables(tables, promote_options="default")
        run = _run(table, project, prefix)
        if run is not None:
            runs.append(run)
    return runs


def _attr(table: pa.Table, path: str, column: str) -> Any:
    rows = table.filter(pc.equal(table["attribute_path"], path))
    if not rows.num_rows or column not in rows.column_names:
        return None
    return rows[column][0].as_py()


def _scale(steps: np.ndarray) -> int:
    """The smallest power of ten that makes every step whole (at most 10**6: decimal(18, 6))."""
    for power in range(7):
        scaled = steps * 10**power
        if np.all(np.abs(scaled - np.round(scaled)) < 1e-6):
            return 10**power
    return 10**6


def _run(table: pa.Table, project: str | None, where: str) -> SourceRun | None:
    source_id = str(table["run_id"][0].as_py())
    project_id = str(table["project_id"][0].as_py() or "neptune")
    types = table["attribute_type"]
    series = table.filter(pc.is_in(types, pa.array(["float_series", "string_series", "histogram_series"])))
    steps_f = (
        series["step"].cast(pa.float64()).to_numpy(zero_copy_only=False) if series.num_rows else np.empty(0)
    )
    fork_step = _attr(table, "sys/forking/step", "float_value")
    multiplier = _scale(
        np.concatenate([steps_f[~np.isnan(steps_f)], [float(fork_step)] if fork_step is not None else []])
    )
    created = _attr(table, "sys/creation_time", "datetime_value")
    modified = _attr(table, "sys/modification_time", "datetime_value")
    failed = _attr(table, "sys/failed", "bool_value")
    out = SourceRun(
        source="neptune",
        source_id=source_id,
        project=project or re.sub(r"[^A-Za-z0-9_.-]+", "-", project_id).strip("-.")[:128] or "neptune",
        name=_attr(table, "sys/name", "string_value") or _attr(table, "sys/custom_run_id", "string_value"),
        notes=_attr(table, "sys/description", "string_value"),
        tags=sorted(_attr(table, "sys/tags", "string_set_value") or []),
        group=_attr(table, "sys/experiment/name", "string_value"),
        created_at=created.timestamp() if created is not None else 0.0,
        finished_at=modified.timestamp() if modified is not None else None,
        state="failed" if failed else "finished",
        exit_code=1 if failed else 0,
        where=where,
    )
    out.metadata = {"neptune_project": project_id}
    if multiplier != 1:
        out.metadata["step_multiplier"] = multiplier
    custom = _attr(table, "sys/custom_run_id", "string_value")
    if custom:
        out.metadata["custom_run_id"] = custom
    parent = _attr(table, "sys/forking/parent", "string_value")
    if parent:
        segment = SourceSegment(
            "fork", int(round(float(fork_step or 0) * multiplier)), str(parent), out.created_at
        )
    else:
        segment = SourceSegment("root", None, None, out.created_at)
    out.segments.append(segment)
    params = table.filter(pc.is_in(types, pa.array(_PARAM_TYPES)))
    for row in params.select(
        [
            "attribute_path",
            "attribute_type",
            *[
                c
                for c in (
                    "int_value",
                    "float_value",
                    "string_value",
                    "bool_value",
                    "datetime_value",
                    "string_set_value",
                )
                if c in params.column_names
            ],
        ]
    ).to_pylist():
        path = row["attribute_path"]
        if path.startswith("sys/"):
            continue
        value = row.get(f"{row['attribute_type']}_value")
        out.config[path] = value.isoformat() if hasattr(value, "isoformat") else value
    if not series.num_rows:
        return out
    valid = ~np.isnan(steps_f)
    steps = np.round(steps_f * multiplier).astype(np.int64)
    stamps = (
        series["timestamp"].cast(pa.int64()).to_numpy(zero_copy_only=False)
        if series.num_rows
        else np.empty(0)
    )
    stamp_ok = valid & ~np.isnan(stamps.astype(np.float64)) if stamps.dtype.kind == "f" else valid
    series_types = series["attribute_type"].to_numpy(zero_copy_only=False)
    paths = series["attribute_path"].to_numpy(zero_copy_only=False)
    floats = (series_types == "float_series") & valid
    if floats.any():
        segment.points.add(
            steps[floats], paths[floats], series["float_value"].to_numpy(zero_copy_only=False)[floats]
        )
    strings = (series_types == "string_series") & valid
    if strings.any():
        texts = series["string_value"].to_pylist()
        idx = np.flatnonzero(strings)
        segment.points.add(steps[idx], paths[idx], np.full(len(idx), math.nan), [texts[i] for i in idx])
    hists = (series_types == "histogram_series") & valid
    if hists.any() and "histogram_value" in series.column_names:
        values = series["histogram_value"].to_pylist()
        idx = np.flatnonzero(hists)
        docs = [
            json.dumps(
                {"_type": "histogram", "values": values[i]["values"], "bins": values[i]["edges"]},
                separators=(",", ":"),
            )
            if values[i]
            else None
            for i in idx
        ]
        segment.points.add(steps[idx], paths[idx], np.full(len(idx), math.nan), docs)
        segment.json_keys.update(str(p) for p in set(paths[idx]))
    timed = stamp_ok & (stamps > 0) if len(stamps) else stamp_ok
    if timed.any():
        segment.points.stamp(steps[timed], stamps[timed] / 1000.0)
    return out
