"""runlake on Apache Spark: the same views `runlake.connect()` gives DuckDB (`runs`, `segments`,
`lineage`, `history`, `raw_history`), with the same columns and rows (the `lineage` and
`history` views are sql/lineage.sql and sql/history.sql themselves), from the catalog a root
exports into itself (`runlake catalog export`, and every `runlake compact`).

    from pyspark.sql import SparkSession
    import runlake.spark
    spark = SparkSession.builder.getOrCreate()
    runlake.spark.register(spark, "s3://bucket/runs")        # Spark reads s3a://bucket/runs
    spark.sql("SELECT run_id, max(step) FROM history GROUP BY 1").show()

The lineage is the exported closure (every node with each ancestor and the steps it
contributes), so effective history is one equi-join plus a range condition: no recursion, no
driver-side walk. The files read are the export's list (never a directory listing: Spark
would read the pack manifests beside the packs, and a list never counts a part twice while a
compaction runs); every column is typed explicitly (Spark's inference makes run id "0042" the
number 42 and `segment` an INT). Needs the `spark` extra: pip install 'runlake[spark]'.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from importlib import resources
from typing import Any

from .errors import RunlakeError
from .ops import export
from .store import settings
from .store.storage import Storage

PART_SCHEMA = "step BIGINT, key STRING, value DOUBLE, text STRING"
PACK_SCHEMA = "run_id STRING, segment BIGINT, step BIGINT, key STRING, value DOUBLE, text STRING"
RAW_COLUMNS = ("project", "run_id", "segment", "step", "key", "value", "text")


class StaleCatalogWarning(UserWarning):
    """The exported catalog does not reflect the root's manifests any more (re-export it)."""


def spark_uri(storage: Storage) -> str:
    """How Spark addresses the root: file:// for a local root, s3a:// for s3://."""
    if storage.is_local:
        return "file://" + os.path.abspath(storage.root)
    url = storage.fs.unstrip_protocol(storage.root)
    for scheme, spark_scheme in (("s3://", "s3a://"), ("s3n://", "s3a://")):
        if url.startswith(scheme):
            return spark_scheme + url[len(scheme) :]
    return url


def _sql(*name: str) -> str:
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sql", *name)
    if os.path.isfile(here):  # a checkout
        with open(here) as fh:
            return fh.read()
    return resources.files("runlake").joinpath("sql", *name).read_text()


def _view(name: str) -> str:
    """A DuckDB view of sql/ as a Spark temporary view: the same text, one definition."""
    return _sql(name).replace("CREATE OR REPLACE VIEW", "CREATE OR REPLACE TEMP VIEW")


def register(
    spark: Any,
    root: str | os.PathLike[str] | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
    spark_root: str | None = None,
    check_stale: bool = True,
    recursive: bool = False,
) -> dict[str, Any]:
    """Register `runs`, `segments`, `closure`, `lineage`, `history` and `raw_history` as temporary
    views of `spark`; returns them as DataFrames.

    spark_root: the root as Spark should address it, when it differs from runlake's URL (the
    default maps s3:// to s3a://). check_stale: compare the export with the root's manifests
    now (a listing, done here with runlake) and warn `StaleCatalogWarning` when it is behind.
    recursive: walk the lineage with WITH RECURSIVE (sql/spark/recursive_lineage.sql) instead
    of the exported closure: a fallback for shallow trees only (see that file).
    """
    storage = Storage(settings.root(root), settings.storage_options(storage_options))
    stamp = export.check(storage)  # there, and whole (not torn by an export killed half-way)
    if stamp.get("format") != 1:
        raise RunlakeError(
            f"root {storage.url!r}: exported catalog format {stamp.get('format')!r} is not one this runlake reads"
        )
    if check_stale:
        from .lake import Lake

        with Lake(storage.url, storage_options=storage_options) as lake:
            status = lake.catalog_status()
        if status["stale"]:
            warnings.warn(
                StaleCatalogWarning(
                    f"the exported catalog of {storage.url!r} is stale (the root changed since "
                    f"{stamp.get('exported_at')}): Spark sees the root as it was then; run `runlake catalog export`"
                ),
                stacklevel=2,
            )
    base = (spark_root or spark_uri(storage)).rstrip("/")
    tables = {
        name: spark.read.parquet(f"{base}/_catalog/{name}.parquet")
        for name in ("runs", "segments", "closure")
    }
    files = spark.read.parquet(f"{base}/_catalog/files.parquet").select("path", "pack").collect()
    parts = [f"{base}/{row['path']}" for row in files if not row["pack"]]
    packs = [f"{base}/{row['path']}" for row in files if row["pack"]]
    raw = _raw(spark, parts, packs)
    for name, frame in (*tables.items(), ("raw_history", raw)):
        frame.createOrReplaceTempView(name)
    tables["runs"].createOrReplaceTempView("run_meta")  # what sql/lineage.sql joins (run_id, segment)
    spark.sql(_sql("spark", "recursive_lineage.sql") if recursive else _view("lineage.sql"))
    spark.sql(_view("history.sql"))
    views = {
        name: spark.table(name)
        for name in ("runs", "segments", "closure", "lineage", "history", "raw_history")
    }
    return views


def _raw(spark: Any, parts: Sequence[str], packs: Sequence[str]) -> Any:
    """The raw rows of the listed files, partition columns typed explicitly from the paths."""
    from pyspark.sql import functions as F

    empty = spark.createDataFrame(
        [],
        "project STRING, run_id STRING, segment BIGINT, step BIGINT, key STRING, value DOUBLE, text STRING",
    )
    frames = []
    if parts:  # project, run_id and segment are in a node's part path (hive directories)
        own = _read(spark, PART_SCHEMA, parts)
        frames.append(
            own.select(
                F.regexp_extract("_file", r"/project=([^/]+)/run_id=", 1).alias("project"),
                F.regexp_extract("_file", r"/run_id=([^/]+)/segment=", 1).alias("run_id"),
                F.regexp_extract("_file", r"/segment=([0-9]+)/", 1).cast("bigint").alias("segment"),
                *RAW_COLUMNS[3:],
            )
        )
    if packs:  # a pack holds run_id and segment as columns; the project is in its path
        packed = _read(spark, PACK_SCHEMA, packs)
        frames.append(
            packed.select(
                F.regexp_extract("_file", r"/project=([^/]+)/pack-", 1).alias("project"), *RAW_COLUMNS[1:]
            )
        )
    out = empty
    for frame in frames:
        out = out.unionByName(frame)
    return out


def _read(spark: Any, schema: str, files: Sequence[str]) -> Any:
    """Parquet files with an explicit schema (no inference), and each row's file path."""
    from pyspark.sql import functions as F

    return spark.read.schema(schema).parquet(*files).select("*", F.col("_metadata.file_path").alias("_file"))


def history(
    spark: Any,
    root: str | os.PathLike[str] | None,
    run_id: str,
    keys: Sequence[str] | str | None = None,
    **options: Any,
) -> Any:
    """One run's effective history as a Spark DataFrame (long: step, key, value, text, ...)."""
    from pyspark.sql import functions as F

    views = register(spark, root, **options)
    frame = views["history"].where(F.col("run_id") == run_id)
    if keys is not None:
        frame = frame.where(F.col("key").isin([keys] if isinstance(keys, str) else list(keys)))
    return frame
