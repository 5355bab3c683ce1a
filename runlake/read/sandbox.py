"""User SQL, contained: an allow-list of read statements, and a connection that cannot write.

Two independent walls, so one mistake is not a breach:
1. `guard()` parses the query with DuckDB and admits only read statements (SELECT and its
   FROM-first, VALUES, DESCRIBE, SHOW and SUMMARIZE forms); an EXPLAIN is admitted only when
   the statement it explains is one of them (EXPLAIN ANALYZE runs what it explains).
2. `Sandbox` is a connection of its own, never the catalog's: its tables are copies made for
   it (nothing it holds is ever persisted or seen by another query's sandbox after the
   catalog changes), it may read files only
   under the root (`allowed_directories` with external access off: no `/etc/passwd`, no
   URLs), loads no extension, and its configuration is locked, so a query cannot undo any
   of this. A query runs with an optional time limit (interrupted, also on demand: a web
   client that went away) and a row and byte limit on its result.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from ..errors import QueryError
from . import sql as sqlmod

# What a read-only statement may be (DuckDB parses DESCRIBE, SHOW, SUMMARIZE and VALUES as SELECT)
_READ = "SELECT"
# EXPLAIN, its options, then the statement explained: `EXPLAIN [ANALYZE|ANALYSE] [(...)] <statement>`
_EXPLAIN = re.compile(r"\s*EXPLAIN\s+(?:(?:ANALYZE|ANALYSE)\s+|\([^()]*\)\s*)?(?P<rest>.*)\Z", re.I | re.S)
_COMMENT = re.compile(r"\A\s*(?:--[^\n]*\n|/\*.*?\*/)", re.S)

TABLES = sqlmod.TABLES  # the catalog's tables (read/sql.py)
# a query's values: positional (`?`) or named (`$name`); never formatted into its text
Params = Sequence[Any] | dict[str, Any] | None
VIEWS = tuple(name for name in sqlmod.ORDER if name not in TABLES)


def guard(cur: duckdb.DuckDBPyConnection, query: str) -> None:
    """Refuse a query with any statement that is not a read (QueryError naming it)."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, got {type(query).__name__}")
    statements = _parse(cur, query)
    if not statements:
        raise QueryError("the query is empty")
    for statement in statements:
        _admit(cur, statement.query, str(statement.type).rsplit(".", 1)[-1], depth=0)


def _parse(cur: duckdb.DuckDBPyConnection, query: str) -> list[Any]:
    try:
        return list(cur.extract_statements(query))
    except duckdb.Error as exc:
        raise sqlmod.query_error(exc) from None


def _admit(cur: duckdb.DuckDBPyConnection, text: str, kind: str, depth: int) -> None:
    if kind == _READ:
        return
    if kind == "EXPLAIN" and depth < 4:
        body = text
        while (comment := _COMMENT.match(body)) is not None:
            body = body[comment.end() :]
        match = _EXPLAIN.match(body)
        if match is not None:
            inner = _parse(cur, match.group("rest"))
            if len(inner) == 1:
                _admit(cur, inner[0].query, str(inner[0].type).rsplit(".", 1)[-1], depth + 1)
                return
    what = "EXPLAIN of a statement that is not a SELECT" if kind == "EXPLAIN" else f"a {kind} statement"
    raise QueryError(
        f"runlake's SQL only reads: {what} is refused ({_first_words(text)}). "
        "Queries may SELECT (or EXPLAIN a SELECT) from the views runs, lineage, history and "
        "raw_history; for a connection of your own to change, use runlake.connect()"
    )


def _first_words(text: str) -> str:
    words = " ".join(text.split())
    return words if len(words) <= 60 else words[:57] + "..."


@dataclass(frozen=True)
class Limits:
    """What one query may cost: seconds (None: no limit), result rows and result bytes (None:
    no limit), and the engine's memory (a DuckDB size string, None: DuckDB's default)."""

    timeout: float | None = None
    max_rows: int | None = None
    max_bytes: int | None = None
    memory: str | None = None


