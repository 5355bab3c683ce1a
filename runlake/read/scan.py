"""The one scan engine: rows of chosen keys of chosen node ranges, out of the chosen files.

Every read that needs history rows in Python goes through `scan()`: `history()`, `compare()`,
`plot()` (each node's own rows once) and a fork's inherited summary. It returns plain numbers
(no pivot): a group id g = key index * n + rank, step, value, text, where rank orders the
ranges (for a closure: ancestors first). The SQL views read the same files through the same
macros (`part_rows`, `pack_rows` in sql/).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import CorruptPartError, RunlakeError
from ..store.layout import MAX_STEP
from ..store.parquet import UnreadablePart, check_part, fetch_parts
from ..store.storage import Storage
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
) -> tuple[pa.Table | None, list[str], int]:
    """Rows (g, step, value, text) of `keys` (None: every key the files hold) in `ranges`.

    `ranges` are (depth, run_id, segment, step_lo, step_hi): the rows of node (run_id,
    segment) with step_lo < step <= step_hi; rank = n - 1 - depth. Returns the table (None
    when nothing can match), the key list the group ids index, and n.
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
    if n == 1 and ranges[0][3] < 0 and ranges[0][4] == MAX_STEP:
        # one whole node (a root run): its own rows, all of them, without a join
        query = f"""
            SELECT (list_position($keys, h.key) - 1)::BIGINT AS g, h.step, h.value, h.text
            FROM {source} AS h
            WHERE h.key IN (SELECT unnest($keys)) AND h.run_id = $rid AND h.segment = $seg
        """
        params.update(rid=ranges[0][1], seg=ranges[0][2])
        return _run(cur, query, params, files, storage), scan_keys, n
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
            WHERE h.key IN (SELECT unnest($keys)) AND h.run_id IN (SELECT unnest($ids))
        """
        params.update(n=n, ids=ids)
        return _run(cur, query, params, files, storage), scan_keys, n
    finally:
        cur.unregister("runlake_ranges")


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
    branches = []
    if files.parts:
        cur.execute("SET VARIABLE runlake_scan = ?", [files.parts]).fetchall()
        branches.append(f"SELECT {_COLUMNS} FROM part_rows(getvariable('runlake_scan'))")
    if files.packs:  # rows of other nodes in a pack drop out in the join with the ranges
        cur.execute("SET VARIABLE runlake_scan_packs = ?", [files.packs]).fetchall()
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
