"""Folding the write-once records of a run's meta directory into the catalog: alerts
(`alerts`) and artifact records (`artifact_usage`, `artifact_files`). Each file is inserted
once; a file seen again changes nothing."""

from __future__ import annotations

from typing import Any

import duckdb

from ..store.layout import split_meta_path
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
