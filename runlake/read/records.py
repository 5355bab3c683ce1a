"""Folding write-once records into the catalog: alerts (`alerts`) and artifact records
(`artifact_usage`, `artifact_files`) from a run's meta directory, each file inserted once (a file
seen again changes nothing); and the files of runs' console lines and system metrics
(`stream_files`), from the commit log or a full listing."""

from __future__ import annotations

from typing import Any

import duckdb

from ..store.layout import STREAM_RE, hive_node, split_meta_path
from ..store.manifests import AlertDoc, ArtifactEdgeDoc
from . import tables


def fold_alerts(
    folding: Any, cur: duckdb.DuckDBPyConnection, docs: list[tuple[AlertDoc, str]], *_: Any
) -> None:
    """Alerts are written once: an insert (a file seen again changes nothing)."""
    tables.insert_alerts(
        cur,
        {
            "path": [folding.storage.paths.relative(path) for _, path in docs],
            "run_id": [split_meta_path(path)[1] for _, path in docs],
            "project": [split_meta_path(path)[0] for _, path in docs],
            "segment": [d.segment for d, _ in docs],
            "step": [d.step for d, _ in docs],
            "at": [d.at for d, _ in docs],
            "level": [d.level for d, _ in docs],
            "title": [d.title for d, _ in docs],
            "text": [d.text for d, _ in docs],
        },
    )


def fold_artifact_edges(
    folding: Any, cur: duckdb.DuckDBPyConnection, docs: list[tuple[ArtifactEdgeDoc, str]], *_: Any
) -> None:
    """Records are written once: inserts (a file seen again changes nothing)."""
    usage: dict[str, list[Any]] = {
        k: []
        for k in (
            "path",
            "run_id",
            "project",
            "direction",
            "artifact_project",
            "name",
            "version",
            "type",
            "digest",
            "step",
            "segment",
            "at",
            "size",
        )
    }
    files: dict[str, list[Any]] = {
        k: [] for k in ("record", "artifact_project", "name", "version", "file_path", "sha256", "size")
    }
    for doc, path in docs:
        record = folding.storage.paths.relative(path)
        project, run_id, _name = split_meta_path(path)
        for key, value in (
            ("path", record),
            ("run_id", run_id),
            ("project", project),
            ("direction", doc.direction),
            ("artifact_project", doc.project),
            ("name", doc.name),
            ("version", doc.version),
            ("type", doc.type),
            ("digest", doc.digest),
            ("step", doc.step),
            ("segment", doc.segment),
            ("at", doc.at),
            ("size", doc.size),
        ):
            usage[key].append(value)
        for f in doc.files:
            for key, value in (
                ("record", record),
                ("artifact_project", doc.project),
                ("name", doc.name),
                ("version", doc.version),
                ("file_path", f.get("path")),
                ("sha256", f.get("sha256")),
                ("size", f.get("size")),
            ):
                files[key].append(value)
    tables.insert_artifact_usage(cur, usage, files)


# ---- stream files: runs' console lines and system metrics ---------------------------------
def indexed_streams(cur: duckdb.DuckDBPyConnection) -> set[str]:
    return {p for (p,) in cur.execute("SELECT path FROM stream_files").fetchall()}


def streams_pending(fold: Any, cur: duckdb.DuckDBPyConnection) -> bool:
    """Has anything to do with the stream files changed (what a quiet refresh checks)?"""
    tail = fold.catalog.tail
    if fold.stream_listing is not None:
        listed = {fold.storage.engine_path(p) for p in fold.stream_listing}
        return listed != indexed_streams(cur)
    return bool(tail.streams or tail.streams_dropped_trees)


def fold_streams(fold: Any, cur: duckdb.DuckDBPyConnection) -> bool:
    """Index the files of runs' console lines and system metrics: what the log said was
    stored or removed, or (a full listing) every one there is."""
    tail = fold.catalog.tail
    if fold.stream_listing is not None:  # a full listing
        found = {fold.storage.engine_path(p): size for p, size in fold.stream_listing.items()}
        if set(found) == indexed_streams(cur):
            return False
        cur.execute("DELETE FROM stream_files")
        rows = [r for p, size in found.items() if (r := _stream_row(p, size)) is not None]
    else:
        if not tail.streams and not tail.streams_dropped_trees:
            return False
        for tree in tail.streams_dropped_trees:
            cur.execute(
                "DELETE FROM stream_files WHERE starts_with(path, ?)",
                [fold.storage.engine_path(tree) + "/"],
            )
        gone = [fold.storage.engine_path(p) for p, v in tail.streams.items() if v is None]
        if gone:
            cur.execute("DELETE FROM stream_files WHERE path IN (SELECT unnest(?))", [gone])
        rows = [
            r
            for p, v in tail.streams.items()
            if v is not None and (r := _stream_row(fold.storage.engine_path(p), v[1])) is not None
        ]
    if rows:
        cur.executemany("INSERT OR REPLACE INTO stream_files VALUES (?, ?, ?, ?, ?, ?)", rows)
    return True


def _stream_row(path: str, size: int) -> tuple[Any, ...] | None:
    """A stream_files row from a stream file's path (its run and segment are in the hive path,
    its stream and label in its name)."""
    node = hive_node(path)
    match = STREAM_RE.fullmatch(path.rsplit("/", 1)[-1])
    if node is None or match is None:
        return None
    label = match[3]
    return (path, node[0], node[1], match[1], "" if label == "_" else label, size)
