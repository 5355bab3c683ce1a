"""Writing the catalog's tables from typed documents and listings (Arrow in, one statement each).

The Arrow types come from the tables themselves (defined once, in sql/), never restated here.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa

from ..store.manifests import RunIdentity, SegmentDoc
from .lineage import Node


def _arrow(cur: duckdb.DuckDBPyConnection, table: str, columns: dict[str, Any]) -> pa.Table:
    """`columns` as an Arrow table typed like those columns of the catalog table `table`."""
    names = ", ".join(f'"{c}"' for c in columns)
    schema = cur.sql(f"SELECT {names} FROM {table} LIMIT 0").to_arrow_table().schema
    return pa.table(columns, schema=schema)


def upsert_identities(cur: duckdb.DuckDBPyConnection, identities: list[RunIdentity]) -> None:
    rows = {
        "run_id": [d.run_id for d in identities],
        "project": [d.project for d in identities],
        "name": [d.name for d in identities],
        "notes": [d.notes for d in identities],
        "tags": [list(d.tags or []) for d in identities],
        "created_at": [float(d.created_at or 0.0) for d in identities],
        "group": [d.group for d in identities],
        "job_type": [d.job_type for d in identities],
        "entity": [d.entity for d in identities],
        "source": [d.source for d in identities],
        "source_id": [d.source_id for d in identities],
        "metadata": [json.dumps(d.metadata) if d.metadata else None for d in identities],
    }
    cur.register("new_runs", _arrow(cur, "run_meta", rows))
    names = ", ".join(f'"{c}"' for c in rows)
    cur.execute(
        f"""
        INSERT INTO run_meta ({names}, segment, raw_state, state)
        SELECT {names}, 0, 'running', 'running' FROM new_runs
        ON CONFLICT (run_id) DO UPDATE SET
            project = excluded.project, name = coalesce(run_meta.name, excluded.name),
            notes = coalesce(run_meta.notes, excluded.notes), tags = coalesce(run_meta.tags, excluded.tags),
            "group" = coalesce(run_meta."group", excluded."group"),
            job_type = coalesce(run_meta.job_type, excluded.job_type), created_at = excluded.created_at,
            entity = excluded.entity, source = excluded.source, source_id = excluded.source_id,
            metadata = excluded.metadata
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
    cur.register("new_segments", _arrow(cur, "segments", rows))
    cur.execute("INSERT OR REPLACE INTO segments SELECT * FROM new_segments")
    cur.unregister("new_segments")
    counted = [d for d in segments if d.previous_segment is not None and d.previous_parts is not None]
    if counted:
        columns = {
            "run_id": [d.run_id for d in counted],
            "segment": [int(d.previous_segment or 0) for d in counted],
            "parts": [int(d.previous_parts or 0) for d in counted],
        }
        cur.register("new_counts", _arrow(cur, "archived_parts", columns))
        cur.execute("INSERT OR REPLACE INTO archived_parts SELECT * FROM new_counts")
        cur.unregister("new_counts")


PartRow = tuple[str, str, int, int, int, int]  # path, run_id, segment, step_lo, step_hi, bytes


def index_pack(
    cur: duckdb.DuckDBPyConnection, pack: str, members: list[tuple[str, int, int, int, int, int | None]]
) -> None:
    """Index a pack's members (run_id, segment, step_lo, step_hi, bytes, part files replaced);
    the nodes' own parts within the packed range drop out."""
    if not members:
        return
    cur.register("new_pack", _parts(cur, [(pack, *m) for m in members], pack=True))
    cur.execute(
        """
        DELETE FROM parts AS p USING new_pack AS n
        WHERE p.run_id = n.run_id AND p.segment = n.segment AND NOT p.pack
          AND p.step_lo >= n.step_lo AND p.step_hi <= n.step_hi
        """
    )
    cur.execute("INSERT OR REPLACE INTO parts SELECT * FROM new_pack")
    cur.unregister("new_pack")


def insert_parts(cur: duckdb.DuckDBPyConnection, rows: list[PartRow]) -> None:
    """Index nodes' own part files (from a listing)."""
    if not rows:
        return
    cur.register("new_parts", _parts(cur, rows, pack=False))
    cur.execute("INSERT OR REPLACE INTO parts SELECT * FROM new_parts")
    cur.unregister("new_parts")


def _parts(cur: duckdb.DuckDBPyConnection, rows: list[Any], *, pack: bool) -> pa.Table:
    """Rows (path, run_id, segment, step_lo, step_hi, bytes[, files]) as the parts table: a
    listed part stands for one file, a pack member for the files its manifest says."""
    names = ("path", "run_id", "segment", "step_lo", "step_hi", "bytes", "files")
    columns: dict[str, Any] = {n: list(c) for n, c in zip(names, zip(*rows, strict=True), strict=False)}
    files = columns.pop("files", None) if pack else [1] * len(rows)
    # in the table's column order: the inserts select *
    return _arrow(cur, "parts", {**columns, "pack": [pack] * len(rows), "files": files or [None] * len(rows)})


