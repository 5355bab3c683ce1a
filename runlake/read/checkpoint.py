"""Checkpoints of the commit log: a catalog's tables at a log position, as Parquet in the root,
so a new reader (a teammate's laptop, a CI job, the web app after a restart) reads the newest
checkpoint plus the log entries after it instead of listing every run.

    <root>/_log/_checkpoints/<time_ns>-<id>/<table>.parquet   the catalog's tables (parts'
                                                              paths relative to the root)
    <root>/_log/_checkpoints/<time_ns>-<id>/files.parquet     every file the reader knew: path
                                                              (relative), token, folded token
    <root>/_log/_checkpoints/<time_ns>-<id>/checkpoint.json   written last (the switch): the log
                                                              position, each table's size and sha256

Written by compaction, `runlake catalog export`, `runlake catalog upgrade`, and by any reader
that applied $RUNLAKE_CHECKPOINT_EVERY entries past the newest one. A checkpoint being written
has no checkpoint.json yet and is passed over; one that does not match its stamp (torn,
damaged) is ignored with a warning and the previous one is used.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
import warnings
from typing import Any

import pyarrow as pa

from ..errors import RunlakeError
from ..store.layout import CHECKPOINT_RE, LOG_ENTRY_RE
from ..store.parquet import decode_any, encode_any
from . import persist
from .tail import TailState

FORMAT = 1
STAMP = "checkpoint.json"
RELATIVE = ("parts", "stream_files")  # tables whose `path` is stored relative to the root
KEEP = 3  # the newest checkpoints compaction keeps (a damaged one falls back to the previous)


def write(catalog: Any) -> str:
    """A checkpoint of `catalog` (a Catalog) as of its last refresh; returns its directory."""
    storage = catalog.storage
    root = storage.engine_path(storage.root).rstrip("/") + "/"
    local_root = storage.root.rstrip("/") + "/"
    with catalog.lock:
        tail = catalog.tail
        cur = catalog.con.cursor()
        try:
            tables = {}
            for name in persist.TABLES:
                if name in RELATIVE:
                    query = (
                        "SELECT * REPLACE (CASE WHEN starts_with(path, ?) THEN substr(path, ?) ELSE path END AS path) "
                        f"FROM {name}"
                    )
                    tables[name] = cur.sql(query, params=[root, len(root) + 1]).to_arrow_table()
                else:
                    tables[name] = cur.sql(f"SELECT * FROM {name}").to_arrow_table()
        finally:
            cur.close()
        seen = catalog.state.seen
        known = dict(tail.listing) if tail.state.mode == "log" else dict(seen)
        paths = sorted(set(known) | set(seen))
        tables["files"] = pa.table(
            {
                "path": [p[len(local_root) :] if p.startswith(local_root) else p for p in paths],
                "token": [known.get(p) for p in paths],
                "seen": [seen.get(p) for p in paths],
            },
            schema=pa.schema([("path", pa.string()), ("token", pa.string()), ("seen", pa.string())]),
        )
        state = tail.state.to_json()
        if tail.touched or tail.added or tail.streams or tail.dropped_trees or tail.streams_dropped_trees:
            state["mode"] = ""  # log changes not folded yet: a reader of it lists the root first
    now = time.time_ns()
    directory = storage.paths.checkpoint(now, uuid.uuid4().hex[:12])
    stamp: dict[str, Any] = {
        "format": FORMAT,
        "schema": persist.SCHEMA_VERSION,
        "created_ns": now,
        "tail": state,
        "tables": {},
    }
    for name, table in tables.items():
        data = encode_any(table)
        storage.write_with_retry(f"{directory}/{name}.parquet", data)
        stamp["tables"][name] = {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "rows": table.num_rows,
        }
    storage.write_with_retry(f"{directory}/{STAMP}", json.dumps(stamp, indent=1).encode())
    return directory


def newest(storage: Any) -> list[str]:
    """Checkpoint directories, newest first."""
    names = [n for n in storage.listdir(storage.paths.checkpoints_dir) if CHECKPOINT_RE.fullmatch(n)]
    return [f"{storage.paths.checkpoints_dir}/{n}" for n in sorted(names, reverse=True)]


def read(storage: Any, directory: str) -> tuple[dict[str, Any], dict[str, pa.Table]] | None:
    """A checkpoint's stamp and tables; None while it is being written (no stamp yet);
    RunlakeError if it does not match its stamp or cannot be decoded."""
    stamp = storage.read_json(f"{directory}/{STAMP}")
    if stamp is None:
        return None
    if stamp.get("format") != FORMAT or stamp.get("schema") != persist.SCHEMA_VERSION:
        raise RunlakeError(f"checkpoint {directory} is of another format or catalog version")
    wanted = stamp.get("tables")
    if not isinstance(wanted, dict) or set(wanted) != {*persist.TABLES, "files"}:
        raise RunlakeError(f"checkpoint {directory} does not list the catalog's tables")
    paths = {name: f"{directory}/{name}.parquet" for name in wanted}
    found = storage.read_many(list(paths.values()))
    blobs = {name: found.get(path) for name, path in paths.items()}
    tables = {}
    for name, data in blobs.items():
        if data is None or hashlib.sha256(data).hexdigest() != wanted[name].get("sha256"):
            raise RunlakeError(
                f"checkpoint {directory}: {name}.parquet is missing or does not match its stamp"
            )
        try:
            tables[name] = decode_any(data)
        except Exception as exc:  # pyarrow's errors are many
            raise RunlakeError(f"checkpoint {directory}: {name}.parquet cannot be read: {exc}") from None
    return stamp, tables


def load(catalog: Any, newer_than: int | None = None) -> bool:
    """Fill the catalog from the newest readable checkpoint (only one whose position is past
    `newer_than`, when given); False if there is none."""
    storage = catalog.storage
    for directory in newest(storage):
        if newer_than is not None and int(directory.rsplit("/", 1)[-1][:19]) <= newer_than:
            return False  # (names start with the time it was written: its position is before)
        try:
            got = read(storage, directory)
        except RunlakeError as exc:
            warnings.warn(f"{exc}: ignored, the previous checkpoint is used", RuntimeWarning, stacklevel=5)
            continue
        if got is None:
            continue  # being written: the one before it is whole
        stamp, tables = got
        catalog.restore(tables, TailState.from_json(stamp.get("tail") or {}))
        return True
    return False


def expired(storage: Any, keep: int = KEEP) -> list[str]:
    """Checkpoint directories past the `keep` newest whole ones (what compaction removes)."""
    whole = [d for d in newest(storage) if storage.exists(f"{d}/{STAMP}")]
    return whole[keep:]


def prune(storage: Any, grace: float) -> int:
    """Remove log entries older than the newest whole checkpoint's position by more than
    `grace` seconds, and checkpoints past the `KEEP` newest; returns how many entries went.
    Readers whose position is older than that start again from a checkpoint."""
    whole = [d for d in newest(storage) if storage.exists(f"{d}/{STAMP}")]
    for directory in whole[KEEP:]:
        storage.remove_tree(directory)
    if not whole:
        return 0
    stamp = storage.read_json(f"{whole[0]}/{STAMP}") or {}
    position = int((stamp.get("tail") or {}).get("position_ns") or 0)
    cutoff = position - int(grace * 1e9)
    if cutoff <= 0:
        return 0
    limit = storage.paths.log_bucket(cutoff)  # buckets before it go whole, it goes entry by entry
    removed = 0
    levels = [storage.paths.log_dir]
    for _ in range(4):  # year, month, day, hour
        levels = [
            f"{d}/{name}"
            for d in levels
            for name in sorted(storage.listdir(d))
            if name.isdigit() and f"{d}/{name}" <= limit[: len(f"{d}/{name}")]
        ]
    for bucket in levels:
        names = storage.listdir(bucket)
        if bucket < limit:
            storage.remove_tree(bucket)
            removed += len(names)
            continue
        for name in names:
            if LOG_ENTRY_RE.fullmatch(name) and int(name[:19]) < cutoff:
                storage.remove(f"{bucket}/{name}")
                removed += 1
    return removed
