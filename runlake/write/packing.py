"""Committed rows -> per-key numpy blocks -> one long Arrow table sorted by (key, step); and
the same table from long columns (an importer's points): the one home of a part's encoding.

Pure and I/O-free: the training thread packs a full buffer here (see write/writer.py for why).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa

from ..store.parquet import WRITE_SCHEMA


@cache
def warm_up() -> None:
    """pyarrow looks for pandas the first time it builds an array, and importing pandas takes
    0.1-0.3 s: a run pays it when it starts (on the training thread, once per process), not
    the flusher during a training loop's first seconds, nor every `import runlake` (the CLI,
    readers, the web app)."""
    pa.array(np.empty(0))


class _Block:
    """Per-key chunks collected while converting rows; kept in step order."""

    __slots__ = ("steps", "values", "texts")

    def __init__(self) -> None:
        self.steps: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.texts: list[list[str | None] | None] = []


Blocks = dict[str, _Block]


def pack_rows(
    steps: Sequence[int],
    times: Sequence[float],
    rows: Sequence[dict[str, float | str]],
    runtime_origin: float,
    may_have_text: bool = True,
) -> Blocks:
    """Committed rows -> per-key numpy blocks (the Python-bound half of encoding a part).

    Each row also yields `_timestamp` and `_runtime` points. Runs of rows with the same
    all-float keys (the common case) are converted with numpy; anything else row by row.
    """
    n = len(steps)
    step_arr = np.asarray(steps, dtype=np.int64)
    time_arr = np.asarray(times, dtype=np.float64)
    blocks: dict[str, _Block] = {}

    def block(key: str) -> _Block:
        b = blocks.get(key)
        if b is None:
            b = blocks[key] = _Block()
        return b

    ts = block("_timestamp")
    ts.steps.append(step_arr)
    ts.values.append(time_arr)
    ts.texts.append(None)
    rt = block("_runtime")
    rt.steps.append(step_arr)
    rt.values.append(time_arr - runtime_origin)
    rt.texts.append(None)

    # The common case, checked in C: every row has the first row's keys (itemgetter raises
    # KeyError on a missing one, and equal total length rules out extra ones).
    uniform = bool(n and rows[0]) and sum(map(len, rows)) == n * len(rows[0])
    start = 0
    while start < n:
        if uniform:
            end = n
        else:
            first = rows[start].keys()
            end = start + 1
            while end < n and rows[end].keys() == first:
                end += 1
        keys = tuple(rows[start])
        if keys:
            chunk = rows[start:end]
            width = len(keys)
            pick = itemgetter(*keys) if width > 1 else (lambda r, k=keys[0]: (r[k],))
            stream = chain.from_iterable(map(pick, chunk))  # in `keys` order whatever each row's order
            try:
                if may_have_text:
                    # np.array infers the dtype: text makes it non-float (np.fromiter would parse "0")
                    flat = np.array(list(stream))
                else:
                    flat = np.fromiter(stream, dtype=np.float64, count=(end - start) * width)
            except KeyError:  # not uniform after all: group row by row
                uniform = False
                continue
            if flat.dtype.kind != "f":
                _rows_slow(blocks, block, step_arr[start:end], chunk)
            else:
                matrix = flat.reshape(end - start, width)
                seg_steps = step_arr[start:end]
                for j, key in enumerate(keys):
                    b = block(key)
                    b.steps.append(seg_steps)
                    b.values.append(matrix[:, j])
                    b.texts.append(None)
        start = end
    return blocks


def blocks_to_table(blocks: Blocks) -> tuple[pa.Table, dict[str, float | str]]:
    """Packed blocks -> (long table sorted by (key, step), last value of every key)."""
    step_parts: list[np.ndarray] = []
    value_parts: list[np.ndarray] = []
    key_parts: list[tuple[str, int]] = []
    text_parts: list[list[str | None] | None] = []
    last: dict[str, float | str] = {}
    any_text = False
    for key in sorted(blocks):
        b = blocks[key]
        s = np.concatenate(b.steps) if len(b.steps) > 1 else b.steps[0]
        v = np.concatenate(b.values) if len(b.values) > 1 else b.values[0]
        step_parts.append(s)
        value_parts.append(v)
        key_parts.append((key, len(s)))
        if any(t is not None for t in b.texts):
            any_text = True
            texts: list[str | None] = []
            for arr, t in zip(b.steps, b.texts, strict=True):
                texts.extend(t if t is not None else [None] * len(arr))
            text_parts.append(texts)
            last[key] = texts[-1] if texts[-1] is not None else float(v[-1])
        else:
            text_parts.append(None)
            last[key] = float(v[-1])
    total = sum(c for _, c in key_parts)
    key_names = [k for k, _ in key_parts]
    indices = np.repeat(np.arange(len(key_names), dtype=np.int32), [c for _, c in key_parts])
    key_col = pa.DictionaryArray.from_arrays(
        pa.array(indices, type=pa.int32()), pa.array(key_names, pa.string()), safe=False
    )
    values = np.concatenate(value_parts) if value_parts else np.empty(0)
    if any_text:
        flat_texts: list[str | None] = []
        for (_, count), key_texts in zip(key_parts, text_parts, strict=True):
            flat_texts.extend(key_texts if key_texts is not None else [None] * count)
        text_col = pa.array(flat_texts, pa.string())
        # a text point has no numeric value
        value_col = pa.array(values, pa.float64(), mask=~np.asarray(text_col.is_null()))
    else:
        text_col = pa.nulls(total, pa.string())
        value_col = pa.array(values, pa.float64())
    table = pa.table(
        {
            "step": pa.array(np.concatenate(step_parts) if step_parts else np.empty(0, np.int64)),
            "key": key_col,  # written dictionary-encoded as is; read back as strings (SCHEMA)
            "value": value_col,
            "text": text_col,
        },
        schema=WRITE_SCHEMA,
    )
    return table, last


def points_to_table(
    steps: np.ndarray, keys: np.ndarray, values: np.ndarray, texts: list[str | None] | None
) -> pa.Table:
    """Long columns (a point per row, in any order) -> a part's long table in runlake's layout: sorted by (key, step), one point per (key, step)
    (the source's last one wins), a text point with a null value."""
    names, codes = key_codes(keys)
    order = np.lexsort((steps, codes))
    steps, codes, values = steps[order], codes[order], values[order]
    # keep the last point of each (key, step): lexsort is stable, so the last in source order
    last = np.ones(len(steps), dtype=bool)
    if len(steps) > 1:
        last[:-1] = (steps[1:] != steps[:-1]) | (codes[1:] != codes[:-1])
    steps, codes, values = steps[last], codes[last], values[last]
    key_col = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(names, pa.string()))
    if texts is not None:
        ordered = [texts[i] for i in order[last]]
        text_col = pa.array(ordered, pa.string())
        value_col = pa.array(values, pa.float64(), mask=~np.asarray(text_col.is_null()))
    else:
        text_col = pa.nulls(len(steps), pa.string())
        value_col = pa.array(values, pa.float64())
    return pa.Table.from_arrays(
        [pa.array(steps, pa.int64()), key_col, value_col, text_col], schema=WRITE_SCHEMA
    )


