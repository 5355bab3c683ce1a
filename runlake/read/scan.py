"""The one scan engine: rows of chosen keys of chosen node ranges, out of the chosen files.

Every read that needs history rows in Python goes through `scan()`: `history()`, `compare()`,
`plot()` (each node's own rows once) and a fork's inherited summary. It returns plain numbers
(no pivot): a group id g = key index * n + rank, step, value, text, where rank orders the
ranges (for a closure: ancestors first). The SQL views read the same files through the same
macros (`part_rows`, `pack_rows` in sql/).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ..errors import CorruptPartError, RunlakeError
from ..store.layout import MAX_STEP
from ..store.parquet import UnreadablePart, check_part, fetch_parts, verify_local
from ..store.storage import Storage
from . import sql as sqlmod
from .lineage import ClosureRow, Files

_COLUMNS = "run_id, segment, step, key, value, text"
_RANGE_TYPES = (pa.int64(), pa.string(), pa.int64(), pa.int64(), pa.int64())
_RANGE_NAMES = ["depth", "run_id", "segment", "step_lo", "step_hi"]


def scan(
    cur: duckdb.DuckDBPyConnection,
    storage: Storage,
    ranges: list[ClosureRow],
    files: Files,
    keys: Sequence[str] | None,
    *,
    over: Callable[[str], tuple[str, dict[str, Any]]] | None = None,
) -> tuple[pa.Table | None, list[str], int]:
    """Rows (g, step, value, text) of `keys` (None: every key the files hold) in `ranges`.

    `ranges` are (depth, run_id, segment, step_lo, step_hi): the rows of node (run_id,
    segment) with step_lo < step <= step_hi; rank = n - 1 - depth. Returns the table (None
    when nothing can match), the key list the group ids index, and n.

    `over` turns the scan's query into another over its rows (an aggregate: see
    `downsampled`) and gives that query's parameters; $n is bound in both.
    """
    n = len(ranges)
    if not files or not ranges or (keys is not None and not keys):
        return None, list(keys or []), n
    source = _source(cur, files, keys, storage)
    ids = sorted({r[1] for r in ranges})
    scan_keys = list(keys) if keys is not None else None
    if scan_keys is None:  # every key the files hold (keys without rows here drop out later)
        found = _run(
            cur,
            f"SELECT DISTINCT key FROM {source} AS h WHERE h.run_id IN (SELECT unnest($ids))",
            {"ids": ids},
            files,
            storage,
        )
        scan_keys = sorted(found.column("key").to_pylist())
    params: dict[str, Any] = {"keys": scan_keys}
    wanted = _key_filter(scan_keys)
    if n == 1 and ranges[0][3] < 0 and ranges[0][4] == MAX_STEP:
        # one whole node (a root run): its own rows, all of them, without a join
        query = f"""
            SELECT (list_position($keys, h.key) - 1)::BIGINT AS g, h.step, h.value, h.text
            FROM {source} AS h
            WHERE {wanted} AND h.run_id = $rid AND h.segment = $seg
        """
        params.update(rid=ranges[0][1], seg=ranges[0][2])
        return _run(cur, *_over(over, query, params, n), files, storage), scan_keys, n
    table = pa.table(
        [pa.array(col, t) for col, t in zip(zip(*ranges, strict=True), _RANGE_TYPES, strict=True)],
        names=_RANGE_NAMES,
    )
    cur.register("runlake_ranges", table)
    try:
        # the run_id filter lets a pack's scan drop other runs' rows before the join
        query = f"""
            SELECT ((list_position($keys, h.key) - 1) * $n + ($n - 1 - c.depth))::BIGINT AS g,
                   h.step, h.value, h.text
            FROM {source} AS h
            JOIN runlake_ranges AS c
              ON h.run_id = c.run_id AND h.segment = c.segment
             AND h.step > c.step_lo AND h.step <= c.step_hi
            WHERE {wanted} AND h.run_id IN (SELECT unnest($ids))
        """
        params.update(ids=ids)
        return _run(cur, *_over(over, query, params, n), files, storage), scan_keys, n
    finally:
        cur.unregister("runlake_ranges")


def _over(
    over: Callable[[str], tuple[str, dict[str, Any]]] | None, query: str, params: dict[str, Any], n: int
) -> tuple[str, dict[str, Any]]:
    if over is None:
        return query, ({**params, "n": n} if "$n" in query else params)
    outer, extra = over(query)
    return outer, {**params, **extra, "n": n}


# Per key, part (1: steps after $own, a run's own rows; 0: those before, inherited) and fine x
# bucket of the window [$lo, $hi]: the first, last, lowest and highest point (M4) and the
# count. Rows outside the window fall in bucket NULL (they count towards the key's total).
# NaN and text points are never a min or a max; as a first or last point their value is NaN.
_M4 = """
SELECT g // $n AS k, (step > $own)::BIGINT AS part,
       CASE WHEN step >= $lo AND step <= $hi
            THEN least(floor((step - $lo)::DOUBLE * $scale)::BIGINT, $fine - 1) END AS bucket,
       count(*) AS n,
       min(step) AS s0, arg_min(coalesce(value, 'NaN'::DOUBLE), step) AS y0,
       max(step) AS s1, arg_max(coalesce(value, 'NaN'::DOUBLE), step) AS y1,
       coalesce(arg_min(step, value) FILTER (WHERE NOT isnan(value)), s0) AS s2,
       coalesce(min(value) FILTER (WHERE NOT isnan(value)), y0) AS y2,
       coalesce(arg_max(step, value) FILTER (WHERE NOT isnan(value)), s1) AS s3,
       coalesce(max(value) FILTER (WHERE NOT isnan(value)), y1) AS y3
