"""Scanned rows (g, step, value, text) -> per-group series -> a wide frame, or last values.

Pure numpy/Arrow: every file is sorted by (key, [node,] step), so rows arrive in ascending
runs; ordering the runs (not the rows) puts each group's points in step order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from ..errors import RunlakeError

SYSTEM_KEYS = ("_timestamp", "_runtime")
# A wide frame larger than this many cells (2 GB of float64) is refused, not built: a sparse
# run of 110k keys over 100k steps would need 88 GB. Select keys, or read the long form in SQL.
MAX_WIDE_CELLS = 250_000_000
Series = tuple[np.ndarray, np.ndarray, "pa.Array | None"]  # steps, values, texts (None: all numbers)


def series(table: pa.Table | None, count: int, per: int) -> list[Series | None]:
    """Split scanned rows into `count` series, series i holding groups [i*per, (i+1)*per) in
    group order (for a closure, per = its depth: each key's rows ancestors first)."""
    out: list[Series | None] = [None] * count
    if table is None or not table.num_rows:
        return out
    group = table.column("g").to_numpy()
    steps = table.column("step").to_numpy()
    values = table.column("value").to_numpy(zero_copy_only=False)
    text_col = table.column("text")
    texts = None if text_col.null_count == len(text_col) else text_col.combine_chunks()
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
    bounds = offsets[np.searchsorted(group[starts] // per, np.arange(count + 1))]
    for i in range(count):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        if lo == hi:
            continue
        s, v = steps[lo:hi], values[lo:hi]
        t = texts.slice(lo, hi - lo) if texts is not None else None
        if len(s) > 1 and not bool(np.all(s[1:] > s[:-1])):  # a source out of order: sort
            o = np.argsort(s, kind="stable")
            s, v = s[o], v[o]
            t = t.take(pa.array(o)) if t is not None else None
        if len(s) > 1 and not bool(np.all(s[1:] > s[:-1])):  # two writers of one step (shared mode)
            keep = np.append(s[1:] != s[:-1], True)  # the last value of each step
            s, v = s[keep], v[keep]
            t = t.filter(pa.array(keep)) if t is not None else None
        if t is not None and t.null_count == len(t):
            t = None
        out[i] = (s, v, t)
    return out


def wide(found: dict[str, Series], user: list[str] | None) -> pl.DataFrame:
    """Per-key series -> the wide history frame: `_step`, the system keys, then the keys
    (`user`; None: every key found, sorted), one row per step where a selected key was logged."""
    if user is None:
        names_out = sorted(k for k in found if k not in SYSTEM_KEYS)
        row_keys = list(found)
    else:
        names_out = user
        row_keys = [k for k in user if k in found] if user else [k for k in SYSTEM_KEYS if k in found]
    present = [found[k][0] for k in row_keys]
    row_steps = _union_sorted(present) if present else np.empty(0, np.int64)
    cells = len(row_steps) * (1 + len(SYSTEM_KEYS) + len(names_out))
    if cells > MAX_WIDE_CELLS:
        raise RunlakeError(
            f"this history would be a {len(row_steps):,} x {1 + len(SYSTEM_KEYS) + len(names_out):,} frame "
            f"({cells:,} cells, over the {MAX_WIDE_CELLS:,} runlake builds): pass keys= to select metrics, "
            'or read it long with runlake.sql("SELECT step, key, value FROM history WHERE run_id = ?", params=[...])'
        )
    columns: dict[str, pl.Series] = {"_step": pl.Series("_step", row_steps, pl.Int64)}
    for name in (*SYSTEM_KEYS, *names_out):
        columns[name] = _align(name, found.get(name), row_steps)
    return pl.DataFrame(columns)


def last_values(found: dict[str, Series]) -> dict[str, Any]:
    """The last value of every user key (a summary): text where the last point is text."""
    out: dict[str, Any] = {}
    for key, (_, values, texts) in found.items():
        if key in SYSTEM_KEYS or not len(values):
            continue
        text = texts[len(values) - 1].as_py() if texts is not None else None
        out[key] = text if text is not None else float(values[-1])
    return out


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


def _align(name: str, entry: Series | None, at: np.ndarray) -> pl.Series:
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
