"""History parts and packs as Parquet: the schemas, encodings and reads (the only pyarrow.parquet user)."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import settings
from .layout import hive_node

SCHEMA = pa.schema(
    [
        pa.field("step", pa.int64(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("text", pa.string()),
    ]
)

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
    # a CRC per page: DuckDB does not check them, `doctor` does (pyarrow), so a garbled byte
    # that still decodes is found instead of read as a different number
    "write_page_checksum": True,
}


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


# A run's streams beside its history (write/streams.py): console lines and system metrics.
CONSOLE_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),  # the line's number in its writer's output, from 0
        ("time", pa.float64()),
        ("step", pa.int64()),  # the run's step when it was printed
        ("stream", pa.string()),  # stdout / stderr
        ("content", pa.string()),
        ("label", pa.string()),  # the writing process (shared mode's x_label), "" alone
    ]
)
SYSTEM_SCHEMA = pa.schema(
    [
        ("time", pa.float64()),
        ("runtime", pa.float64()),
        ("step", pa.int64()),  # the run's step when it was sampled (never advanced by it)
        ("key", pa.string()),
        ("value", pa.float64()),
        ("label", pa.string()),
    ]
)
EMPTY_SCHEMAS = {"part": SCHEMA, "pack": PACK_SCHEMA, "console": CONSOLE_SCHEMA, "system": SYSTEM_SCHEMA}


def write_empty(path: str, kind: str = "part") -> None:
    """A zero-row file of a kind (part, pack, console, system): where a file list must not be empty."""
    pq.write_table(EMPTY_SCHEMAS[kind].empty_table(), path)


def read_parts(fs: Any, paths: Sequence[str]) -> pa.Table:
    """Several parts as one table (the history schema), their page checksums verified (what
    compaction packs: a garbled byte must not be baked into a pack)."""
    tables = []
    for path in paths:
        try:
            tables.append(pq.read_table(path, filesystem=fs, schema=SCHEMA, page_checksum_verification=True))
        except (pa.ArrowException, OSError) as exc:
            raise UnreadablePart(path, exc) from exc
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
            table = pq.read_table(
                source,
                schema=PACK_SCHEMA if is_pack else SCHEMA,
                filters=filters,
                page_checksum_verification=True,
            )
        except (pa.ArrowException, OSError) as exc:
            raise UnreadablePart(path, exc) from exc
        if "run_id" in table.column_names:  # a pack holds its rows' nodes
            return table.select(_FETCHED.names).cast(_FETCHED)
        run_id, segment = hive_node(path) or ("", -1)
        return table.append_column("run_id", pa.array([run_id] * table.num_rows, pa.string())).append_column(
            "segment", pa.array([segment] * table.num_rows, pa.int64())
        )

    if not paths:
        return SCHEMA.empty_table()
    with ThreadPoolExecutor(max_workers=min(threads, len(paths))) as pool:
        return pa.concat_tables(pool.map(one, paths))


def _string_columns(schema: pa.Schema) -> list[str]:
    """A check of every page reads string columns as dictionaries: each page is still read and
    its checksum checked, but no string is built (a third of the time)."""
    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


# Local files whose page checksums this process has verified, by (size, mtime, inode): DuckDB reads
# pages without checking their CRC, so a scan first has pyarrow read each file once with
# verification (a garbled byte that still decodes would otherwise be a different number).
_VERIFIED: dict[str, tuple[int, int, int]] = {}
_VERIFIED_MAX = 200_000


_INFLIGHT: dict[str, threading.Event] = {}
_INFLIGHT_LOCK = threading.Lock()


def verify_local(paths: Sequence[str], threads: int = 2, *, background: bool = False) -> None:
    """Check the page checksums of the local files among `paths` this process has not checked
    since they last changed; raises UnreadablePart naming the first that fails. Once per file
    per process (a file another thread is checking is waited for): later reads of it cost a
    stat. `background`: on this thread alone (no pyarrow pool), for a thread that yields the
    CPU to reads; a read never waits for it (it checks the file itself if it must).
    $RUNLAKE_VERIFY=off skips this."""
    if not settings.verify_reads():
        return
    todo: list[tuple[str, tuple[int, int, int]]] = []
    waits: list[tuple[str, threading.Event]] = []
    with _INFLIGHT_LOCK:
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                continue  # gone: the read itself says so (or lists again)
            stamp = (st.st_size, st.st_mtime_ns, st.st_ino)  # runlake replaces files whole: a new inode
            if _VERIFIED.get(path) == stamp:
                continue
            if background:  # never makes a read wait (a low-priority thread may starve): no claim
                if path not in _INFLIGHT:
                    todo.append((path, stamp))
            elif path in _INFLIGHT:
                waits.append((path, _INFLIGHT[path]))
            else:
                _INFLIGHT[path] = threading.Event()
                todo.append((path, stamp))

    def one(item: tuple[str, tuple[int, int, int]]) -> None:
        path, stamp = item
        try:
            reader = pq.ParquetFile(
                path, page_checksum_verification=True, read_dictionary=_string_columns(pq.read_schema(path))
            )
            for _ in reader.iter_batches(batch_size=262_144, use_threads=not background):  # every page read
                pass
            if len(_VERIFIED) >= _VERIFIED_MAX:
                _VERIFIED.clear()
            _VERIFIED[path] = stamp
        except (pa.ArrowException, OSError) as exc:
            raise UnreadablePart(path, exc) from exc
        finally:
            if not background:
                with _INFLIGHT_LOCK:
                    _INFLIGHT.pop(path).set()

    if len(todo) == 1:
        one(todo[0])
    elif todo:  # every task runs (and releases its file) before an error comes out
        with ThreadPoolExecutor(max_workers=min(threads, len(todo))) as pool:
            list(pool.map(one, todo))
    for path, event in waits:
        event.wait(timeout=600)
        if path not in _VERIFIED:  # the other thread found it broken
            verify_local([path], threads=1)


# Remote files whose page checksums this process has verified, by path and size: runlake never
# rewrites a file under the same name (a part's name has a uuid), so a changed size is a new file.
_VERIFIED_REMOTE: dict[str, int | None] = {}


def verify_remote(fs: Any, files: Sequence[tuple[str, int | None]], threads: int = 16) -> None:
    """The remote twin of `verify_local` (what SQL over fsspec reads): each file is fetched and
    checked once per process, concurrently; raises UnreadablePart naming the first that fails."""
    if not settings.verify_reads():
        return
    todo = [(p, b) for p, b in files if p not in _VERIFIED_REMOTE or _VERIFIED_REMOTE[p] != b]

    def one(item: tuple[str, int | None]) -> None:
        path, size = item
        try:
            data = io.BytesIO(fs.cat_file(path))
            pq.read_table(
                data, page_checksum_verification=True, read_dictionary=_string_columns(pq.read_schema(data))
            )
        except FileNotFoundError:
            return  # gone (a compaction): the read itself lists again
        except (pa.ArrowException, OSError) as exc:
            raise UnreadablePart(path, exc) from exc
        if len(_VERIFIED_REMOTE) >= _VERIFIED_MAX:
            _VERIFIED_REMOTE.clear()
        _VERIFIED_REMOTE[path] = size

    if todo:
        with ThreadPoolExecutor(max_workers=min(threads, len(todo))) as pool:
            list(pool.map(one, todo))


def row_counts(fs: Any, paths: Sequence[str], threads: int = 16) -> list[int]:
    """Each file's row count from its footer (one small read per file, concurrently); a file
    whose footer cannot be read counts 0 (reading it whole says what is wrong with it)."""

    def one(path: str) -> int:
        try:
            with fs.open(path, "rb") as fh:
                return int(pq.read_metadata(fh).num_rows)
        except (pa.ArrowException, OSError, ValueError):
            return 0

    if len(paths) <= 1:
        return [one(p) for p in paths]
    with ThreadPoolExecutor(max_workers=min(threads, len(paths))) as pool:
        return list(pool.map(one, paths))


class UnreadablePart(Exception):
    """A part file that is not valid Parquet (truncated, corrupt)."""

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = path
        self.cause = cause


def check_part(fs: Any, path: str) -> str | None:
    """None if `path` reads as a history part, else what is wrong with it."""
    try:
        # by path, through pyarrow's own filesystem wrapper: never a Python file object
        table = pq.read_table(path, filesystem=fs, schema=SCHEMA, page_checksum_verification=True)
        if table.num_rows and table.column("step").null_count:
            return "steps are missing"
    except (pa.ArrowException, OSError, ValueError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def encode_any(table: pa.Table) -> bytes:
    """Any Arrow table as a Parquet file (a logged runlake.Table), zstd, with page checksums."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", write_page_checksum=True)
    return sink.getvalue()


def decode_any(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data))
