"""The public read API over a root: history, runs, lineage, sql, connect."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import polars as pl

from . import _registry
from ._names import check_name
from ._read import frame, read_wide
from ._storage import Storage, resolve_options, resolve_root
from .catalog import Catalog, cache_path
from .errors import CorruptPartError, RunNotFoundError

_storages: dict[tuple[str, str], Storage] = {}
_catalogs: dict[Any, Catalog] = {}
_lock = threading.Lock()


def get_storage(
    root: str | os.PathLike[str] | None, storage_options: dict[str, Any] | None = None
) -> Storage:
    """The root (`root=`, $RUNLAKE_ROOT, ./runlake) with its fsspec options, made once per process."""
    url = resolve_root(root)
    options = resolve_options(storage_options)
    key = (url if "://" in url else os.path.abspath(url), json.dumps(options, sort_keys=True, default=str))
    with _lock:
        storage = _storages.get(key)
        if storage is None:
            storage = _storages[key] = Storage(url, options)
        return storage


def get_catalog(storage: Storage) -> Catalog:
    """This process's catalog of a root, refreshed (in-process runs flushed first)."""
    for run in _registry.open_runs(storage):
        if run._buf or run._packed or run._meta_dirty:  # make what it logged visible; skip idle runs
            run.flush()
    with _lock:
        catalog = _catalogs.get(storage.key)
        if catalog is None:
            catalog = _catalogs[storage.key] = Catalog(storage, cache_path(storage))
    catalog.refresh()
    return catalog


@contextlib.contextmanager
def reading(
    root: str | os.PathLike[str] | None,
    storage_options: dict[str, Any] | None = None,
    *,
    with_parts: bool = False,
) -> Iterator[tuple[Storage, Catalog, duckdb.DuckDBPyConnection]]:
    """The root, its refreshed catalog and a cursor on it, closed afterwards: every read's start."""
    storage = get_storage(root, storage_options)
    catalog = get_catalog(storage)
    cur = catalog.cursor(with_parts=with_parts)
    try:
        yield storage, catalog, cur
    finally:
        cur.close()


def _current_segment(cur: duckdb.DuckDBPyConnection, run_id: str, storage: Storage) -> int:
    row = cur.execute("SELECT segment FROM run_meta WHERE run_id = ?", [run_id]).fetchall()
    if not row:
        raise RunNotFoundError(f"run {run_id!r} does not exist in root {storage.url!r}")
    return int(row[0][0])


def history(
    run_id: str,
    keys: Sequence[str] | str | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    segment: int | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pl.DataFrame:
    """A run's effective history, wide and complete: one row per step where a selected key was logged.

    Args:
        keys: metric names to return (None: all). Rows are the steps where any of them was logged.
        segment: read an archived segment (left by a rewind) instead of the current one.
    """
    check_name(run_id, "run id")
    if isinstance(keys, str):
        keys = [keys]
    if keys is not None:
        keys = list(keys)
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, got {type(key).__name__} {key!r}")
    if segment is not None and (isinstance(segment, bool) or not isinstance(segment, int)):
        raise TypeError(f"segment must be an int, got {type(segment).__name__}")
    with reading(root, storage_options) as (storage, catalog, cur):
        mirror = catalog.mirror()
        current = mirror.current.get(run_id)
        if current is None:
            raise RunNotFoundError(f"run {run_id!r} does not exist in root {storage.url!r}")
        if segment is None:
            segment = current
        elif (run_id, segment) not in mirror.links:
            raise RunNotFoundError(f"run {run_id!r} has no segment {segment}: its segments are 0..{current}")

        def read() -> pl.DataFrame:
            return read_wide(cur, catalog.mirror(), run_id, segment, keys, storage=storage)

        try:
            return read()
        except (duckdb.IOException, FileNotFoundError, CorruptPartError):
            # a compaction may have swapped parts since our listing: list again, read once more
            catalog.relist_all()
            return read()


def runs(
    project: str | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pl.DataFrame:
    """One row per run: id, project, name, state, created_at, parent_run_id, fork_step, last_step, config, summary, ..."""
    if project is not None:
        check_name(project, "project name")
    with reading(root, storage_options) as (_, _, cur):
        if project is None:
            return frame(cur, "SELECT * FROM runs ORDER BY created_at, run_id")
        return frame(cur, "SELECT * FROM runs WHERE project = ? ORDER BY created_at, run_id", [project])


def lineage(
    run_id: str, *, root: str | os.PathLike[str] | None = None, storage_options: dict[str, Any] | None = None
) -> pl.DataFrame:
    """The chain of (run_id, segment) nodes from the run up to its root, nearest first.

    Each row: the link's kind (root, fork, rewind), its parent node and cutoff step, and the
    step range (step_lo, step_hi] that node contributes to the run's effective history.
    """
    check_name(run_id, "run id")
    with reading(root, storage_options) as (storage, _, cur):
        segment = _current_segment(cur, run_id, storage)
        return frame(
            cur,
            """
            SELECT depth, run_id, segment, project, kind, parent_run_id, parent_segment, cutoff,
                   step_lo, CASE WHEN step_hi = 9223372036854775807 THEN NULL ELSE step_hi END AS step_hi
            FROM closure_of(?, ?) ORDER BY depth
            """,
            [run_id, segment],
        )


def sql(
    query: str,
    *,
    root: str | os.PathLike[str] | None = None,
    params: Sequence[Any] | dict[str, Any] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pl.DataFrame:
    """Run SQL over the views runs, lineage, history and raw_history; values go in `params`."""
    with reading(root, storage_options, with_parts=True) as (_, _, cur):
        return frame(cur, query, params)


def connect(
    root: str | os.PathLike[str] | None = None, *, storage_options: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every runlake view, as of now (call again to see newer data)."""
    return get_catalog(get_storage(root, storage_options)).cursor()
