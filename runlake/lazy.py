"""`runlake.scan(root)`: every run's effective history as a polars LazyFrame, built on the
catalog the root exports (`runlake catalog export`): no DuckDB, no Spark.

Lazy: `runlake.scan(root).filter(pl.col("run_id") == "abc", pl.col("key") == "loss")` reads
only what it needs. A filter on `key` reaches the Parquet scans (files are sorted by key, so
row groups of other keys are skipped); a filter on `run_id` reaches the closure and prunes the
join. Columns as the `history` view: run_id, step, key, value, text, source_run_id,
source_segment, source_depth. Every column is typed explicitly (polars, like Spark and Daft,
would read run id "0042" as a number).
"""

from __future__ import annotations

import os
from typing import Any

import polars as pl

from .ops import export
from .store import settings
from .store.storage import Storage

RAW = {"step": pl.Int64, "key": pl.String, "value": pl.Float64, "text": pl.String}


def scan(
    root: str | os.PathLike[str] | None = None, *, storage_options: dict[str, Any] | None = None
) -> pl.LazyFrame:
    """The effective history of every run of the root, lazily (see the module doc)."""
    storage = Storage(settings.root(root), settings.storage_options(storage_options))
    export.check(storage)  # there, and whole (not torn by an export killed half-way)
    base = storage.engine_path(storage.root).rstrip("/")
    options = None if storage.is_local else storage_options

    def table(name: str) -> pl.LazyFrame:
        return pl.scan_parquet(f"{base}/_catalog/{name}.parquet", storage_options=options, glob=False)

    files = table("files").select("path", "pack").collect()
    parts = [f"{base}/{p}" for p, pack in files.iter_rows() if not pack]
    packs = [f"{base}/{p}" for p, pack in files.iter_rows() if pack]
    frames = []
    if parts:
        own = pl.scan_parquet(
            parts, include_file_paths="_file", hive_partitioning=False, storage_options=options, glob=False
        )
        frames.append(
            own.select(
                pl.col("_file").str.extract(r"/run_id=([^/]+)/segment=", 1).alias("source_run_id"),
                pl.col("_file").str.extract(r"/segment=([0-9]+)/", 1).cast(pl.Int64).alias("source_segment"),
                *(pl.col(name).cast(dtype) for name, dtype in RAW.items()),
            )
        )
    if packs:
        packed = pl.scan_parquet(packs, hive_partitioning=False, storage_options=options, glob=False)
        frames.append(
            packed.select(
                pl.col("run_id").cast(pl.String).alias("source_run_id"),
                pl.col("segment").cast(pl.Int64).alias("source_segment"),
                *(pl.col(name).cast(dtype) for name, dtype in RAW.items()),
            )
        )
    raw = (
        pl.concat(frames, how="vertical")
        if frames
        else pl.LazyFrame(schema={"source_run_id": pl.String, "source_segment": pl.Int64, **RAW})
    )
    lineage = (
        table("runs")
        .select("run_id", "segment")
        .join(
            table("closure").rename(
                {"run_id": "source_run_id", "segment": "source_segment", "depth": "source_depth"}
            ),
            left_on=["run_id", "segment"],
            right_on=["node_run_id", "node_segment"],
        )
    )
    return (
        lineage.join(raw, on=["source_run_id", "source_segment"])
        .filter((pl.col("step") > pl.col("step_lo")) & (pl.col("step") <= pl.col("step_hi")))
        .select("run_id", "step", "key", "value", "text", "source_run_id", "source_segment", "source_depth")
    )
