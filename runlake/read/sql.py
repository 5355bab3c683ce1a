"""The SQL objects of `sql/` (shipped in the wheel as `runlake/sql`), and query results as frames."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ..errors import QueryError, RunlakeError

# The catalog's tables (what its copy on disk and the SQL sandbox hold), in creation order.
TABLES = (
    "run_meta",
    "segments",
    "parts",
    "closure",
    "archived_parts",
    "alerts",
    "artifact_usage",
    "artifact_files",
    "stream_files",
)
# The file lists the views read, each a variable set on every cursor: variable -> (the kind of
# its empty file, the query listing its files).
FILE_LISTS = {
    "runlake_parts": ("part", "SELECT path FROM parts WHERE NOT pack ORDER BY path"),
    "runlake_packs": ("pack", "SELECT DISTINCT path FROM parts WHERE pack ORDER BY path"),
    "runlake_console": ("console", "SELECT path FROM stream_files WHERE stream = 'console' ORDER BY path"),
    "runlake_system": ("system", "SELECT path FROM stream_files WHERE stream = 'system' ORDER BY path"),
}
# Tables first, then what reads them.
ORDER = (
    *TABLES,
    "part_rows",
    "pack_rows",
    "console_rows",
    "system_rows",
    "closure_of",
    "lineage",
    "raw_history",
    "history",
    "runs",
    "artifacts",
    "own_segments",
    "console",
    "system_metrics",
)


@cache
def _texts() -> tuple[tuple[str, str], ...]:
    packaged = resources.files("runlake") / "sql"
    source = Path(__file__).resolve().parents[2] / "sql"  # a source checkout / editable install
    out = []
    for name in ORDER:
        entry = packaged / f"{name}.sql"
        text = (
            entry.read_text(encoding="utf-8")
            if entry.is_file()
            else (source / f"{name}.sql").read_text("utf-8")
        )
        out.append((name, text))
    return tuple(out)


def install(con: duckdb.DuckDBPyConnection, only: tuple[str, ...] | None = None) -> None:
    """Create every table, macro and view of `sql/` on `con` (idempotent), or just `only` these."""
    for name, text in _texts():
        if only is not None and name not in only:
            continue
        try:
            con.execute(text)
        except duckdb.Error as exc:
            line = re.search(r"LINE (\d+)", str(exc))
            where = f"sql/{name}.sql" + (f", line {line.group(1)}" if line else "")
            raise RunlakeError(f"{where}: {exc}") from exc


def frame(cur: duckdb.DuckDBPyConnection, query: str, params: Any = None) -> pl.DataFrame:
    """A query's result as a polars DataFrame (through Arrow); empty for a statement with none."""
    relation = cur.sql(query, params=params)
    if relation is None:
        return pl.DataFrame()
    result = pl.from_arrow(relation.to_arrow_table())
    assert isinstance(result, pl.DataFrame)
    return result


_GLOB = re.compile(r"([\[*?])")


def literal(paths: list[str]) -> list[str]:
    """Paths DuckDB reads as themselves: its read_parquet globs every path it is given, so a
    root named `exp[1]` would read the sibling `exp1` (each glob character becomes a class of one)."""
    return [_GLOB.sub(r"[\1]", p) if "[" in p or "*" in p or "?" in p else p for p in paths]


def query_error(exc: BaseException) -> QueryError:
    """A DuckDB error as a QueryError, its message (hints and the LINE marker) kept whole."""
    return QueryError(f"{type(exc).__name__}: {exc}")