@dataclass(frozen=True)
class Result:
    frame: pl.DataFrame
    truncated: bool  # the result had more rows (or bytes) than the limits allowed: this is its start


class Sandbox:
    """A locked-down DuckDB connection holding read-only copies of the catalog's tables and
    every view, as of one catalog generation; queries run on cursors of it."""

    def __init__(
        self,
        tables: dict[str, pa.Table],
        lists: dict[str, Sequence[str]],
        allowed: Sequence[str],
        empty: dict[str, str],
        fs: Any = None,
        memory: str | None = None,
    ) -> None:
        con = duckdb.connect(
            ":memory:", config={"autoload_known_extensions": False, "autoinstall_known_extensions": False}
        )
        if fs is not None:
            con.register_filesystem(fs)
        # views over read_parquet(getvariable(...)) are bound when made: made over one empty file
        # each (cheap), they read the lists each cursor sets (binding 10,000 files costs 0.25 s)
        for var, path in empty.items():
            con.execute(f"SET VARIABLE {var} = ?", [[path]])
        for name in TABLES:
            con.register("runlake_copy", tables[name])
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM runlake_copy")
            con.unregister("runlake_copy")
        sqlmod.install(con, only=VIEWS)
        con.execute("SET allowed_directories = ?", [list(allowed)])
        if memory is not None:
            con.execute("SET memory_limit = ?", [memory])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        self.con = con
        self._files = {var: list(files) for var, files in lists.items()}

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor with the file lists set (variables belong to a connection, not its database)."""
        cur = self.con.cursor()
        for var, files in self._files.items():
            cur.execute(f"SET VARIABLE {var} = ?", [files])
        return cur

    def close(self) -> None:
        self.con.close()

    def run(
        self,
        query: str,
        params: Params = None,
        limits: Limits | None = None,
        cancel: threading.Event | None = None,
    ) -> Result:
        """Run a guarded read query; QueryError if it fails, is cancelled or runs out of time."""
        limits = limits or Limits()
        cur = self.cursor()
        try:
            guard(cur, query)
            stop = _Watch(cur, limits.timeout, cancel)
            try:
                return _fetch(cur.sql(query, params=params), limits)
            except duckdb.InterruptException:
                raise QueryError(stop.why() or "the query was interrupted") from None
            finally:
                stop.close()
        finally:
            cur.close()


def _fetch(relation: duckdb.DuckDBPyRelation | None, limits: Limits) -> Result:
    if relation is None:
        return Result(pl.DataFrame(), False)  # a statement without a result
    reader = relation.to_arrow_reader(65_536)
    batches, rows, size, truncated = [], 0, 0, False
    for batch in reader:
        if limits.max_rows is not None and rows + batch.num_rows > limits.max_rows:
            batch = batch.slice(0, limits.max_rows - rows)
            truncated = True
        batches.append(batch)
        rows += batch.num_rows
        size += batch.nbytes
        if truncated or (limits.max_bytes is not None and size > limits.max_bytes):
            truncated = True
            break
    table = pa.Table.from_batches(batches, schema=reader.schema)
    result = pl.from_arrow(table)
    assert isinstance(result, pl.DataFrame)
    return Result(result, truncated)


class _Watch:
    """Interrupts a cursor when its time is up or `cancel` is set (a client that went away)."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, timeout: float | None, cancel: threading.Event | None):
        self._done = threading.Event()
        self._why: str | None = None
        self._thread: threading.Thread | None = None
        if timeout is None and cancel is None:
            return

        deadline = None if timeout is None else time.monotonic() + timeout

        def watch() -> None:
            while not self._done.wait(0.05):
                if cancel is not None and cancel.is_set():
                    self._why = "the query was cancelled"
                elif deadline is not None and time.monotonic() >= deadline:
                    self._why = f"the query ran longer than its time limit ({timeout:g} s) and was stopped"
                else:
                    continue
                cur.interrupt()
                return

        self._thread = threading.Thread(target=watch, name="runlake-sql-watch", daemon=True)
        self._thread.start()

    def why(self) -> str | None:
        return self._why

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
