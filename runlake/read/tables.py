"""Writing the catalog's tables from typed documents and listings (Arrow in, one statement each)."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from ..store.manifests import RunIdentity, SegmentDoc
from .lineage import Node


def upsert_identities(cur: duckdb.DuckDBPyConnection, identities: list[RunIdentity]) -> None:
    rows = {
        "run_id": [d.run_id for d in identities],
        "project": [d.project for d in identities],
        "name": [d.name for d in identities],
        "notes": [d.notes for d in identities],
        "tags": [list(d.tags or []) for d in identities],
        "created_at": [float(d.created_at or 0.0) for d in identities],
    }
    cur.register("new_runs", pa.table(rows, schema=_IDENTITY_SCHEMA))
    cur.execute(
        """
        INSERT INTO run_meta (run_id, project, name, notes, tags, created_at, segment, raw_state, state)
        SELECT run_id, project, name, notes, tags, created_at, 0, 'running', 'running' FROM new_runs
        ON CONFLICT (run_id) DO UPDATE SET
            project = excluded.project, name = excluded.name, notes = excluded.notes,
            tags = excluded.tags, created_at = excluded.created_at
        """
    )
    cur.unregister("new_runs")


def insert_segments(cur: duckdb.DuckDBPyConnection, segments: list[SegmentDoc]) -> None:
    rows = {
        "run_id": [d.run_id for d in segments],
        "segment": [int(d.segment) for d in segments],
        "project": [d.project for d in segments],
        "kind": [d.kind for d in segments],
        "parent_run_id": [d.parent_run_id for d in segments],
        "parent_segment": [d.parent_segment for d in segments],
        "cutoff": [d.cutoff for d in segments],
        "created_at": [float(d.created_at or 0.0) for d in segments],
    }
    cur.register("new_segments", pa.table(rows, schema=_SEGMENT_SCHEMA))
    cur.execute("INSERT OR REPLACE INTO segments SELECT * FROM new_segments")
    cur.unregister("new_segments")


def index_pack(
    cur: duckdb.DuckDBPyConnection, pack: str, members: list[tuple[str, int, int, int, int]]
) -> None:
    """Index a pack's members (run_id, segment, step_lo, step_hi, bytes); the nodes' own parts
    within the packed range drop out."""
    if not members:
        return
    r, s, lo, hi, size = (list(c) for c in zip(*members, strict=True))
    rows = pa.table(
        {
            "path": [pack] * len(members),
            "run_id": r,
            "segment": s,
            "step_lo": lo,
            "step_hi": hi,
            "bytes": size,
            "pack": [True] * len(members),
        },
        schema=_PARTS_SCHEMA,
    )
    cur.register("new_pack", rows)
    cur.execute(
        """
        DELETE FROM parts AS p USING new_pack AS n
        WHERE p.run_id = n.run_id AND p.segment = n.segment AND NOT p.pack
          AND p.step_lo >= n.step_lo AND p.step_hi <= n.step_hi
        """
    )
    cur.execute("INSERT OR REPLACE INTO parts SELECT * FROM new_pack")
    cur.unregister("new_pack")


def insert_parts(
    cur: duckdb.DuckDBPyConnection,
    paths: list[str],
    run_ids: list[str],
    segments: list[int],
    los: list[int],
    his: list[int],
    sizes: list[int],
) -> None:
    if not paths:
        return
    table = pa.table(
        {
            "path": paths,
            "run_id": run_ids,
            "segment": segments,
            "step_lo": los,
            "step_hi": his,
            "bytes": sizes,
            "pack": [False] * len(paths),
        },
        schema=_PARTS_SCHEMA,
    )
    cur.register("new_parts", table)
    cur.execute("INSERT OR REPLACE INTO parts SELECT * FROM new_parts")
    cur.unregister("new_parts")


def replace_closure(cur: duckdb.DuckDBPyConnection, nodes: list[Node], columns: list[list[Any]]) -> None:
    """The closure rows of `nodes` become `columns` (node_run_id, node_segment, depth, run_id,
    segment, step_lo, step_hi)."""
    stale = pa.table(
        {"run_id": [n[0] for n in nodes], "segment": [n[1] for n in nodes]},
        schema=pa.schema([("run_id", pa.string()), ("segment", pa.int64())]),
    )
    cur.register("stale_nodes", stale)
    cur.execute(
        "DELETE FROM closure AS c USING stale_nodes AS s WHERE c.node_run_id = s.run_id AND c.node_segment = s.segment"
    )
    cur.unregister("stale_nodes")
    cur.register("new_closure", pa.table(columns, schema=_CLOSURE_SCHEMA))
    cur.execute("INSERT INTO closure SELECT * FROM new_closure")
    cur.unregister("new_closure")


_IDENTITY_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("project", pa.string()),
        ("name", pa.string()),
        ("notes", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("created_at", pa.float64()),
    ]
)
_SEGMENT_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("segment", pa.int64()),
        ("project", pa.string()),
        ("kind", pa.string()),
        ("parent_run_id", pa.string()),
        ("parent_segment", pa.int64()),
        ("cutoff", pa.int64()),
        ("created_at", pa.float64()),
    ]
)
_PARTS_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("run_id", pa.string()),
        ("segment", pa.int64()),
        ("step_lo", pa.int64()),
        ("step_hi", pa.int64()),
        ("bytes", pa.int64()),
        ("pack", pa.bool_()),
    ]
)
_CLOSURE_SCHEMA = pa.schema(
    [
        ("node_run_id", pa.string()),
        ("node_segment", pa.int64()),
        ("depth", pa.int64()),
        ("run_id", pa.string()),
        ("segment", pa.int64()),
        ("step_lo", pa.int64()),
        ("step_hi", pa.int64()),
    ]
)
