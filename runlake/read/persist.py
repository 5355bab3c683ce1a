"""The catalog's copy on disk: loaded at start so a process only folds what changed since,
saved by write-then-rename so readers never wait. A cache: it may be lost or discarded."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
import warnings

import duckdb
import pyarrow as pa

from ..store import settings
from ..store.storage import Storage, remove_quietly
from . import sql as sqlmod
from .tail import TailState

SCHEMA_VERSION = 10  # 3: the materialised closure table; 4: run_meta.seen_at; 5: W&B attributes;
# 6: run_meta.parts_written, parts.files, archived_parts (a part deleted by hand is found);
# 7: run_meta.deleted_at; 8: alerts, artifact_usage, artifact_files; 9: the commit log's position; 10: stream_files
TABLES = sqlmod.TABLES  # the catalog's tables (read/sql.py)


def cache_path(storage: Storage) -> str | None:
    """Where the persisted catalog of a root lives: inside a local root, else a cache dir."""
    if storage.is_local:
        return os.path.join(storage.root, "_catalog", "catalog.duckdb")
    if storage.is_memory:
        return None  # nothing outlives the process there
    digest = hashlib.sha256(storage.fs.unstrip_protocol(storage.root).encode()).hexdigest()[:16]
    return os.path.join(settings.cache_dir(), digest, "catalog.duckdb")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


Loaded = tuple[dict[str, str], dict[str, str], TailState | None]


def load(con: duckdb.DuckDBPyConnection, path: str) -> Loaded:
    """Fill the tables from the copy at `path`; returns the manifests it had seen ({} if none),
    and where it was in the commit log with the files it knew (None: list the root first).

    A copy of another schema version is removed (the catalog is rebuilt from the root); one
    that cannot be read is removed with a warning.
    """
    if not os.path.exists(path):
        return {}, {}, None
    try:
        con.execute(f"ATTACH {_quote(path)} AS saved (READ_ONLY)")
    except duckdb.Error:
        _discard(path)
        return {}, {}, None
    try:
        version = con.execute("SELECT version FROM saved.catalog_info").fetchall()
        if not version or version[0][0] != SCHEMA_VERSION:  # another version's: rebuild
            con.execute("DETACH saved")
            with contextlib.suppress(OSError):
                os.remove(path)
            return {}, {}, None
        for table in TABLES:
            con.execute(f"INSERT INTO {table} SELECT * FROM saved.{table}")
        seen = dict(con.execute("SELECT path, token FROM saved.seen").fetchall())
        files = dict(con.execute("SELECT path, token FROM saved.tail_files").fetchall())
        state = con.execute("SELECT doc FROM saved.tail_state").fetchall()
        tail = TailState.from_json(json.loads(state[0][0])) if state else None
    except (duckdb.Error, ValueError):
        for table in TABLES:
            con.execute(f"DELETE FROM {table}")
        con.execute("DETACH saved")
        _discard(path)
        return {}, {}, None
    con.execute("DETACH saved")
    return seen, files, tail


def save(
    cur: duckdb.DuckDBPyConnection,
    path: str,
    seen: dict[str, str],
    tail: tuple[TailState, dict[str, str]] | None = None,
) -> None:
    """Write the tables, `seen` and the commit-log position with the files it knew (`tail`) to
    `path` (a temp name, then a rename). Failing loses nothing."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        cur.execute(f"ATTACH {_quote(tmp)} AS out")
        for table in TABLES:
            cur.execute(f"CREATE TABLE out.{table} AS SELECT * FROM {table}")
        rows = pa.table(
            {"path": list(seen), "token": list(seen.values())},
            schema=pa.schema([("path", pa.string()), ("token", pa.string())]),
        )
        cur.register("seen_rows", rows)
        cur.execute("CREATE TABLE out.seen AS SELECT * FROM seen_rows")
        cur.unregister("seen_rows")
        files = tail[1] if tail else {}
        rows = pa.table(
            {"path": list(files), "token": list(files.values())},
            schema=pa.schema([("path", pa.string()), ("token", pa.string())]),
        )
        cur.register("tail_rows", rows)
        cur.execute("CREATE TABLE out.tail_files AS SELECT * FROM tail_rows")
        cur.unregister("tail_rows")
        cur.execute("CREATE TABLE out.tail_state (doc VARCHAR)")
        if tail:
            cur.execute("INSERT INTO out.tail_state VALUES (?)", [json.dumps(tail[0].to_json())])
        cur.execute(f"CREATE TABLE out.catalog_info AS SELECT {SCHEMA_VERSION} AS version")
        cur.execute("DETACH out")
        os.replace(tmp, path)
    except (duckdb.Error, OSError):
        with contextlib.suppress(duckdb.Error):
            cur.execute("DETACH out")
        remove_quietly(tmp)
        remove_quietly(tmp + ".wal")


def _discard(path: str) -> None:
    warnings.warn(
        f"runlake catalog {path} could not be read; rebuilding it from the root", RuntimeWarning, stacklevel=5
    )
    with contextlib.suppress(OSError):
        os.remove(path)
