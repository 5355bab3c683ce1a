"""Lineage and comparison helpers over the read API: compare, descendants, tree."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import polars as pl

from ._names import check_name
from ._read import frame
from .errors import RunNotFoundError
from .lake import history, reading

PathLike = str | os.PathLike[str]


def compare(
    run_ids: Sequence[str],
    keys: Sequence[str] | str,
    *,
    root: PathLike | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pl.DataFrame:
    """Several runs' effective histories in one frame aligned on `_step`.

    Columns: `_step`, then `<run_id>:<key>` for every run and key, in the order given.
    """
    if isinstance(run_ids, str):
        run_ids = [run_ids]
    if isinstance(keys, str):
        keys = [keys]
    if not run_ids or not keys:
        raise ValueError("compare() needs at least one run id and one key")
    out: pl.DataFrame | None = None
    for run_id in dict.fromkeys(run_ids):
        wide = history(run_id, list(keys), root=root, storage_options=storage_options).select(
            "_step", *[pl.col(k).alias(f"{run_id}:{k}") for k in keys]
        )
        out = wide if out is None else out.join(wide, on="_step", how="full", coalesce=True)
    assert out is not None
    return out.sort("_step")


_DESCENDANTS = """
WITH RECURSIVE down(run_id, parent_run_id, parent_segment, fork_step, generation) AS (
    SELECT s.run_id, s.parent_run_id, s.parent_segment, s.cutoff, 1::BIGINT
    FROM segments AS s WHERE s.kind = 'fork' AND s.parent_run_id = ?
    UNION ALL
    SELECT s.run_id, s.parent_run_id, s.parent_segment, s.cutoff, d.generation + 1
    FROM down AS d JOIN segments AS s ON s.kind = 'fork' AND s.parent_run_id = d.run_id
)
SELECT d.run_id, d.parent_run_id, d.parent_segment, d.fork_step, d.generation, r.project, r.state, r.last_step
FROM down AS d JOIN runs AS r USING (run_id)
ORDER BY d.generation, r.created_at, d.run_id
"""


def descendants(
    run_id: str, *, root: PathLike | None = None, storage_options: dict[str, Any] | None = None
) -> pl.DataFrame:
    """Every run forked from this one, directly or through other forks (generation 1 = children)."""
    check_name(run_id, "run id")
    with reading(root, storage_options) as (storage, _, cur):
        if not cur.execute("SELECT 1 FROM run_meta WHERE run_id = ?", [run_id]).fetchall():
            raise RunNotFoundError(f"run {run_id!r} does not exist in root {storage.url!r}")
        return frame(cur, _DESCENDANTS, [run_id])


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


def tree(
    project: str | None = None, *, root: PathLike | None = None, storage_options: dict[str, Any] | None = None
) -> pl.DataFrame:
    """The fork forest of a project (or the whole root): one row per run with its root and depth."""
    if project is not None:
        check_name(project, "project name")
    with reading(root, storage_options) as (_, _, cur):
        return frame(cur, _TREE, {"project": project})
