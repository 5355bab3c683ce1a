"""Compaction: merge the small parts of finished segments into one file sorted by (key, step).

Safe while writers and readers run: only segments nobody writes are touched; the compacted
part (`cpart-...`) is written whole first, and from that moment a listing ignores the parts it
holds (the index switch); then the old parts are removed. A crash at any point leaves a root
that reads the same, and the next `compact()` finishes the job (idempotent, resumable).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import polars as pl

from ._parquet import encode, read_parts
from ._storage import visible_parts
from .lake import get_catalog, get_storage

PathLike = str | os.PathLike[str]


def compact(
    root: PathLike | None = None,
    *,
    progress: bool | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pl.DataFrame:
    """Compact every finished (or archived) segment with more than one part.

    Returns one row per segment looked at: run_id, segment, parts_before, parts_after,
    bytes_before, bytes_after. `progress=None` shows a progress bar on a terminal.
    """
    storage = get_storage(root, storage_options)
    catalog = get_catalog(storage)
    cur = catalog.cursor(with_parts=False)
    try:
        nodes = cur.execute(
            """
            SELECT s.project, s.run_id, s.segment
            FROM segments AS s JOIN run_meta AS r USING (run_id)
            WHERE s.segment < r.segment OR r.state IN ('finished', 'failed', 'crashed')
            ORDER BY s.run_id, s.segment
            """
        ).fetchall()
    finally:
        cur.close()
    show = sys.stderr.isatty() if progress is None else progress
    rows = []
    from rich.progress import track

    for project, run_id, segment in track(nodes, description="compacting", disable=not show, transient=True):
        listed = storage.list_parts(storage.segment_dir(project, run_id, segment), include_covered=True)
        visible = visible_parts(listed)
        before = sum(p.size for p in visible)
        removable = [p for p in listed if p not in visible]
        after = before
        if len(visible) > 1:
            table = read_parts(storage.fs, [p.path for p in visible]).sort_by(
                [("key", "ascending"), ("step", "ascending")]
            )
            lo, hi = min(p.step_lo for p in visible), max(p.step_hi for p in visible)
            data = encode(table)
            target = storage.part_path(project, run_id, segment, lo, hi, compacted=True)
            storage.write_atomic(target, data)  # the switch: listings now ignore what it covers
            storage.write_json_atomic(
                storage.meta_path(project, run_id, f"compacted-{segment}.json"),
                {
                    "segment": segment,
                    "part": target.rsplit("/", 1)[-1],
                    "replaced": len(visible),
                    "at": time.time(),
                },
            )
            removable = listed
            after = len(data)
        for part in removable:
            try:
                storage.fs.rm_file(part.path)
            except FileNotFoundError:
                pass
        rows.append(
            {
                "run_id": run_id,
                "segment": segment,
                "parts_before": len(visible),
                "parts_after": 1 if visible else 0,
                "bytes_before": before,
                "bytes_after": after,
            }
        )
    catalog.refresh()
    schema = {
        "run_id": pl.String,
        "segment": pl.Int64,
        "parts_before": pl.Int64,
        "parts_after": pl.Int64,
        "bytes_before": pl.Int64,
        "bytes_after": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)
