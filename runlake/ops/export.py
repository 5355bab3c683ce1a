"""`runlake catalog export`: the catalog of a root written into the root itself, as Parquet, so
any engine (Spark, polars, Daft) resolves lineage without runlake's DuckDB.

    <root>/_catalog/runs.parquet      the `runs` view, one row per run
    <root>/_catalog/segments.parquet  the lineage rows
    <root>/_catalog/closure.parquet   every node with each ancestor and the steps it contributes
                                      (step_lo < step <= step_hi): effective history is one
                                      equi-join plus a range condition on any engine
    <root>/_catalog/files.parquet     every history file to read, relative to the root, with its
                                      node (run_id, segment; null for a pack) and step range
    <root>/_catalog/export.json       written last (the switch): when, the manifests' state it
                                      reflects (a digest), counts, format version, and each
                                      table's size and sha256

Readers compare the digest with the root's manifests now (`status`) to tell a stale export, and
each table with the stamp (`check`) to tell a torn one: an export killed half-way, or one still
being written, leaves tables that do not match the stamp, and runlake's readers refuse them
rather than read old and new tables together.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from ..errors import RunlakeError
from ..read.catalog import Catalog
from ..read.reader import Reader
from ..store.layout import MAX_STEP
from ..store.parquet import encode_any
from ..store.storage import Storage

FORMAT = 1
TABLES = ("runs", "segments", "closure", "files")
STAMP = "export.json"


def path(storage: Storage, name: str) -> str:
    return f"{storage.root}/_catalog/{name}"


def export(reader: Reader) -> dict[str, Any]:
    """Write the export of the root as of now; returns its stamp."""
    storage = reader.storage
    started = time.time()
    with reader.reading() as cur:
        digest, manifests = reader.catalog.fingerprint()
        prefix = storage.root.rstrip("/") + "/"
        queries = {
            "runs": "SELECT * FROM runs ORDER BY created_at, run_id",
            "segments": "SELECT * FROM segments ORDER BY run_id, segment",
            "closure": "SELECT * FROM closure ORDER BY node_run_id, node_segment, depth",
            "files": f"""
                SELECT substr(p.path, {len(prefix) + 1}) AS path,
                       CASE WHEN p.pack THEN NULL ELSE p.run_id END AS run_id,
                       CASE WHEN p.pack THEN NULL ELSE p.segment END AS segment,
                       min(p.step_lo) AS step_lo, max(p.step_hi) AS step_hi,
                       max(p.bytes) AS bytes, p.pack
                FROM parts AS p WHERE starts_with(p.path, ?)
                GROUP BY ALL ORDER BY p.pack, path
            """,
        }
        counts, tables = {}, {}
        for name, query in queries.items():
            params = [prefix] if name == "files" else []
            relation = cur.sql(query, params=params or None).to_arrow_table()
            counts[name] = relation.num_rows
            data = encode_any(relation)
            storage.write_with_retry(path(storage, f"{name}.parquet"), data)
            tables[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    stamp = {
        "format": FORMAT,
        "exported_at": time.time(),
        "seconds": round(time.time() - started, 3),
        "manifests": manifests,
        "digest": digest,
        "counts": counts,
        "tables": tables,
        "max_step": MAX_STEP,
    }
    storage.write_with_retry(path(storage, STAMP), json.dumps(stamp, indent=1).encode())
    return stamp


def read_stamp(storage: Storage) -> dict[str, Any] | None:
    return storage.read_json(path(storage, STAMP))


def check(storage: Storage) -> dict[str, Any]:
    """The stamp of a whole export: every table is the one the stamp was written for.
    RunlakeError if there is no export, or if a table differs (an export was killed half-way
    or is being written now). Exports older than the table digests are taken as they are."""
    stamp = read_stamp(storage)
    if stamp is None:
        raise RunlakeError(
            f"root {storage.url!r} has no exported catalog (_catalog/export.json): run "
            "`runlake catalog export` (or compact) first"
        )
    for name, expected in (stamp.get("tables") or {}).items():
        data = storage.read_bytes(path(storage, f"{name}.parquet"))
        if (
            data is None
            or len(data) != expected.get("bytes")
            or hashlib.sha256(data).hexdigest() != expected.get("sha256")
        ):
            raise RunlakeError(
                f"the exported catalog of {storage.url!r} is torn: _catalog/{name}.parquet is not the one its "
                "stamp (export.json) was written with (an export was stopped half-way, or one is running now); "
                "run `runlake catalog export` again"
            )
    return stamp


def status(storage: Storage, catalog: Catalog) -> dict[str, Any]:
    """Is the export current? {exists, stale, exported_at, manifests_then, manifests_now}."""
    stamp = read_stamp(storage)
    if stamp is None:
        return {"exists": False, "stale": True}
    catalog.refresh()
    digest, manifests = catalog.fingerprint()
    return {
        "exists": True,
        "stale": digest != stamp.get("digest"),
        "exported_at": stamp.get("exported_at"),
        "manifests_then": stamp.get("manifests"),
        "manifests_now": manifests,
    }
