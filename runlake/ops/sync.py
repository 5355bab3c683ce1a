"""`runlake sync`: upload everything runs spilled to local disk while storage was down."""

from __future__ import annotations

import time

import polars as pl

from ..store import spill
from ..store.storage import Storage


def sync(storage: Storage, local_dir: str | None = None) -> pl.DataFrame:
    """Upload a root's spilled parts and state (parts first); one row: spilled, uploaded, waiting,
    seconds. `local_dir`: the `dir=` the runs were started with (their spill directory is under it)."""
    started = time.time()
    items = spill.pending(storage, local_dir=local_dir)
    done, waiting = spill.upload(storage, attempts=4, local_dir=local_dir)
    return pl.DataFrame(
        {
            "spilled": [len(items)],
            "uploaded": [done],
            "waiting": [len(waiting)],
            "seconds": [round(time.time() - started, 3)],
        }
    )
