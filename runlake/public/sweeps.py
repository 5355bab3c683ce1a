"""`api.sweep(path)`: W&B's public Sweep over a sweep stored in the root."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .runs import SWEEP, Run, Runs

if TYPE_CHECKING:
    from ..lake import Lake


class Sweep:
    """A sweep: `id`, `name`, `config`, `method`, `state`, `runs` (its runs, a `Runs`),
    `best_run(order=None)`, `project`, `entity`, `path`, `url` (None)."""

    def __init__(self, lake: Lake, row: dict[str, Any], entity: str | None = None) -> None:
        self._lake = lake
        self.id: str = row["sweep_id"]
        self.project: str = row["project"]
        self.entity: str | None = row.get("entity") or entity
        self.config: dict[str, Any] = json.loads(row["config"])
        self._row = row

    @property
    def name(self) -> str:
        return str(self.config.get("name") or self.id)

    @property
    def method(self) -> str:
        return str(self.config.get("method"))

    @property
    def state(self) -> str:
        """RUNNING while a trial runs or more may come; FINISHED when a grid is done or run_cap reached."""
        if self._row["running"]:
            return "RUNNING"
        cap = self.config.get("run_cap")
        if cap is not None and self._row["trials"] >= cap:
            return "FINISHED"
        if self.method == "grid":
            from ..sweeps.space import parse

            return "FINISHED" if self._row["trials"] >= len(parse(self.config).grid()) else "RUNNING"
        return "RUNNING"

    @property
    def path(self) -> list[str]:
        return [self.entity or "", self.project, self.id]

    @property
    def url(self) -> None:
        return None

    @property
    def runs(self) -> Runs:
        return Runs(self._lake, None, self.project, {"sweep": self.id})

    def expected_run_count(self) -> int | None:
        if self.method == "grid":
            from ..sweeps.space import parse

            return len(parse(self.config).grid())
        return self.config.get("run_cap")

    def best_run(self, order: str | None = None) -> Run | None:
        """The run with the best value of the sweep's metric (or of `order`: "[+|-]field")."""
        if order is None:
            metric = self.config.get("metric") or {}
            if not metric.get("name"):
                return None
            sign = "-" if metric.get("goal") == "maximize" else "+"
            order = f"{sign}summary_metrics.{metric['name']}"
        runs = Runs(self._lake, None, self.project, {"sweep": self.id}, order=order)
        return runs[0] if len(runs) else None

    def __repr__(self) -> str:
        return f"<Sweep {'/'.join(self.path)} ({self.state})>"


SWEEP.append(Sweep)  # Run.sweep makes these
