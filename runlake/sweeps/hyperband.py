"""W&B's hyperband early termination, read from the trials' own history.

Brackets are counted in logged values of the sweep's metric: with `min_iter`, at min_iter,
min_iter*eta, min_iter*eta^2, ... (`s` brackets, default 3 as W&B); with `max_iter`, at
max_iter/eta^s, ..., max_iter/eta. When a trial has logged the metric as many times as a
bracket, its best value so far is compared with the best values of every trial of the sweep
that reached that bracket: outside the best 1/eta of them it is stopped.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def brackets(spec: dict[str, Any]) -> list[int]:
    eta = float(spec.get("eta", 3))
    s = int(spec.get("s", 3))
    if eta <= 1 or s < 1:
        raise ValueError(f"early_terminate: eta must be > 1 and s >= 1, got eta={eta}, s={s}")
    if "min_iter" in spec:
        first = int(spec["min_iter"])
        return [int(round(first * eta**k)) for k in range(s)]
    top = float(spec["max_iter"])
    return sorted({max(1, int(round(top / eta**k))) for k in range(s, 0, -1)})


def best_until(values: list[float], count: int, minimize: bool) -> float:
    head = [v for v in values[:count] if v == v]  # NaN never wins
    if not head:
        return float("inf") if minimize else float("-inf")
    return min(head) if minimize else max(head)


def should_stop(mine: list[float], others: list[list[float]], spec: dict[str, Any], minimize: bool) -> bool:
    """Is a trial whose metric values are `mine` outside the best 1/eta at a bracket it reached?"""
    eta = float(spec.get("eta", 3))
    for band in brackets(spec):
        if len(mine) < band:
            break
        reached = [best_until(v, band, minimize) for v in others if len(v) >= band]
        if len(reached) < 1:  # alone at this bracket: nothing to compare with
            continue
        pool = np.array([*reached, best_until(mine, band, minimize)])
        cut = np.quantile(pool, 1 / eta) if minimize else np.quantile(pool, 1 - 1 / eta)
        value = best_until(mine, band, minimize)
        if (minimize and value > cut) or (not minimize and value < cut):
            return True
    return False
