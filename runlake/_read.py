"""The one read path: resolve the lineage (closure_of), list the parts it needs, scan them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl

from ._parquet import UnreadablePart, check_part, fetch_parts
from ._storage import Storage
from .catalog import Catalog
from .errors import CorruptPartError, RunlakeError

SYSTEM_KEYS = ("_timestamp", "_runtime")
_HIVE = "hive_partitioning = true, hive_types = {'project': VARCHAR, 'run_id': VARCHAR, 'segment': BIGINT}"
_LONG_SCHEMA = {
    "step": pl.Int64,
    "key": pl.String,
    "value": pl.Float64,
    "text": pl.String,
    "source_run_id": pl.String,
    "source_segment": pl.Int64,
}


def frame(cur: duckdb.DuckDBPyConnection, query: str, params: Any = None) -> pl.DataFrame:
    """A query's result as a polars DataFrame (through Arrow); empty for a statement with none."""
    relation = cur.sql(query, params=params)
    if relation is None:
        return pl.DataFrame()
    result = pl.from_arrow(relation.to_arrow_table())
    assert isinstance(result, pl.DataFrame)
    return result


def node_files(cur: duckdb.DuckDBPyConnection, run_id: str, segment: int) -> list[str]:
    """The exact part files a node's effective history needs: closure x parts, by step range."""
    rows = cur.execute(
        """
        SELECT p.path
        FROM closure_of(?, ?) AS c
        JOIN parts AS p
          ON p.run_id = c.run_id AND p.segment = c.segment
         AND p.step_hi > c.step_lo AND p.step_lo <= c.step_hi
        ORDER BY c.depth DESC, p.step_lo
        """,
        [run_id, segment],
    ).fetchall()
    return [r[0] for r in rows]


def scan_long(
    cur: duckdb.DuckDBPyConnection,
    run_id: str,
    segment: int,
    keys: Sequence[str] | None,
    max_step: int | None = None,
    storage: Storage | None = None,
) -> pl.DataFrame:
    """A node's effective history, long: step, key, value, text, source_run_id, source_segment."""
    files = node_files(cur, run_id, segment)
    if not files or (keys is not None and not keys):
        return pl.DataFrame(schema=_LONG_SCHEMA)
    source = _source(cur, files, keys, storage)
    params: list[Any] = [run_id, segment]
    where = ""
    if keys is not None:
        where += f" AND h.key IN ({', '.join('?' for _ in keys)})"
        params.extend(keys)
    if max_step is not None:
        where += " AND h.step <= ?"
        params.append(max_step)
    query = f"""
        SELECT h.step, h.key, h.value, h.text, h.run_id AS source_run_id, h.segment AS source_segment
        FROM {source} AS h
        JOIN closure_of(?, ?) AS c
          ON h.run_id = c.run_id AND h.segment = c.segment
         AND h.step > c.step_lo AND h.step <= c.step_hi
        WHERE true {where}
    """
    return _run_scan(cur, query, params, files, storage)


def scan_wide(
    cur: duckdb.DuckDBPyConnection,
    run_id: str,
    segment: int,
    keys: Sequence[str],
    storage: Storage | None = None,
) -> pl.DataFrame:
    """A node's effective history for some user keys, pivoted by DuckDB as it scans.

    Same result as `to_wide(scan_long(...), keys)` for non-system keys, without materialising
    the long rows: one row per step where any of `keys` was logged.
    """
    names = list(dict.fromkeys(keys))
    files = node_files(cur, run_id, segment)
    columns: dict[str, Any] = {"_step": pl.Int64, "_timestamp": pl.Float64, "_runtime": pl.Float64}
    if not files:
        return pl.DataFrame(schema={**columns, **dict.fromkeys(names, pl.Float64)})
    source = _source(cur, files, [*names, *SYSTEM_KEYS], storage)
    params: dict[str, Any] = {"rid": run_id, "seg": segment}
    picks = []
    for i, name in enumerate(names):
        params[f"k{i}"] = name
        picks.append(
            f"max(h.value) FILTER (WHERE h.key = $k{i}) AS v{i}, max(h.text) FILTER (WHERE h.key = $k{i}) AS t{i}"
        )
    wanted = ", ".join(f"$k{i}" for i in range(len(names)))
    query = f"""
        SELECT h.step AS _step,
               max(h.value) FILTER (WHERE h.key = '_timestamp') AS _timestamp,
               max(h.value) FILTER (WHERE h.key = '_runtime') AS _runtime,
               {", ".join(picks)}
        FROM {source} AS h
        JOIN closure_of($rid, $seg) AS c
          ON h.run_id = c.run_id AND h.segment = c.segment
         AND h.step > c.step_lo AND h.step <= c.step_hi
        WHERE h.key IN ({wanted}, '_timestamp', '_runtime')
        GROUP BY h.step
        HAVING count(*) FILTER (WHERE h.key IN ({wanted})) > 0
        ORDER BY h.step
    """
    wide = _run_scan(cur, query, params, files, storage)
    out = [pl.col("_step").cast(pl.Int64), pl.col("_timestamp"), pl.col("_runtime")]
    for i, name in enumerate(names):
        if wide.get_column(f"t{i}").null_count() == wide.height:
            out.append(pl.col(f"v{i}").cast(pl.Float64).alias(name))
        else:  # ever logged as text: a String column, numbers rendered as text
            out.append(pl.coalesce(pl.col(f"t{i}"), pl.col(f"v{i}").cast(pl.String)).alias(name))
    return wide.select(out)


