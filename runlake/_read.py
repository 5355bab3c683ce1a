"""The one read path: resolve the lineage (closure_of), list the parts it needs, scan them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from ._parquet import UnreadablePart, check_part, fetch_parts
from ._storage import Storage
from .catalog import Catalog, Mirror
from .errors import CorruptPartError, RunlakeError

SYSTEM_KEYS = ("_timestamp", "_runtime")
_HIVE = "hive_partitioning = true, hive_types = {'project': VARCHAR, 'run_id': VARCHAR, 'segment': BIGINT}"
_COLUMNS = "run_id, segment, step, key, value, text"
_CLOSURE_TYPES = (pa.int64(), pa.string(), pa.int64(), pa.int64(), pa.int64())
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


class Files:
    """The files a read needs: nodes' own parts (hive paths) and packs (run_id/segment inside)."""

    def __init__(self, parts: list[str], packs: list[str]) -> None:
        self.parts = parts
        self.packs = packs

    @property
    def all(self) -> list[str]:
        return [*self.parts, *self.packs]

    def __bool__(self) -> bool:
        return bool(self.parts or self.packs)


def node_files(cur: duckdb.DuckDBPyConnection, run_id: str, segment: int) -> Files:
    """The exact files a node's effective history needs: closure x parts, by step range."""
    rows = cur.execute(
        """
        SELECT p.path, p.pack
        FROM closure_of(?, ?) AS c
        JOIN parts AS p
          ON p.run_id = c.run_id AND p.segment = c.segment
         AND p.step_hi > c.step_lo AND p.step_lo <= c.step_hi
        GROUP BY p.path, p.pack
        ORDER BY max(c.depth) DESC, min(p.step_lo)
        """,
        [run_id, segment],
    ).fetchall()
    return Files([r[0] for r in rows if not r[1]], [r[0] for r in rows if r[1]])


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
    long = pl.from_arrow(_run_scan_arrow(cur, query, params, files, storage))
    assert isinstance(long, pl.DataFrame)
    return long


def read_wide(
    cur: duckdb.DuckDBPyConnection,
    mirror: Mirror,
    run_id: str,
    segment: int,
    keys: Sequence[str] | None,
    storage: Storage | None = None,
) -> pl.DataFrame:
    """A node's effective history, wide (what `runlake.history` returns).

    The lineage walk and the file list come from the catalog's Python mirror (no SQL round
    trips); DuckDB joins the rows with the closure and hands back plain numbers; numpy puts
    each key's rows in order (ancestors first: their step ranges are disjoint and increasing)
    and lines the keys up by step, so no row-by-row pivot or sort of the history is needed.
    """
    user = None if keys is None else [k for k in dict.fromkeys(keys) if k not in ("_step", *SYSTEM_KEYS)]
    nodes = mirror.closure(run_id, segment)
    closure = pa.table(
        [
            pa.array(column, type)
            for column, type in zip(zip(*nodes, strict=True), _CLOSURE_TYPES, strict=True)
        ]
        if nodes
        else [pa.array([], t) for t in _CLOSURE_TYPES],
        names=["depth", "run_id", "segment", "step_lo", "step_hi"],
    )
    parts: dict[str, None] = {}
    packs: dict[str, None] = {}
    for _, node_run, node_segment, lo, hi in reversed(nodes):  # ancestors first
        for path, part_lo, part_hi, pack in mirror.files.get((node_run, node_segment), ()):
            if part_hi > lo and part_lo <= hi:
                (packs if pack else parts)[path] = None
    files = Files(list(parts), list(packs))
    cur.register("runlake_closure", closure)
    try:
        scan_keys = None if keys is None else [*(user or []), *SYSTEM_KEYS]
        if not files or (keys is not None and not keys):
            return _assemble(None, [], user, 0)
        source = _source(cur, files, scan_keys, storage)
        ids = sorted(set(closure.column("run_id").to_pylist()))
        if scan_keys is None:  # every key the files hold (keys without rows here drop out later)
            found = _run_scan_arrow(
                cur,
                f"SELECT DISTINCT key FROM {source} AS h WHERE h.run_id IN (SELECT unnest($ids))",
                {"ids": ids},
                files,
                storage,
            )
            scan_keys = sorted(found.column("key").to_pylist())
        params: dict[str, Any] = {"keys": scan_keys}
        if closure.num_rows == 1:  # a root node: its own rows, all of them (no join needed)
            query = f"""
                SELECT (list_position($keys, h.key) - 1)::BIGINT AS g, h.step, h.value, h.text
                FROM {source} AS h
                WHERE h.key IN (SELECT unnest($keys)) AND h.run_id = $rid AND h.segment = $seg
            """
            params.update(rid=run_id, seg=segment)
        else:
            # the run_id filter lets a pack's scan drop other runs' rows before the join
            query = f"""
                SELECT ((list_position($keys, h.key) - 1) * $depths + ($depths - 1 - c.depth))::BIGINT AS g,
                       h.step, h.value, h.text
                FROM {source} AS h
                JOIN runlake_closure AS c
                  ON h.run_id = c.run_id AND h.segment = c.segment
                 AND h.step > c.step_lo AND h.step <= c.step_hi
                WHERE h.key IN (SELECT unnest($keys)) AND h.run_id IN (SELECT unnest($ids))
            """
            params.update(depths=closure.num_rows, ids=ids)
        table = _run_scan_arrow(cur, query, params, files, storage)
    finally:
        cur.unregister("runlake_closure")
    return _assemble(table, scan_keys, user, int(closure.num_rows))  # scan_keys: as the query numbered them


