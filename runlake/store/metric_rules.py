"""define_metric's stored form: one `Metric` per definition (state.json `metrics`) and the
rule that picks the definition a key follows (its own name, else the longest matching glob).
Writers keep aggregates with it (`write/metrics.py`); readers pick a key's x-axis with it."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Metric:
    """What `define_metric` returns and stores with the run (state.json `metrics`)."""

    name: str
    step_metric: str | None = None
    step_sync: bool | None = None
    hidden: bool | None = None
    summary: list[str] | None = None
    goal: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Metric:
        return cls(
            name=str(doc.get("name")),
            step_metric=doc.get("step_metric"),
            step_sync=doc.get("step_sync"),
            hidden=doc.get("hidden"),
            summary=doc.get("summary"),
            goal=doc.get("goal"),
        )

    @property
    def is_glob(self) -> bool:
        return "*" in self.name or "?" in self.name


def matching(defined: Iterable[Metric], key: str) -> Metric | None:
    """The definition for `key`: its own name first, else the longest matching glob."""
    metrics = list(defined)
    for metric in metrics:
        if metric.name == key:
            return metric
    globs = [m for m in metrics if m.is_glob and fnmatch.fnmatchcase(key, m.name)]
    return max(globs, key=lambda m: len(m.name), default=None)
