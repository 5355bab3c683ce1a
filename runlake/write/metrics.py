"""`define_metric`: per-metric x-axis and what the summary keeps (min, max, mean, first, last,
best, none), with W&B's glob names ("val/*"). Aggregates are kept as values are logged."""

from __future__ import annotations

import math
from typing import Any

from ..store.metric_rules import Metric, matching

SUMMARY_OPS = ("min", "max", "mean", "first", "last", "best", "copy", "none")
GOALS = ("minimize", "maximize")


def define(
    name: object,
    step_metric: object = None,
    step_sync: object = None,
    hidden: object = None,
    summary: object = None,
    goal: object = None,
) -> Metric:
    """A validated Metric (ValueError / TypeError naming the argument otherwise)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"define_metric: name must be a non-empty str, got {name!r}")
    if step_metric is not None:
        step_metric = getattr(step_metric, "name", step_metric)
        if not isinstance(step_metric, str) or not step_metric:
            raise TypeError(f"define_metric: step_metric must be a metric name, got {step_metric!r}")
    for label, value in (("step_sync", step_sync), ("hidden", hidden)):
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"define_metric: {label} must be True or False, got {value!r}")
    ops: list[str] | None = None
    if summary is not None:
        if not isinstance(summary, str):
            raise TypeError(
                f"define_metric: summary must be a str such as 'min' or 'min,max', got {summary!r}"
            )
        ops = [op.strip().lower() for op in summary.split(",") if op.strip()]
        bad = [op for op in ops if op not in SUMMARY_OPS]
        if bad or not ops:
            raise ValueError(
                f"define_metric: summary {summary!r} is not one of {', '.join(SUMMARY_OPS)} (comma-separated)"
            )
    if goal is not None:
        if goal not in GOALS:
            raise ValueError(f"define_metric: goal must be 'minimize' or 'maximize', got {goal!r}")
    elif ops and "best" in ops:
        raise ValueError("define_metric: summary='best' needs goal='minimize' or goal='maximize'")
    return Metric(name, step_metric, step_sync, hidden, ops, goal)  # type: ignore[arg-type]


class Metrics:
    """A run's metric definitions and the summary aggregates they ask for."""

    def __init__(
        self, defined: list[dict[str, Any]] | None = None, state: dict[str, Any] | None = None
    ) -> None:
        self.defined: dict[str, Metric] = {}
        self._rule_of: dict[str, Metric | None] = {}  # key -> the definition that applies (cache)
        self.aggregates: dict[str, dict[str, float]] = {k: dict(v) for k, v in (state or {}).items()}
        for doc in defined or []:
            metric = Metric.from_json(doc)
            self.defined[metric.name] = metric

    def add(self, metric: Metric) -> None:
        self.defined[metric.name] = metric
        self._rule_of.clear()

    def rule(self, key: str) -> Metric | None:
        """The definition for `key`: its own name first, else the longest matching glob."""
        try:
            return self._rule_of[key]
        except KeyError:
            pass
        found = self.defined.get(key) or matching(self.defined.values(), key)
        if len(self._rule_of) < 100_000:
            self._rule_of[key] = found
        return found

    @property
    def aggregating(self) -> bool:
        return any(m.summary and m.summary != ["last"] for m in self.defined.values())

    def observe(self, row: dict[str, float | str]) -> None:
        """Fold one logged row into the aggregates (numbers only; NaN is skipped, as W&B does)."""
        for key, value in row.items():
            if not isinstance(value, float) or math.isnan(value):
                continue
            rule = self.rule(key)
            if rule is None or not rule.summary:
                continue
            agg = self.aggregates.get(key)
            if agg is None:
                self.aggregates[key] = {
                    "min": value,
                    "max": value,
                    "sum": value,
                    "count": 1.0,
                    "first": value,
                }
                continue
            if value < agg["min"]:
                agg["min"] = value
            if value > agg["max"]:
                agg["max"] = value
            agg["sum"] += value
            agg["count"] += 1.0

    def apply(self, summary: dict[str, Any]) -> dict[str, Any]:
        """The summary W&B shows: an aggregated key becomes {op: value}; 'none' drops it."""
        if not self.defined:
            return summary
        out = dict(summary)
        for key in list(out):
            rule = self.rule(key)
            if rule is None or not rule.summary or rule.summary in (["last"], ["copy"]):
                continue
            if rule.summary == ["none"]:
                del out[key]
                continue
            agg = self.aggregates.get(key)
            last = out[key]
            value: dict[str, Any] = {}
            for op in rule.summary:
                if op in ("last", "copy"):
                    value["last"] = last
                elif op == "none" or agg is None:
                    continue
                elif op == "mean":
                    value["mean"] = agg["sum"] / agg["count"]
                elif op == "best":
                    value["best"] = agg["min"] if rule.goal == "minimize" else agg["max"]
                else:
                    value[op] = agg[op]
            out[key] = value if value else last
        return out

    def to_json(self) -> list[dict[str, Any]]:
        return [m.to_json() for m in self.defined.values()]
