"""`runlake sync`: upload everything runs spilled to local disk while storage was down."""

from __future__ import annotations

import time

import polars as pl

from ..store import spill
from ..store.storage import Storage


def sync(storage: Storage) -> pl.DataFrame:
    """Upload a root's spilled parts and state (parts first); one row: spilled, uploaded, waiting, seconds."""
    started = time.time()
    items = spill.pending(storage)
    done, waiting = spill.upload(storage, attempts=4)
    return pl.DataFrame(
        {
            "spilled": [len(items)],
            "uploaded": [done],
            "waiting": [len(waiting)],
            "seconds": [round(time.time() - started, 3)],
        }
    )
