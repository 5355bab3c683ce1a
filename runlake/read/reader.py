"""The read API over one root: history, runs, lineage, sql, connect, compare, descendants,
tree; and a fork's inherited summary, which needs no catalog. Every row read in Python goes
resolve lineage -> select files -> scan -> assemble."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import duckdb
import polars as pl

from ..errors import CorruptPartError, RunlakeError, RunNotFoundError
from ..store.layout import MAX_STEP
from ..store.names import check_name
from ..store.parquet import UnreadablePart, verify_local, verify_remote
from ..store.storage import Storage
from . import sql as sqlmod
from .assemble import SYSTEM_KEYS, Series, series, wide
from .catalog import Catalog
from .lineage import ClosureRow, Index, Link, Node, clip, own_start, select_files
from .record import RunRecord
from .record import make as make_record
from .sandbox import Limits, Params, Result, Sandbox
from .scan import downsampled, scan, unreadable

# Runs created as forks (segment 0): a run that later continues as a fork of another (a PBT
# exploit, a later segment) is not the other's descendant, and such links may form cycles.
_DESCENDANTS = """
WITH RECURSIVE down(run_id, parent_run_id, parent_segment, fork_step, generation) AS (
    SELECT s.run_id, s.parent_run_id, s.parent_segment, s.cutoff, 1::BIGINT
    FROM segments AS s WHERE s.kind = 'fork' AND s.segment = 0 AND s.parent_run_id = ?
    UNION ALL
    SELECT s.run_id, s.parent_run_id, s.parent_segment, s.cutoff, d.generation + 1
    FROM down AS d JOIN segments AS s ON s.kind = 'fork' AND s.segment = 0 AND s.parent_run_id = d.run_id
)
SELECT d.run_id, d.parent_run_id, d.parent_segment, d.fork_step, d.generation, r.project, r.state, r.last_step
FROM down AS d JOIN runs AS r USING (run_id)
ORDER BY d.generation, r.created_at, d.run_id
"""

_TREE = """
WITH RECURSIVE up(run_id, root_run_id, depth) AS (
    SELECT r.run_id, r.run_id, 0::BIGINT FROM runs AS r WHERE r.parent_run_id IS NULL
    UNION ALL
    SELECT r.run_id, u.root_run_id, u.depth + 1 FROM up AS u JOIN runs AS r ON r.parent_run_id = u.run_id
)
SELECT r.run_id, r.name, r.project, r.state, r.parent_run_id, r.fork_step, u.root_run_id, u.depth,
       r.segment, r.last_step, r.created_at
