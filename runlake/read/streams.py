"""Reading a run's console lines and system metrics (`Lake.console`, `Lake.system_metrics`,
the `Api`'s `console_logs()` / `history(stream="system")`, `runlake logs`): the `console` and
`system_metrics` views over this run's files only, or every row its segments wrote (`raw`)."""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from . import sql
from .reader import Reader

_ORDER = "time, segment, label, line"


def _frame(reader: Reader, run_id: str, stream: str, query: str, params: list[Any]) -> pl.DataFrame:
    with reader.reading() as cur:
        index = reader.catalog.index()
        reader._node(index, run_id, None)  # RunNotFoundError / a broken run says so
        files = [
            r[0]
            for r in cur.execute(
                "SELECT path FROM stream_files WHERE run_id = ? AND stream = ? ORDER BY path",
                [run_id, stream],
            ).fetchall()
        ]
        empty = reader.catalog._empty[f"runlake_{stream}"]
        cur.execute(f"SET VARIABLE runlake_{stream} = ?", [sql.literal(files or [empty])])
        return pl.from_arrow(cur.sql(query, params=params).to_arrow_table())  # type: ignore[return-value]


def console(
    reader: Reader, run_id: str, *, raw: bool = False, label: str | None = None, grep: str | None = None
) -> pl.DataFrame:
    source = (
        'SELECT run_id, segment, line, make_timestamp(CAST("time" * 1e6 AS BIGINT)) AS "time", step, stream, '
        "CASE WHEN stream = 'stderr' THEN 'error' ELSE '' END AS level, content, label "
        "FROM console_rows(getvariable('runlake_console')) WHERE run_id = $run"
        if raw
        else "SELECT * FROM console WHERE run_id = $run"
    )
    query = f"""
        SELECT number AS line, "time", step, stream, level, label, content, segment FROM (
            SELECT *, row_number() OVER (ORDER BY {_ORDER}) - 1 AS number FROM ({source})
        )
        WHERE ($label IS NULL OR label = $label) AND ($grep IS NULL OR regexp_matches(content, $grep))
        ORDER BY number
    """
    try:
        return _frame(reader, run_id, "console", query, {"run": run_id, "label": label, "grep": grep})  # type: ignore[arg-type]
    except duckdb.Error as exc:
        if grep is None:
            raise
        raise ValueError(
            f"grep {grep!r} is not a regular expression runlake can match (RE2 syntax): {exc}"
        ) from None


def system_metrics(
    reader: Reader, run_id: str, *, raw: bool = False, label: str | None = None
) -> pl.DataFrame:
    source = (
        'SELECT segment, make_timestamp(CAST("time" * 1e6 AS BIGINT)) AS "time", runtime, step, key, value, label '
        "FROM system_rows(getvariable('runlake_system')) WHERE run_id = $run"
        if raw
        else "SELECT * FROM system_metrics WHERE run_id = $run"
    )
    query = f"""
        SELECT "time", runtime, step, key, value, label, segment FROM ({source})
        WHERE $label IS NULL OR label = $label
        ORDER BY "time", label, key
    """
    return _frame(reader, run_id, "system", query, {"run": run_id, "label": label})  # type: ignore[arg-type]
