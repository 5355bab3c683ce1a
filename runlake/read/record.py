"""`Lake.run(id)`: one run as a read-only record, read in one refresh. "Show one run" exists
once: `runlake show`, the web app's run page and the coming `Api` all render this record."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl


@dataclass(frozen=True)
class RunRecord:
    """A run as the root holds it now: its row of `runs()` (without the JSON columns, which come
    decoded), its define_metric rules, its lineage (nearest node first), its segments (each
    lineage row: kind, parent node, cutoff) and the runs forked from it."""

    row: dict[str, Any]
    config: dict[str, Any]
    summary: dict[str, Any]
    metadata: dict[str, Any]
    metrics: list[dict[str, Any]]
    lineage: pl.DataFrame
    segments: pl.DataFrame
    descendants: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def id(self) -> str:
        return str(self.row["run_id"])

    def __getattr__(self, name: str) -> Any:
        # run.project, run.state, run.last_step, ... : the row's columns
        row = self.__dict__.get("row")
        if row is not None and name in row:
            return row[name]
        raise AttributeError(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (timestamps as epoch seconds): what the CLI's --json and the web app send."""
        return {
            "run": {k: _plain(v) for k, v in self.row.items()},
            "config": self.config,
            "summary": self.summary,
            "metadata": self.metadata,
            "metrics": self.metrics,
            "lineage": [{k: _plain(v) for k, v in r.items()} for r in self.lineage.to_dicts()],
            "segments": [{k: _plain(v) for k, v in r.items()} for r in self.segments.to_dicts()],
            "descendants": [{k: _plain(v) for k, v in r.items()} for r in self.descendants.to_dicts()],
        }


JSON_COLUMNS = ("config", "summary", "metadata", "metrics")


def make(
    row: dict[str, Any], lineage: pl.DataFrame, segments: pl.DataFrame, descendants: pl.DataFrame
) -> RunRecord:
    """A record from a `runs` row (its JSON text columns decoded) and its tables."""
    row = dict(row)
    decoded = {name: json.loads(row.pop(name, None) or "null") for name in JSON_COLUMNS}
    return RunRecord(
        row=row,
        config=decoded["config"] or {},
        summary=decoded["summary"] or {},
        metadata=decoded["metadata"] or {},
        metrics=decoded["metrics"] or [],
        lineage=lineage,
        segments=segments,
        descendants=descendants,
    )


def _plain(value: Any) -> Any:
    if hasattr(value, "timestamp"):
        return value.timestamp()
    return value