FROM runs AS r JOIN up AS u USING (run_id)
WHERE $project IS NULL OR r.project = $project
ORDER BY u.root_run_id, u.depth, r.created_at, r.run_id
"""


def check_keys(keys: Sequence[str] | str | None) -> list[str] | None:
    if isinstance(keys, str):
        return [keys]
    if keys is None:
        return None
    out = list(keys)
    for key in out:
        if not isinstance(key, str):
            raise TypeError(f"keys must be str, got {type(key).__name__} {key!r}")
    return out


def read_series(
    cur: duckdb.DuckDBPyConnection,
    storage: Storage,
    index: Index | dict[Node, Any],
    closure: list[ClosureRow],
    keys: list[str] | None,
) -> dict[str, Series]:
    """Each key's points in a closure's effective history (ancestors first, steps ascending)."""
    files = index.select(closure) if isinstance(index, Index) else select_files(index, closure)
    table, scan_keys, n = scan(cur, storage, closure, files, keys)
    found = series(table, len(scan_keys), max(n, 1))
    return {k: s for k, s in zip(scan_keys, found, strict=True) if s is not None}


class Reader:
    """Reads of one root through its catalog. `prepare` runs before every refresh (the Lake
    flushes this process's open runs there, so a read sees what they logged)."""

    def __init__(self, storage: Storage, catalog: Catalog, prepare: Callable[[], None] | None = None) -> None:
        self.storage = storage
        self.catalog = catalog
        self._prepare = prepare
        # A server answering many requests a second may read a catalog up to this many seconds
        # old (`runlake ui` sets 1 s: a refresh lists the root, ~0.2 s for 10,000 runs).
        self.refresh_every = 0.0
        self._refreshed = -math.inf
        self._refresh_lock = threading.Lock()
        # user SQL's sandbox, rebuilt when the catalog changes; its engine memory (None: DuckDB's default)
        self.sql_memory: str | None = None
        self._box: tuple[int, Sandbox, list[tuple[str, int | None]]] | None = None
        self._box_lock = threading.Lock()

    def close(self) -> None:
        """Release the catalog (saving its copy) and the SQL sandbox."""
        with self._box_lock:
            if self._box is not None:
                self._box[1].close()
                self._box = None
        self.catalog.close()

    def refresh(self, *, force: bool = False) -> Catalog:
        """The catalog brought up to storage: at most `refresh_every` seconds old (0: always
        refreshed), or refreshed now with `force` (what a reader that found no run does before
        it says so: the run may have started since the last refresh)."""
        if force:
            with self._refresh_lock:
                return self._refresh()
        if self.refresh_every:
            if time.monotonic() - self._refreshed < self.refresh_every:
                return self.catalog
            # many requests at once after the interval: one refreshes, the others wait for it
            # (ten refreshes of a 10,000-run root in a row would cost each request a second)
            with self._refresh_lock:
                if time.monotonic() - self._refreshed < self.refresh_every:
                    return self.catalog
                return self._refresh()
        return self._refresh()

    def _refresh(self) -> Catalog:
        if self._prepare is not None:
            self._prepare()
        self.catalog.refresh()
        self._refreshed = time.monotonic()
        return self.catalog

    @contextlib.contextmanager
    def reading(self, with_parts: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """One refresh and a cursor on the catalog, closed afterwards: every read's start."""
        cur = self.refresh().cursor(with_parts=with_parts)
        try:
            yield cur
        finally:
            cur.close()

    def _check_readable(self, run_id: str) -> None:
        problem = self.catalog.broken(run_id)
        if problem is not None:
            raise RunlakeError(f"run {run_id!r} cannot be read: {problem}")

    def _missing(self, run_id: str) -> RunNotFoundError:
        return RunNotFoundError(f"run {run_id!r} does not exist in root {self.storage.url!r}")

    def _node(self, index: Index, run_id: str, segment: int | None) -> tuple[str, int]:
        self._check_readable(run_id)
        current = index.current.get(run_id)
        if current is None:
            raise self._missing(run_id)
        if segment is None:
            return run_id, current
        if (run_id, segment) not in index.links:
            raise RunNotFoundError(f"run {run_id!r} has no segment {segment}: its segments are 0..{current}")
        return run_id, segment

    def _with_retry(self, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except (duckdb.IOException, FileNotFoundError, CorruptPartError):
            # a compaction may have swapped parts since our listing: list again, read once more
            self.catalog.relist_all()
            return read()

    def _wide(
        self,
        cur: duckdb.DuckDBPyConnection,
        run_id: str,
        segment: int | None,
        keys: list[str] | None,
        steps: tuple[int, int] | None = None,
    ) -> pl.DataFrame:
        user = None if keys is None else [k for k in dict.fromkeys(keys) if k not in ("_step", *SYSTEM_KEYS)]
        scan_keys = None if keys is None else [*(user or []), *SYSTEM_KEYS]

        def read() -> pl.DataFrame:
            index = self.catalog.index()
            node = self._node(index, run_id, segment)
            closure = index.closure(*node)
            if steps is not None:
                closure = clip(closure, steps[1] - 1, steps[0] - 1)  # lo <= step < hi
            return wide(read_series(cur, self.storage, index, closure, scan_keys), user)

        return self._with_retry(read)  # type: ignore[no-any-return]

    def history(
        self,
        run_id: str,
        keys: Sequence[str] | str | None = None,
        *,
        segment: int | None = None,
        steps: tuple[int, int] | None = None,
    ) -> pl.DataFrame:
        """A run's effective history, wide and complete: one row per step where a selected key
        was logged (with `steps` = (lo, hi): only steps lo <= step < hi)."""
        check_name(run_id, "run id")
        key_list = check_keys(keys)
        if segment is not None and (isinstance(segment, bool) or not isinstance(segment, int)):
            raise TypeError(f"segment must be an int, got {type(segment).__name__}")
        with self.reading() as cur:
            return self._wide(cur, run_id, segment, key_list, steps)

    def points(self, run_id: str, keys: Sequence[str], *, segment: int | None = None) -> dict[str, Series]:
        """Each key's points of a run's effective history as numpy arrays (steps, values,
        texts), no system keys added: what a chart needs, without building a wide frame."""
        check_name(run_id, "run id")
        key_list = check_keys(list(keys)) or []
        with self.reading() as cur:

            def read() -> dict[str, Series]:
                index = self.catalog.index()
                node = self._node(index, run_id, segment)
                return read_series(cur, self.storage, index, index.closure(*node), key_list)

            return self._with_retry(read)  # type: ignore[no-any-return]

    def plan(
        self, run_id: str, segment: int | None = None
    ) -> tuple[list[ClosureRow], dict[Node, Link], tuple[str, ...]]:
        """What a read of a run's effective history would read, without reading it: its closure
        (nearest node first), each closure node's lineage link, and the files. Cheap (the
        catalog's Python index), so a cache can key on it: the same files and ranges give the
        same rows."""
        check_name(run_id, "run id")
        index = self.refresh().index()
        node = self._node(index, run_id, segment)
        closure = index.closure(*node)
        links = {(r, s): index.links[(r, s)] for _, r, s, _, _ in closure}
        return closure, links, tuple(index.select(closure).all)

    def drawn(
        self,
        run_id: str,
        keys: Sequence[str],
        *,
        fine: int,
        lo: int | None = None,
        hi: int | None = None,
        segment: int | None = None,
        window_only: bool = False,
        extremes: bool = False,
    ) -> dict[str, tuple[int, list[tuple[Any, Any, int]]]]:
        """Keys of a run's effective history over steps [lo, hi], reduced to `fine` step buckets
        where the rows are (see `scan.downsampled`): per key its point count and, for its inherited
        part and its own part (a segment read has no inherited part), the (steps, values,
        points in the window) to draw. `window_only` reads only the files that hold steps in
        [lo, hi] (a zoom): the point count is then the window's. `extremes`: of each bucket its
        lowest and highest point only (a workspace panel's)."""
        check_name(run_id, "run id")
        key_list = check_keys(list(keys)) or []
        with self.reading() as cur:

            def read() -> dict[str, tuple[int, list[tuple[Any, Any, int]]]]:
                index = self.catalog.index()
                node = self._node(index, run_id, segment)
                closure = index.closure(*node)
                own = own_start(closure, run_id) if segment is None else None
                if window_only and (lo is not None or hi is not None):
                    closure = clip(closure, MAX_STEP if hi is None else hi, -1 if lo is None else lo - 1)
                files = index.select(closure)
                whole = index.span(closure)
                span = (
                    max(whole[0], whole[0] if lo is None else lo),
                    min(whole[1], whole[1] if hi is None else hi),
                )
                found = downsampled(
                    cur,
                    self.storage,
                    closure,
                    files,
                    key_list,
                    fine=fine,
                    span=span,
                    own_from=own,
                    extremes=extremes,
                )
                for key, (total, pieces) in list(found.items()):
                    # a key logged over a small part of the span got few buckets: again over its own
                    drawn = [p[0] for p in pieces if len(p[0])]
                    if not drawn or sum(len(p[0]) for p in pieces) == sum(p[2] for p in pieces):
                        continue  # nothing there, or every point
                    first, last = min(int(p[0]) for p in drawn), max(int(p[-1]) for p in drawn)
                    if 4 * (last - first + 1) < span[1] - span[0] + 1:
                        narrow = (first, last)
                        again = downsampled(
                            cur,
                            self.storage,
                            closure,
                            files,
                            [key],
                            fine=fine,
                            span=narrow,
                            own_from=own,
                            extremes=extremes,
                        )
                        found[key] = (total, again[key][1])
                return found

            return self._with_retry(read)  # type: ignore[no-any-return]

    def compare(self, run_ids: Sequence[str] | str, keys: Sequence[str] | str) -> pl.DataFrame:
        """Several runs' effective histories in one frame aligned on `_step` (one refresh)."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        key_list = check_keys(keys) or []
        if not ids or not key_list:
            raise ValueError("compare() needs at least one run id and one key")
        for run_id in ids:
            check_name(run_id, "run id")
        out: pl.DataFrame | None = None
        with self.reading() as cur:
            for run_id in dict.fromkeys(ids):
                one = self._wide(cur, run_id, None, key_list).select(
                    "_step", *[pl.col(k).alias(f"{run_id}:{k}") for k in key_list]
                )
                out = one if out is None else out.join(one, on="_step", how="full", coalesce=True)
        assert out is not None
        return out.sort("_step")

    def fork_tree(self, run_ids: Sequence[str], key: str) -> list[tuple[dict[str, Any], Series | None]]:
        """Every node of the runs' lineages once, with its own points of `key` in the range it
        contributes to any of them: what a fork-tree chart draws. One refresh, one scan.

        Each entry: the node's lineage row (run_id, segment, kind, parent_run_id,
        parent_segment, cutoff, step_lo, hi: None = open-ended, current: a run's own
        latest node) and its series.
        """
        with self.reading() as cur:

            def read() -> list[tuple[dict[str, Any], Series | None]]:
                index = self.catalog.index()
                nodes: dict[Node, dict[str, Any]] = {}
                for run_id in dict.fromkeys(run_ids):
                    node = self._node(index, run_id, None)
                    chain = sqlmod.frame(cur, "SELECT * FROM closure_of(?, ?)", [node[0], node[1]])
                    for row in chain.iter_rows(named=True):
                        entry = nodes.setdefault(
                            (row["run_id"], row["segment"]), {**row, "hi": row["step_hi"]}
                        )
                        entry["hi"] = max(entry["hi"], row["step_hi"])
                        entry["current"] = entry.get("current", False) or row["depth"] == 0
                ranges = [
                    (i, r, s, info["step_lo"], info["hi"]) for i, ((r, s), info) in enumerate(nodes.items())
                ]
                table, _, n = scan(cur, self.storage, ranges, index.select(ranges), [key])
                # one key: g = n - 1 - i for node i, so the series come out in reverse order
                found = list(reversed(series(table, n, 1))) if n else []
                for info in nodes.values():
                    info["hi"] = None if info["hi"] == MAX_STEP else info["hi"]
                return list(zip(nodes.values(), found, strict=True))

            return self._with_retry(read)  # type: ignore[no-any-return]

    def runs(self, project: str | None = None) -> pl.DataFrame:
        """One row per run: id, project, name, state, created_at, parent_run_id, fork_step, last_step, config, summary, ..."""
        if project is not None:
            check_name(project, "project name")
        with self.reading() as cur:
            if project is None:
                return sqlmod.frame(cur, "SELECT * FROM runs ORDER BY created_at, run_id")
            return sqlmod.frame(
                cur, "SELECT * FROM runs WHERE project = ? ORDER BY created_at, run_id", [project]
            )

    def lineage(self, run_id: str) -> pl.DataFrame:
        """The chain of (run_id, segment) nodes from the run up to its root, nearest first."""
        check_name(run_id, "run id")
        with self.reading() as cur:
            self._check_readable(run_id)
            segment = self.catalog.index().current.get(run_id)
            if segment is None:
                raise self._missing(run_id)
            return _lineage(cur, run_id, segment)

    def record(self, run_id: str) -> RunRecord:
        """One run as a read-only record (see `record.py`), read in one refresh."""
        check_name(run_id, "run id")
        with self.reading() as cur:
            self._check_readable(run_id)
            found = sqlmod.frame(cur, "SELECT * FROM runs WHERE run_id = ?", [run_id])
            if found.height == 0:
                raise self._missing(run_id)
            row = found.row(0, named=True)
            chain = _lineage(cur, run_id, int(row["segment"]))
            segments = sqlmod.frame(cur, "SELECT * FROM segments WHERE run_id = ? ORDER BY segment", [run_id])
            below = sqlmod.frame(cur, _DESCENDANTS, [run_id])
        return make_record(row, chain, segments, below)

    def sql(self, query: str, params: Params = None) -> pl.DataFrame:
        """Run a read-only query over the views runs, lineage, history and raw_history."""
        return self.query(query, params).frame

    def query(
        self,
        query: str,
        params: Params = None,
        limits: Limits | None = None,
        cancel: threading.Event | None = None,
    ) -> Result:
        """Run a read-only query over the views runs, lineage, history and raw_history, in the
        sandbox (see `sandbox.py`); values go in `params`. A statement that is not a read is
        refused; the files a query reads are checked (page checksums) before DuckDB reads them."""
        for attempt in range(2):
            self.refresh()
            box, files = self._sandbox()
            try:
                if _reads_files(query):
                    self._verify(files)
                return box.run(query, params, limits, cancel)
            except (duckdb.IOException, duckdb.InvalidInputException) as exc:
                if attempt == 0 and _files_moved(exc):
                    # a compaction swapped files since the listing: list again, run once more
                    self.catalog.relist_all()
                    continue
                raise sqlmod.query_error(exc) from None
            except duckdb.Error as exc:
                raise sqlmod.query_error(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _sandbox(self) -> tuple[Sandbox, list[tuple[str, int | None]]]:
        with self._box_lock:
            if self._box is None or self._box[0] != self.catalog.generation:
                generation, box, files = self.catalog.sandbox(self.sql_memory)
                self._box = (generation, box, files)  # the one before is closed when its last query ends
            return self._box[1], self._box[2]

    def files(self) -> list[tuple[str, int | None]]:
        """Every history file the catalog indexes (parts and packs once each), with its size."""
        with self.reading() as cur:
            return [
                (p, b) for p, b in cur.execute("SELECT path, max(bytes) FROM parts GROUP BY path").fetchall()
            ]

    def _verify(self, files: list[tuple[str, int | None]]) -> None:
        """DuckDB does not check page checksums: a garbled byte that still decodes would be a
        different number. Every file is checked once per process (and again when it changes)."""
        try:
            if self.storage.is_local:
                verify_local([path for path, _ in files])
            else:
                verify_remote(self.storage.fs, [(self.storage.local_path(p), b) for p, b in files])
        except UnreadablePart as exc:
            raise unreadable(exc.path, exc.cause) from None

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection of your own with every runlake view, as of now (call again to see
        newer data). What you do with it (even DROP VIEW runs) never touches runlake's catalog."""
        return self.refresh().snapshot()

    def descendants(self, run_id: str) -> pl.DataFrame:
        """Every run forked from this one, directly or through other forks (generation 1 = children)."""
        check_name(run_id, "run id")
        with self.reading() as cur:
            if run_id not in self.catalog.index().current:
                raise self._missing(run_id)
            return sqlmod.frame(cur, _DESCENDANTS, [run_id])

    def tree(self, project: str | None = None) -> pl.DataFrame:
        """The fork forest of a project (or the whole root): one row per run with its root and depth."""
        if project is not None:
            check_name(project, "project name")
        with self.reading() as cur:
            return sqlmod.frame(cur, _TREE, {"project": project})


def _lineage(cur: duckdb.DuckDBPyConnection, run_id: str, segment: int) -> pl.DataFrame:
    return sqlmod.frame(
        cur,
        """
        SELECT depth, run_id, segment, project, kind, parent_run_id, parent_segment, cutoff,
               step_lo, CASE WHEN step_hi = $max THEN NULL ELSE step_hi END AS step_hi
        FROM closure_of($rid, $seg) ORDER BY depth
        """,
        {"rid": run_id, "seg": segment, "max": MAX_STEP},
    )


def _reads_files(query: str) -> bool:
    """May the query read Parquet files? Any that does names a view or macro over them, a
    Parquet function or a `.parquet` path, so this reads the text (an EXPLAIN would bind every
    file of the root); a false yes only costs the (cached) check."""
    text = query.lower()
    return any(word in text for word in ("history", "parquet", "part_rows", "pack_rows"))


def _files_moved(exc: BaseException) -> bool:
    text = str(exc)
    return any(m in text for m in ("No files found", "Cannot open file", "No such file"))
