"""Bring history from other trackers: W&B offline runs, MLflow, TensorBoard, Neptune exports.

Each importer reads with the source's own library (wandb's records, `mlflow.MlflowClient`,
TensorBoard's event loader, pyarrow for neptune-exporter's Parquet) and lands ordinary runlake
runs: every read, fork, rewind and SQL view works on them, and `runs()` says where each came
from (`source`, `source_id`). Importing again adds only what is new.

    runlake.importers.import_source("mlflow", "sqlite:///mlflow.db", root="./runlake-data")
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..errors import RunlakeError
from ..store.names import check_name
from ..store.storage import Storage
from .lander import Existing, Landed, land, segments_of
from .model import Skipped, SourceRun, project_for, run_id_for

SOURCES = ("wandb", "mlflow", "tensorboard", "neptune")


@dataclass
class ImportReport:
    """What an import did: one row per source run, and what it could not import."""

    runs: pl.DataFrame
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def points(self) -> int:
        return int(self.runs["points"].sum()) if self.runs.height else 0

    def __repr__(self) -> str:
        counts = self.runs["status"].value_counts().rows() if self.runs.height else []
        said = ", ".join(f"{n} {status}" for status, n in sorted(counts)) or "no runs"
        return f"<ImportReport {said}; {self.points:,} points in {self.seconds:.2f} s; {len(self.skipped)} skipped>"


def _reader(source: str) -> Callable[..., list[SourceRun]]:
    if source == "wandb":
        from . import wandb

        return wandb.read
    if source == "mlflow":
        from . import mlflow

        return mlflow.read
    if source == "tensorboard":
        from . import tensorboard

        return tensorboard.read
    if source == "neptune":
        from . import neptune

        return neptune.read
    raise RunlakeError(f"unknown import source {source!r}: one of {', '.join(SOURCES)}")


def _ordered(runs: list[SourceRun]) -> list[SourceRun]:
    """Parents before the runs forked from them (a fork needs its parent's segments)."""
    by_id = {r.source_id: r for r in runs}
    done: set[str] = set()
    out: list[SourceRun] = []

    def visit(run: SourceRun, depth: int = 0) -> None:
        if run.source_id in done:
            return
        done.add(run.source_id)
        for seg in run.segments:
            parent = by_id.get(seg.parent_source_id or "")
            if parent is not None and depth < 10_000:
                visit(parent, depth + 1)
        out.append(run)

    for run in sorted(runs, key=lambda r: (r.created_at, r.source_id)):
        visit(run)
    return out


def _make_safe(run: SourceRun, skipped: list[Skipped]) -> None:
    """A source run as runlake can hold it: a project name that is never a path (the source's
    name kept in metadata), and no points below step 0 (listed as skipped, never lost in silence:
    MLflow and TensorBoard allow step -1, runlake's steps start at 0)."""
    safe = project_for(run.project)
    if safe != run.project:
        run.metadata["source_project"] = run.project
        run.project = safe
    for segment in run.segments:
        dropped, keys = segment.points.drop_below(0)
        if dropped:
            shown = ", ".join(repr(k) for k in keys[:5]) + (", ..." if len(keys) > 5 else "")
            skipped.append(
                Skipped(
                    run.where or run.source_id,
                    f"{dropped} point(s) at steps below 0 ({shown}) not imported: runlake's steps start at 0",
                )
            )


def import_runs(
    storage: Storage,
    source: str,
    path: str,
    *,
    existing: Existing,
    project: str | None = None,
    progress: bool | None = None,
    **options: Any,
) -> ImportReport:
    """Import every run `path` holds (see the module doc); `options` go to the source's reader
    (mlflow: experiment=NAME). `existing(run_id, segment)` reads the (key, step) points the root
    holds for a segment (a re-import adds only the others)."""
    started = time.time()
    reader = _reader(source)
    skipped: list[Skipped] = []
    if project is not None:
        check_name(project, "project name")
    runs = reader(path, project, skipped, **options)
    show = sys.stderr.isatty() if progress is None else progress
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    rows: list[dict[str, Any]] = []
    parents: dict[str, tuple[str, str, list[tuple[int, float]]]] = {}
    columns = (
        TextColumn("importing {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not show, transient=True) as bar:
        task = bar.add_task(f"{source} runs", total=len(runs))
        for listed in _ordered(runs):
            run = listed  # (the run landed before is let go here, before the next one is read)
            if listed.loader is not None:
                try:
                    run = listed.loader()
                except RunlakeError as exc:
                    skipped.append(Skipped(listed.where or listed.source_id, str(exc)))
                    continue
            for seg in run.segments:
                parent = seg.parent_source_id
                if parent is not None and parent not in parents:
                    pid = run_id_for(source, parent)
                    claim = storage.read_json(storage.paths.id_claim(pid)) or {}
                    owner = claim.get("project")
                    if isinstance(owner, str) and storage.exists(storage.paths.meta(owner, pid, "run.json")):
                        parents[parent] = (owner, pid, segments_of(storage, owner, pid))
            _make_safe(run, skipped)
            try:
                landed = land(storage, run, parents, existing)
            except RunlakeError as exc:
                skipped.append(Skipped(run.where or run.source_id, str(exc)))
                landed = Landed(run.run_id, "failed", 0, str(exc))
            else:
                claim = storage.read_json(storage.paths.id_claim(run.run_id)) or {}
                owner = claim.get("project") or run.project
                parents[run.source_id] = (owner, run.run_id, segments_of(storage, owner, run.run_id))
            rows.append(
                {
                    "run_id": landed.run_id,
                    "source_id": run.source_id,
                    "project": run.project,
                    "status": landed.status,
                    "points": landed.points,
                    "segments": len(run.segments),
                    "note": landed.note,
                }
            )
            bar.advance(task)
    schema = {
        "run_id": pl.String,
        "source_id": pl.String,
        "project": pl.String,
        "status": pl.String,
        "points": pl.Int64,
        "segments": pl.Int64,
        "note": pl.String,
    }
    return ImportReport(pl.DataFrame(rows, schema=schema), skipped, time.time() - started)


__all__ = ["SOURCES", "ImportReport", "Skipped", "import_runs"]