def replace_closure(cur: duckdb.DuckDBPyConnection, nodes: list[Node], columns: list[list[Any]]) -> None:
    """The closure rows of `nodes` become `columns` (node_run_id, node_segment, depth, run_id,
    segment, step_lo, step_hi)."""
    stale = _arrow(cur, "segments", {"run_id": [n[0] for n in nodes], "segment": [n[1] for n in nodes]})
    cur.register("stale_nodes", stale)
    cur.execute(
        "DELETE FROM closure AS c USING stale_nodes AS s WHERE c.node_run_id = s.run_id AND c.node_segment = s.segment"
    )
    cur.unregister("stale_nodes")
    names = ("node_run_id", "node_segment", "depth", "run_id", "segment", "step_lo", "step_hi")
    cur.register("new_closure", _arrow(cur, "closure", dict(zip(names, columns, strict=True))))
    cur.execute("INSERT INTO closure SELECT * FROM new_closure")
    cur.unregister("new_closure")


# A run's attributes as its writer last set them; null (an older writer) keeps run.json's.
_KEEP_IF_NULL = frozenset(["name", "tags", "notes", "group", "job_type"])


def update_states(cur: duckdb.DuckDBPyConnection, columns: dict[str, list[Any]]) -> None:
    """Each run's latest state (columns of run_meta, keyed by run_id), in one statement."""
    cur.register("new_states", _arrow(cur, "run_meta", columns))
    sets = ", ".join(
        f'"{name}" = coalesce(n."{name}", run_meta."{name}")'
        if name in _KEEP_IF_NULL
        else f'"{name}" = n."{name}"'
        for name in columns
        if name != "run_id"
    )
    cur.execute(f"UPDATE run_meta SET {sets} FROM new_states AS n WHERE run_meta.run_id = n.run_id")
    cur.unregister("new_states")


def _node_parts(
    cur: duckdb.DuckDBPyConnection, nodes: dict[str, list[Any]], what: str, pack: bool
) -> list[tuple[Any, ...]]:
    cur.register("the_nodes", _arrow(cur, "segments", nodes))
    try:
        return cur.execute(
            f"SELECT p.run_id, p.segment, {what} FROM parts AS p "
            f"JOIN the_nodes AS n ON p.run_id = n.run_id AND p.segment = n.segment WHERE {'' if pack else 'NOT '}p.pack"
        ).fetchall()
    finally:
        cur.unregister("the_nodes")


def packed_ranges(cur: duckdb.DuckDBPyConnection, nodes: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
    """(run_id, segment, step_lo, step_hi) of the packs holding rows of these nodes."""
    return _node_parts(cur, nodes, "p.step_lo, p.step_hi", pack=True)


def own_parts(cur: duckdb.DuckDBPyConnection, nodes: dict[str, list[Any]]) -> list[tuple[Any, ...]]:
    """(run_id, segment, path, bytes) of these nodes' own (listed) parts as indexed now."""
    return _node_parts(cur, nodes, "p.path, p.bytes", pack=False)


def delete_own_parts(cur: duckdb.DuckDBPyConnection, nodes: dict[str, list[Any]]) -> None:
    """Forget these nodes' own (listed) parts, before they are listed again."""
    cur.register("the_nodes", _arrow(cur, "segments", nodes))
    cur.execute(
        "DELETE FROM parts AS p USING the_nodes AS n "
        "WHERE p.run_id = n.run_id AND p.segment = n.segment AND NOT p.pack"
    )
    cur.unregister("the_nodes")


def apply_beats(cur: duckdb.DuckDBPyConnection, columns: dict[str, list[Any]]) -> None:
    """Heartbeats (meta/beat.json) of running runs, in one statement; a stale beat (an older
    segment's, or older than the state) changes nothing."""
    cur.register("new_beats", _arrow(cur, "run_meta", columns))
    cur.execute(
        """
        UPDATE run_meta SET heartbeat = n.heartbeat, seen_at = n.seen_at
        FROM new_beats AS n
        WHERE run_meta.run_id = n.run_id AND run_meta.segment = n.segment
          AND run_meta.raw_state = 'running' AND n.heartbeat > coalesce(run_meta.heartbeat, 0)
        """
    )
    cur.unregister("new_beats")


def insert_alerts(cur: duckdb.DuckDBPyConnection, columns: dict[str, list[Any]]) -> None:
    """New alert rows (`at` in epoch seconds); an alert already there is left as it is."""
    cur.register("new_alerts", pa.table(columns))
    cur.execute(
        'INSERT INTO alerts SELECT path, run_id, project, segment, step, to_timestamp(new_alerts."at"), level, title, text '
        "FROM new_alerts ON CONFLICT DO NOTHING"
    )
    cur.unregister("new_alerts")


def insert_artifact_usage(
    cur: duckdb.DuckDBPyConnection, usage: dict[str, list[Any]], files: dict[str, list[Any]]
) -> None:
    """New artifact records (`at` in epoch seconds) and the files of the versions logged."""
    cur.register("new_usage", pa.table(usage))
    cur.execute(
        "INSERT INTO artifact_usage SELECT path, run_id, project, direction, artifact_project, name, version, type, "
        'digest, step, segment, to_timestamp(new_usage."at"), size FROM new_usage ON CONFLICT DO NOTHING'
    )
    cur.unregister("new_usage")
    if files["record"]:
        cur.register("new_files", pa.table(files))
        cur.execute("INSERT INTO artifact_files SELECT * FROM new_files ON CONFLICT DO NOTHING")
        cur.unregister("new_files")
