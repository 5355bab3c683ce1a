"""The next trial's parameters: grid (the n-th combination), random (sampled with a generator
seeded by the sweep and the trial number, so two agents never draw alike), and bayes through
Optuna's TPE sampler, told every finished trial's metric.

Why Optuna's TPE: it is maintained, handles W&B's mix of categorical, integer, uniform and
log-uniform parameters (and nested ones, flattened), works from the first few trials (a GP
needs more to fit and pulls in torch), and takes past trials without a stored study
(`create_trial` + `add_trial`), so agents on several machines need nothing but the root.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from typing import Any

import numpy as np

from .space import Param, Space, SweepConfigError, flatten, nest


def _rng(sweep_id: str, number: int) -> np.random.Generator:
    seed = int.from_bytes(hashlib.sha256(f"{sweep_id}:{number}".encode()).digest()[:8], "little")
    return np.random.default_rng(seed)


def propose(
    space: Space, sweep_id: str, number: int, history: list[tuple[dict[str, Any], float]]
) -> dict[str, Any] | None:
    """Trial `number`'s parameters (None: the sweep has no more: a grid done)."""
    if space.method == "grid":
        combos = space.grid()
        return combos[number] if number < len(combos) else None
    if space.method == "random":
        rng = _rng(sweep_id, number)
        return nest({p.path: p.sample(rng) for p in space.params})
    return _bayes(space, sweep_id, number, history)


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ImportError("a bayes sweep uses Optuna's TPE sampler: pip install 'runlake[sweeps]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def distribution(optuna: Any, p: Param) -> Any:
    d = optuna.distributions
    if p.distribution in ("constant", "categorical"):
        return d.CategoricalDistribution(list(p.values))
    if p.distribution == "int_uniform":
        return d.IntDistribution(int(p.low), int(p.high))  # type: ignore[arg-type]
    if p.distribution in ("uniform", "q_uniform"):
        assert p.low is not None and p.high is not None
        return d.FloatDistribution(p.low, p.high)
    if p.distribution in ("log_uniform_values", "q_log_uniform_values"):
        return d.FloatDistribution(p.low, p.high, log=True)
    if p.distribution in ("log_uniform", "q_log_uniform"):
        assert p.low is not None and p.high is not None
        return d.FloatDistribution(math.exp(p.low), math.exp(p.high), log=True)
    raise SweepConfigError(
        f"parameter {p.name!r}: a bayes sweep cannot search the distribution {p.distribution!r}"
    )


def check_bayes(space: Space) -> None:
    optuna = _optuna()
    for p in space.params:
        distribution(optuna, p)


def _bayes(
    space: Space, sweep_id: str, number: int, history: list[tuple[dict[str, Any], float]]
) -> dict[str, Any]:
    optuna = _optuna()
    dists = {p.name: distribution(optuna, p) for p in space.params}
    direction = "minimize" if space.minimize else "maximize"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's experimental-feature notices
        sampler = optuna.samplers.TPESampler(
            seed=int(_rng(sweep_id, number).integers(2**31)), n_startup_trials=5
        )
        study = optuna.create_study(direction=direction, sampler=sampler)
        for params, value in history:
            flat = flatten(params)
            if set(flat) != set(dists) or not math.isfinite(value):
                continue
            try:
                study.add_trial(optuna.trial.create_trial(params=flat, distributions=dists, value=value))
            except ValueError:  # a value outside today's space (the trial predates an edit): skip
                continue
        asked = study.ask(dists)
    by_name = {p.name: p for p in space.params}
    return nest(
        {
            by_name[name].path: by_name[name]._q(value) if isinstance(value, float) else value
            for name, value in asked.params.items()
        }
    )