def _assemble(
    table: pa.Table | None, scan_keys: list[str] | None, user: list[str] | None, depths: int
) -> pl.DataFrame:
    """Rows (g = key * depths + ancestor rank, step, value, text) of a node's effective history -> the wide frame."""
    series: dict[str, tuple[np.ndarray, np.ndarray, pa.Array | None]] = {}
    if table is not None and table.num_rows:
        assert scan_keys is not None
        names = scan_keys
        group = table.column("g").to_numpy()
        steps = table.column("step").to_numpy()
        values = table.column("value").to_numpy(zero_copy_only=False)
        text_col = table.column("text")
        texts = None if text_col.null_count == len(text_col) else text_col.combine_chunks()
        # Each key's rows ancestors first: group = (key, -depth). Every file is sorted by
        # (key, [node,] step), so rows come in ascending runs; order the runs, not the rows.
        breaks = (group[1:] != group[:-1]) | (steps[1:] <= steps[:-1])
        starts = np.concatenate(([0], np.flatnonzero(breaks) + 1))
        ends = np.append(starts[1:], len(group))
        run_order = np.lexsort((steps[starts], group[starts]))
        in_order = bool(np.all(run_order[1:] > run_order[:-1]))
        starts, ends = starts[run_order], ends[run_order]
        if not in_order:
            pieces = list(zip(starts.tolist(), ends.tolist(), strict=True))
            steps = np.concatenate([steps[a:b] for a, b in pieces])
            values = np.concatenate([values[a:b] for a, b in pieces])
            if texts is not None:
                texts = texts.take(pa.array(np.concatenate([np.arange(a, b) for a, b in pieces])))
        offsets = np.concatenate(([0], np.cumsum(ends - starts)))
        bounds = offsets[np.searchsorted(group[starts] // depths, np.arange(len(names) + 1))]
        for i, name in enumerate(names):
            lo, hi = int(bounds[i]), int(bounds[i + 1])
            if lo == hi:
                continue
            s, v = steps[lo:hi], values[lo:hi]
            t = texts.slice(lo, hi - lo) if texts is not None else None
            if len(s) > 1 and not bool(np.all(s[1:] > s[:-1])):  # a source out of order: sort
                o = np.argsort(s, kind="stable")
                s, v = s[o], v[o]
                t = t.take(pa.array(o)) if t is not None else None
            if t is not None and t.null_count == len(t):
                t = None
            series[name] = (s, v, t)
    if user is None:
        names_out = sorted(k for k in series if k not in SYSTEM_KEYS)
        row_keys = list(series)
    else:
        names_out = user
        row_keys = [k for k in user if k in series] if user else [k for k in SYSTEM_KEYS if k in series]
    present = [series[k][0] for k in row_keys]
    if not present:
        row_steps = np.empty(0, np.int64)
    else:
        row_steps = _union_sorted(present)
    columns: dict[str, pl.Series] = {"_step": pl.Series("_step", row_steps, pl.Int64)}
    for name in (*SYSTEM_KEYS, *names_out):
        columns[name] = _align(name, series.get(name), row_steps)
    return pl.DataFrame(columns)


def _union_sorted(arrays: list[np.ndarray]) -> np.ndarray:
    """The sorted union of sorted step arrays (usually one of them holds all the others)."""
    base = max(arrays, key=len)
    if all(a is base or _subset(a, base) for a in arrays):
        return base
    merged = np.sort(np.concatenate(arrays))
    return merged[np.concatenate(([True], merged[1:] != merged[:-1]))]


def _subset(a: np.ndarray, base: np.ndarray) -> bool:
    if len(a) == len(base):
        return bool(np.array_equal(a, base))
    pos = np.searchsorted(base, a)
    return bool(np.all(pos < len(base)) and np.array_equal(base[np.minimum(pos, len(base) - 1)], a))


def _align(
    name: str, entry: tuple[np.ndarray, np.ndarray, pa.Array | None] | None, at: np.ndarray
) -> pl.Series:
    """One key's points placed at the row steps `at` (null where it has none)."""
    if entry is None:
        return pl.Series(name, [None] * len(at), pl.Float64)
    steps, values, texts = entry
    if len(steps) == len(at) and (steps is at or np.array_equal(steps, at)):
        if texts is None:
            return pl.Series(name, values, pl.Float64)
        return _as_text(name, values, texts)
    # the rows where this key has a point (steps are sorted and unique)
    index = np.minimum(np.searchsorted(steps, at), max(len(steps) - 1, 0))
    miss = pl.Series(steps[index] != at)
    if texts is None:
        return pl.Series(name, values[index], pl.Float64).set(miss, None)
    return _as_text(name, values, texts).gather(index).set(miss, None)


def _as_text(name: str, values: np.ndarray, texts: pa.Array) -> pl.Series:
    """A key ever logged as text: a String column, its numbers rendered as text."""
    both = pl.DataFrame({"v": values, "t": pl.Series(texts)})
    return both.select(pl.coalesce(pl.col("t"), pl.col("v").cast(pl.String)).alias(name)).to_series()


def _source(
    cur: duckdb.DuckDBPyConnection, files: Files, keys: Sequence[str] | None, storage: Storage | None
) -> str:
    """What a scan reads from: the files via read_parquet, or (remote) rows fetched concurrently."""
    if storage is not None and not storage.is_local:
        try:
            cur.register("runlake_fetched", fetch_parts(storage.fs, files.all, keys))
        except UnreadablePart as exc:
            raise _unreadable(exc.path, exc.cause) from None
        return "runlake_fetched"
    branches = []
    if files.parts:
        cur.execute("SET VARIABLE runlake_scan = ?", [files.parts]).fetchall()
        branches.append(f"SELECT {_COLUMNS} FROM read_parquet(getvariable('runlake_scan'), {_HIVE})")
    if files.packs:  # rows of other nodes in a pack drop out in the join with the closure
        cur.execute("SET VARIABLE runlake_scan_packs = ?", [files.packs]).fetchall()
        branches.append(f"SELECT {_COLUMNS} FROM read_parquet(getvariable('runlake_scan_packs'))")
    return f"({' UNION ALL '.join(branches)})"


def _run_scan_arrow(
    cur: duckdb.DuckDBPyConnection, query: str, params: Any, files: Files, storage: Storage | None
) -> pa.Table:
    try:
        return cur.sql(query, params=params).to_arrow_table()
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        bad = [f for f in files.all if f in str(exc)]
        if storage is not None and not bad:
            bad = [f for f in files.all if check_part(storage.fs, f) is not None][:1]
        if not bad:
            raise
        raise _unreadable(bad[0], exc) from None


def _unreadable(path: str, cause: BaseException) -> RunlakeError:
    reason = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    return CorruptPartError(
        f"history part {path} cannot be read ({reason}); other runs are unaffected: "
        "`runlake doctor` lists such parts and `runlake doctor --fix` quarantines them"
    )


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