def key_codes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct keys, each point's index into them): hashing, not a string sort of
    every point (np.unique on 1M strings took most of a landing)."""
    encoded = pa.array(keys, pa.string()).dictionary_encode()
    names = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    rank = np.argsort(names.astype(str))
    position = np.empty(len(rank), dtype=np.int64)
    position[rank] = np.arange(len(rank))
    codes = position[encoded.indices.to_numpy(zero_copy_only=False)]
    return names[rank], codes


def last_by_key(
    steps: np.ndarray, keys: np.ndarray, values: np.ndarray, texts: list[str | None] | None
) -> dict[str, Any]:
    """The last value (by step; the source's last at a step) of every key of long columns."""
    if not len(steps):
        return {}
    names, codes = key_codes(keys)
    order = np.lexsort((steps, codes))
    ends = np.flatnonzero(np.append(codes[order][1:] != codes[order][:-1], True))
    out: dict[str, Any] = {}
    for end in ends:
        i = order[end]
        out[str(names[codes[i]])] = (
            texts[i] if texts is not None and texts[i] is not None else float(values[i])
        )
    return out


def _rows_slow(blocks: dict[str, _Block], block: Any, steps: np.ndarray, rows: Sequence[dict]) -> None:
    per_key: dict[str, tuple[list[int], list[float | None], list[str | None]]] = {}
    for step, row in zip(steps.tolist(), rows, strict=True):
        for key, value in row.items():
            entry = per_key.get(key)
            if entry is None:
                entry = per_key[key] = ([], [], [])
            entry[0].append(step)
            if type(value) is str:
                entry[1].append(None)
                entry[2].append(value)
            else:
                entry[1].append(value)
                entry[2].append(None)
    for key, (ks, kv, kt) in per_key.items():
        b = block(key)
        b.steps.append(np.asarray(ks, dtype=np.int64))
        # a text point's value is masked to NULL once the text column is built
        b.values.append(np.asarray([np.nan if v is None else v for v in kv], dtype=np.float64))
        b.texts.append(kt if any(t is not None for t in kt) else None)
