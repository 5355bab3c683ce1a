"""History the way W&B's public API hands it out, over lineage-resolved reads: a deterministic
sample (`Run.history`) and a streaming scan (`Run.scan_history`).

The sample differs from W&B's on purpose: W&B returns a random sample that changes between
calls; this one is the same every time. Of the rows that have every requested key, it keeps
the first and the last, the rows holding each key's minimum and maximum (so a spike is never
sampled away), and fills up to `samples` rows evenly spaced by position.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from ..lake import Lake

SYSTEM = ("_step", "_runtime", "_timestamp")


def pandas_module() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "pandas is not installed: W&B's API returns pandas DataFrames by default. Install it "
            "with `pip install 'runlake[pandas]'`, or pass pandas=False (a list of dicts) or "
            "format='polars' (a polars DataFrame)"
        ) from None
    return pandas


def check_keys(keys: Any, what: str = "keys") -> list[str] | None:
    if keys is None:
        return None
    if isinstance(keys, str) or not isinstance(keys, (list, tuple)):
        raise ValueError(f"{what} must be a list of strings, got {type(keys).__name__}: {keys!r:.80}")
    if not all(isinstance(k, str) for k in keys):
        raise ValueError(f"{what} must be a list of strings, got {keys!r:.80}")
    return list(keys)


def sample_rows(frame: pl.DataFrame, samples: int, value_columns: list[str]) -> pl.DataFrame:
    """At most `samples` rows of `frame` (more only when the kept extremes alone exceed it):
    the first, the last, each value column's min and max, then evenly spaced rows."""
    n = frame.height
    if n <= samples:
        return frame
    keep = {0, n - 1}
    for name in value_columns:
        column = frame[name]
        if column.dtype.is_numeric() and column.null_count() < n:
            values = column.cast(pl.Float64).to_numpy()
            finite = np.where(np.isnan(values), np.nan, values)
            if not np.all(np.isnan(finite)):
                keep.add(int(np.nanargmin(finite)))
                keep.add(int(np.nanargmax(finite)))
    room = max(samples - len(keep), 0)
    if room:
        spaced = np.linspace(0, n - 1, num=room + 2).round().astype(np.int64)[1:-1]
        for i in spaced.tolist():
            keep.add(i)
        extra = iter(range(n))  # rounding may land on rows already kept: top up in order
        while len(keep) < samples:
            keep.add(next(extra))
    return frame[sorted(keep)]


def read_history(
    lake: Lake,
    run_id: str,
    *,
    samples: int,
    keys: list[str] | None,
    x_axis: str,
) -> pl.DataFrame:
    """The sampled wide history: with `keys`, columns x_axis, the keys, `_runtime` and
    `_timestamp` (W&B's docs read those too), and only rows that have every key and x_axis
    (W&B's rule); without, every column and every row."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive int, got {samples!r}")
    if not isinstance(x_axis, str):
        raise ValueError(f"x_axis must be a string, got {x_axis!r:.80}")
    if keys:
        wanted = list(dict.fromkeys([x_axis, *keys]))
        frame = lake.history(run_id, [k for k in wanted if k not in SYSTEM] or None)
        columns = list(dict.fromkeys([*wanted, "_runtime", "_timestamp"]))
        if any(k not in frame.columns for k in wanted):  # a key never logged: no row has every key
            return pl.DataFrame({k: [] for k in columns})
        frame = frame.select([c for c in columns if c in frame.columns]).drop_nulls(wanted)
        values = [k for k in keys if k not in SYSTEM]
    else:
        frame = lake.history(run_id)
        values = [c for c in frame.columns if c not in SYSTEM]
    return sample_rows(frame, samples, values)


def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """W&B's list of dicts: each row holds the keys that have a value at that step."""
    return [{k: v for k, v in row.items() if v is not None} for row in frame.iter_rows(named=True)]


class HistoryScan:
    """Every row of a run's effective history from min_step (inclusive) to max_step (exclusive),
    read `page_size`-step windows at a time from the files holding them, so memory stays
    bounded by a window whatever the run's length. With `keys`, only rows that have every one
    of them (W&B's rule), holding `_step` and those keys."""

    def __init__(
        self, lake: Lake, run_id: str, keys: list[str] | None, page_size: int, min_step: int, max_step: int
    ) -> None:
        self.lake, self.run_id, self.keys = lake, run_id, keys
        self.page_size, self.min_step, self.max_step = page_size, min_step, max_step
        # windows of at least this many steps (a page of 1,000 rows per read would make a
        # million-step scan a thousand reads); the rows still come out one by one
        self.window = max(page_size, 100_000)

    def frames(self) -> Iterator[pl.DataFrame]:
        """The scan as polars frames, one per window (what the row iterator walks)."""
        user = None if self.keys is None else [k for k in self.keys if k not in SYSTEM]
        lo = self.min_step
        while lo < self.max_step:
            hi = min(lo + self.window, self.max_step)
            frame = self.lake.history(self.run_id, user or None, min_step=lo, max_step=hi)
            if self.keys is not None:
                wanted = list(dict.fromkeys(["_step", *self.keys]))
                if any(k not in frame.columns for k in wanted):
                    frame = frame.clear().select([c for c in wanted if c in frame.columns])
                else:
                    frame = frame.select(wanted).drop_nulls()
            if frame.height:
                yield frame
            lo = hi

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for frame in self.frames():
            if self.keys is not None or not any(frame.null_count().row(0)):  # no nulls: rows as they are
                yield from frame.iter_rows(named=True)
            else:
                names = frame.columns
                for values in frame.iter_rows():
                    yield {k: v for k, v in zip(names, values) if v is not None}  # noqa: B905