FROM ({scan})
GROUP BY ALL
"""
# The same buckets' lowest and highest point only (what a workspace panel draws): a third
# cheaper to aggregate; NaN and text points are left out (of the count too).
_EXTREMES = """
SELECT g // $n AS k, (step > $own)::BIGINT AS part,
       CASE WHEN step >= $lo AND step <= $hi
            THEN least(floor((step - $lo)::DOUBLE * $scale)::BIGINT, $fine - 1) END AS bucket,
       count(*) AS n,
       arg_min(step, value) AS s2, min(value) AS y2, arg_max(step, value) AS s3, max(value) AS y3
FROM ({scan})
WHERE value IS NOT NULL AND NOT isnan(value)
GROUP BY ALL
"""


def downsampled(
    cur: duckdb.DuckDBPyConnection,
    storage: Storage,
    ranges: list[ClosureRow],
    files: Files,
    keys: Sequence[str],
    *,
    fine: int,
    span: tuple[int, int],
    own_from: int | None,
    extremes: bool = False,
) -> dict[str, tuple[int, list[tuple[np.ndarray, np.ndarray, int]]]]:
    """Each key's effective history within the steps `span` = [lo, hi], reduced where the rows
    are: DuckDB reads them and keeps, of each of `fine` equal step buckets, the first, last,
    lowest and highest point (M4), so no spike is lost and no row comes to Python. Per key:
    its number of points (all steps) and, for the steps up to `own_from` and those after it,
    (steps, values (NaN: none), points in the span), in step order; a chart reduces them
    again to its pixel buckets. `extremes`: each bucket's lowest and highest point only."""
    lo, hi = span
    params = {
        "own": -1 if own_from is None else own_from,
        "lo": lo,
        "hi": hi,
        "fine": fine,
        "scale": fine / max(hi - lo + 1, 1),
    }
    aggregate = _EXTREMES if extremes else _M4
    table, scan_keys, _ = scan(
        cur, storage, ranges, files, keys, over=lambda query: (aggregate.format(scan=query), params)
    )
    out: dict[str, tuple[int, list[tuple[np.ndarray, np.ndarray, int]]]] = {}
    if table is None:
        return out
    cols = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    inside = ~table.column("bucket").is_null().to_numpy(zero_copy_only=False)
    for i, key in enumerate(scan_keys):
        mine = cols["k"] == i
        if not mine.any():
            continue
        pieces = []
        for which in (0, 1):
            chosen = mine & inside & (cols["part"] == which)
            corners = (2, 3) if extremes else range(4)
            steps = np.concatenate([cols[f"s{j}"][chosen] for j in corners])
            values = np.concatenate([cols[f"y{j}"][chosen] for j in corners])
            steps, first = np.unique(steps, return_index=True)
            pieces.append((steps, values[first].astype(np.float64), int(cols["n"][chosen].sum())))
        out[key] = (int(cols["n"][mine].sum()), pieces)
    return out


# A few keys are a plain filter: it keeps the scan a filter (DuckDB then returns the rows in
# file order, and the assembly has nothing to re-sort) and costs less than a semi-join. Many
# keys are a semi-join: list_contains is linear in the list for every row.
_FILTER_KEYS = 16


def _key_filter(keys: list[str]) -> str:
    return "list_contains($keys, h.key)" if len(keys) <= _FILTER_KEYS else "h.key IN (SELECT unnest($keys))"


def _source(
    cur: duckdb.DuckDBPyConnection, files: Files, keys: Sequence[str] | None, storage: Storage
) -> str:
    """What a scan reads from: the files through the SQL macros, or (remote) rows fetched concurrently."""
    if not storage.is_local:
        try:
            cur.register("runlake_fetched", fetch_parts(storage.fs, files.all, keys))
        except UnreadablePart as exc:
            raise unreadable(exc.path, exc.cause) from None
        return "runlake_fetched"
    try:
        verify_local(files.all)
    except UnreadablePart as exc:
        raise unreadable(exc.path, exc.cause) from None
    branches = []
    if files.parts:
        cur.execute("SET VARIABLE runlake_scan = ?", [sqlmod.literal(files.parts)]).fetchall()
        branches.append(f"SELECT {_COLUMNS} FROM part_rows(getvariable('runlake_scan'))")
    if files.packs:  # rows of other nodes in a pack drop out in the join with the ranges
        cur.execute("SET VARIABLE runlake_scan_packs = ?", [sqlmod.literal(files.packs)]).fetchall()
        branches.append(f"SELECT {_COLUMNS} FROM pack_rows(getvariable('runlake_scan_packs'))")
    return f"({' UNION ALL '.join(branches)})"


def _run(cur: duckdb.DuckDBPyConnection, query: str, params: Any, files: Files, storage: Storage) -> pa.Table:
    try:
        return cur.sql(query, params=params).to_arrow_table()
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        bad = [f for f in files.all if f in str(exc)]
        if not bad:
            bad = [f for f in files.all if check_part(storage.fs, storage.local_path(f)) is not None][:1]
        if not bad:
            raise
        raise unreadable(bad[0], exc) from None


def unreadable(path: str, cause: BaseException) -> RunlakeError:
    reason = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    return CorruptPartError(
        f"history part {path} cannot be read ({reason}); other runs are unaffected: "
        "`runlake doctor` lists such parts and `runlake doctor --fix` quarantines them"
    )
