"""Encoding buffered rows into long-layout Parquet parts (the only module using pyarrow.parquet)."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        pa.field("step", pa.int64(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("text", pa.string()),
    ]
)
# pyarrow looks for pandas the first time it builds an array, and importing pandas takes
# 0.1-0.3 s: pay it at import, not in the flusher during a training loop's first seconds.
pa.array(np.empty(0))

# A pack: the rows of many finished nodes, sorted by (key, run_id, segment, step).
PACK_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("segment", pa.int64(), nullable=False),
        *SCHEMA,
    ]
)
PACK_ROW_GROUP = 131_072  # rows; small enough that a key (and a run within it) prunes row groups
# What blocks_to_table builds: the key column stays dictionary-encoded (no per-point strings).
WRITE_SCHEMA = SCHEMA.set(1, pa.field("key", pa.dictionary(pa.int32(), pa.string()), nullable=False))
_WRITE_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "use_dictionary": ["key"],
    # DESIGN.md: dictionary-encoding `value` would silently turn BYTE_STREAM_SPLIT off.
    "column_encoding": {"step": "DELTA_BINARY_PACKED", "value": "BYTE_STREAM_SPLIT"},
    "write_statistics": True,
}


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


def encode(table: pa.Table) -> bytes:
    """Serialise one part with runlake's encodings.

    Into an Arrow buffer, not a Python file object: the writer then never needs the GIL for
    its many small writes, so a flusher thread is not stalled by a busy training loop (each
    GIL hand-back costs up to the 5 ms switch interval: 100+ ms per part with BytesIO).
    """
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **_WRITE_OPTIONS)
    return sink.getvalue().to_pybytes()


def encode_pack(table: pa.Table) -> bytes:
    """Serialise one pack (PACK_SCHEMA, already sorted) with runlake's encodings."""
    # compaction is offline: zstd level 9 instead of the default 1 costs ~0.1 us a point and
    # saves 1-8% (random-walk float64 6.57 -> 6.48 B/point, float32-origin 3.25 -> 2.99)
    options = {**_WRITE_OPTIONS, "use_dictionary": ["key", "run_id", "segment"], "compression_level": 9}
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=PACK_ROW_GROUP, **options)
    return sink.getvalue().to_pybytes()


def write_empty(path: str, pack: bool = False) -> None:
    """A zero-row part (or pack) file (used where a file list must not be empty)."""
    pq.write_table((PACK_SCHEMA if pack else SCHEMA).empty_table(), path)


def read_parts(fs: Any, paths: Sequence[str]) -> pa.Table:
    """Several parts as one table (the history schema)."""
    tables = [pq.read_table(path, filesystem=fs, schema=SCHEMA) for path in paths]
    return pa.concat_tables(tables) if tables else SCHEMA.empty_table()


def read_node_rows(fs: Any, nodes: Sequence[tuple[str, int, Sequence[str]]], threads: int = 8) -> pa.Table:
    """The rows of several nodes' part files as one PACK_SCHEMA table (read concurrently)."""

    def one(node: tuple[str, int, Sequence[str]]) -> pa.Table:
        run_id, segment, paths = node
        table = read_parts(fs, paths)
        n = table.num_rows
        return pa.table(
            [pa.array([run_id] * n, pa.string()), pa.array(np.full(n, segment, np.int64)), *table.columns],
            schema=PACK_SCHEMA,
        )

    if not nodes:
        return PACK_SCHEMA.empty_table()
    with ThreadPoolExecutor(max_workers=min(threads, len(nodes))) as pool:
        return pa.concat_tables(pool.map(one, nodes))


_FETCHED = pa.schema([*SCHEMA, pa.field("run_id", pa.string()), pa.field("segment", pa.int64())])
_HIVE_RE = re.compile(r"/run_id=([^/]+)/segment=(\d+)/[^/]+$")


def fetch_parts(fs: Any, paths: Sequence[str], keys: Sequence[str] | None, threads: int = 16) -> pa.Table:
    """Read parts from a remote filesystem concurrently (one request per file, all at once),
    adding the hive columns run_id and segment. DuckDB over fsspec would read them one by one."""
    filters = [("key", "in", list(keys))] if keys is not None else None

    def one(path: str) -> pa.Table:
        data = fs.cat_file(path)
        try:
            source = io.BytesIO(data)
            is_pack = "run_id" in pq.read_schema(source).names
            source.seek(0)
            table = pq.read_table(source, schema=PACK_SCHEMA if is_pack else SCHEMA, filters=filters)
        except (pa.ArrowException, OSError) as exc:
            raise UnreadablePart(path, exc) from exc
        if "run_id" in table.column_names:  # a pack holds its rows' nodes
            return table.select(_FETCHED.names).cast(_FETCHED)
        m = _HIVE_RE.search(path)
        run_id, segment = (m[1], int(m[2])) if m else ("", -1)
        return table.append_column("run_id", pa.array([run_id] * table.num_rows, pa.string())).append_column(
            "segment", pa.array([segment] * table.num_rows, pa.int64())
        )

    if not paths:
        return SCHEMA.empty_table()
    with ThreadPoolExecutor(max_workers=min(threads, len(paths))) as pool:
        return pa.concat_tables(pool.map(one, paths))


class UnreadablePart(Exception):
    """A part file that is not valid Parquet (truncated, corrupt)."""

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = path
        self.cause = cause


def check_part(fs: Any, path: str) -> str | None:
    """None if `path` reads as a history part, else what is wrong with it."""
    try:
        with fs.open(path, "rb") as fh:
            table = pq.read_table(fh, schema=SCHEMA)
        if table.num_rows and table.column("step").null_count:
            return "steps are missing"
    except (pa.ArrowException, OSError, ValueError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None