def _source(
    cur: duckdb.DuckDBPyConnection, files: list[str], keys: Sequence[str] | None, storage: Storage | None
) -> str:
    """What a scan reads from: the files via read_parquet, or (remote) rows fetched concurrently."""
    if storage is not None and not storage.is_local:
        try:
            cur.register("runlake_fetched", fetch_parts(storage.fs, files, keys))
        except UnreadablePart as exc:
            raise _unreadable(exc.path, exc.cause) from None
        return "runlake_fetched"
    cur.execute("SET VARIABLE runlake_scan = ?", [files]).fetchall()
    return f"read_parquet(getvariable('runlake_scan'), {_HIVE})"


def _run_scan(
    cur: duckdb.DuckDBPyConnection, query: str, params: Any, files: list[str], storage: Storage | None
) -> pl.DataFrame:
    try:
        return frame(cur, query, params)
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        bad = [f for f in files if f in str(exc)]
        if storage is not None and not bad:
            bad = [f for f in files if check_part(storage.fs, f) is not None][:1]
        if not bad:
            raise
        raise _unreadable(bad[0], exc) from None


def _unreadable(path: str, cause: BaseException) -> RunlakeError:
    reason = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    return CorruptPartError(
        f"history part {path} cannot be read ({reason}); other runs are unaffected: "
        "`runlake doctor` lists such parts and `runlake doctor --fix` quarantines them"
    )


def to_wide(long: pl.DataFrame, keys: Sequence[str] | None) -> pl.DataFrame:
    """Long points -> one row per step: _step, _timestamp, _runtime, then one column per key.

    Rows: every committed step with keys=None (or only system keys selected), else the steps
    where a selected key has a point (OR semantics). Numbers are Float64; a key that was ever
    logged as text is a String column.
    """
    user_keys = [k for k in keys if k not in ("_step", *SYSTEM_KEYS)] if keys is not None else None
    by_key = {k[0]: df for k, df in long.partition_by("key", as_dict=True, include_key=False).items()}
    if user_keys is None:
        names = sorted(k for k in by_key if k not in SYSTEM_KEYS)
    else:
        names = list(dict.fromkeys(user_keys))
    if user_keys:
        present = [by_key[k].get_column("step") for k in names if k in by_key]
        steps = pl.concat(present).unique() if present else pl.Series("step", [], pl.Int64)
    else:
        steps = long.get_column("step").unique()
    wide = steps.sort().to_frame("step")
    for name in (*SYSTEM_KEYS, *names):
        part = by_key.get(name)
        if part is None:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(name))
            continue
        if part.get_column("text").null_count() == part.height:
            column = part.select("step", pl.col("value").alias(name))
        else:  # ever logged as text: a String column, numbers rendered as text
            column = part.select(
                "step", pl.coalesce(pl.col("text"), pl.col("value").cast(pl.String)).alias(name)
            )
        wide = wide.join(column, on="step", how="left", maintain_order="left")
    return wide.rename({"step": "_step"})


def node_last_values(
    storage: Storage, project: str, run_id: str, segment: int, max_step: int
) -> dict[str, Any]:
    """Last value of every key in a node's effective history up to `max_step` (a summary)."""
    catalog = Catalog(storage, persist_path=None)
    catalog.load_chain(project, run_id, segment)
    cur = catalog.cursor(with_parts=False)
    long = scan_long(cur, run_id, segment, None, max_step=max_step, storage=storage)
    user = long.filter(~pl.col("key").is_in(SYSTEM_KEYS))
    if user.height == 0:
        return {}
    last = user.sort("step").group_by("key").last()
    return {
        row["key"]: row["text"] if row["text"] is not None else row["value"]
        for row in last.iter_rows(named=True)
    }
