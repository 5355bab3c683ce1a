"""W&B's sweep configuration: the method, the metric, and the parameter space with W&B's syntax
(`value`, `values` with optional `probabilities`, `distribution` with `min`/`max`, `q`,
`mu`/`sigma`, log-uniform forms, nested `parameters`), checked once with errors that name the
parameter and what is wrong (W&B's server would refuse such a sweep too)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import RunlakeError

METHODS = ("grid", "random", "bayes")
DISTRIBUTIONS = (
    "constant",
    "categorical",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "log_uniform_values",
    "q_log_uniform",
    "q_log_uniform_values",
    "inv_log_uniform",
    "inv_log_uniform_values",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
)


class SweepConfigError(RunlakeError, ValueError):
    """A sweep configuration W&B would refuse: names the parameter and what is wrong."""


@dataclass(frozen=True)
class Param:
    """One leaf parameter: its path in the config (nested parameters give several parts)."""

    path: tuple[str, ...]
    distribution: str
    values: tuple[Any, ...] = ()
    probabilities: tuple[float, ...] | None = None
    low: float | None = None
    high: float | None = None
    q: float | None = None
    mu: float = 0.0
    sigma: float = 1.0

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def discrete(self) -> bool:
        return self.distribution in ("constant", "categorical", "int_uniform")

    def grid(self) -> list[Any]:
        if self.distribution in ("constant", "categorical"):
            return list(self.values)
        if self.distribution == "int_uniform":
            assert self.low is not None and self.high is not None
            return list(range(int(self.low), int(self.high) + 1))
        if self.distribution == "q_uniform" and self.q:
            assert self.low is not None and self.high is not None
            return [float(v) for v in np.arange(self.low, self.high + self.q / 2, self.q)]
        raise SweepConfigError(
            f"parameter {self.name!r}: a grid sweep needs values, a value, int_uniform or q_uniform, "
            f"not the continuous distribution {self.distribution!r}"
        )

    def sample(self, rng: np.random.Generator) -> Any:
        d = self.distribution
        if d == "constant":
            return self.values[0]
        if d == "categorical":
            i = (
                rng.choice(len(self.values), p=self.probabilities)
                if self.probabilities
                else rng.integers(len(self.values))
            )
            value = self.values[int(i)]
            return value.item() if isinstance(value, np.generic) else value
        lo, hi = self.low, self.high
        if d == "int_uniform":
            assert lo is not None and hi is not None
            return int(rng.integers(int(lo), int(hi) + 1))
        if d in ("uniform", "q_uniform"):
            assert lo is not None and hi is not None
            return self._q(float(rng.uniform(lo, hi)))
        if d in ("log_uniform", "q_log_uniform"):  # min/max are exponents (natural log), as in W&B
            assert lo is not None and hi is not None
            return self._q(math.exp(rng.uniform(lo, hi)))
        if d in ("log_uniform_values", "q_log_uniform_values"):
            assert lo is not None and hi is not None
            return self._q(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        if d == "inv_log_uniform":
            assert lo is not None and hi is not None
            return 1.0 / math.exp(rng.uniform(lo, hi))
        if d == "inv_log_uniform_values":
            assert lo is not None and hi is not None
            return 1.0 / math.exp(rng.uniform(math.log(1 / hi), math.log(1 / lo)))
        if d in ("normal", "q_normal"):
            return self._q(float(rng.normal(self.mu, self.sigma)))
        if d in ("log_normal", "q_log_normal"):
            return self._q(float(rng.lognormal(self.mu, self.sigma)))
        raise SweepConfigError(f"parameter {self.name!r}: unknown distribution {d!r}")

    def _q(self, value: float) -> float:
        if self.q and self.distribution.startswith("q_"):
            return round(value / self.q) * self.q
        return value


@dataclass(frozen=True)
class Space:
    method: str
    params: tuple[Param, ...]
    metric: dict[str, Any] | None = None
    early_terminate: dict[str, Any] | None = None
    run_cap: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metric_name(self) -> str | None:
        return None if not self.metric else str(self.metric.get("name"))

    @property
    def minimize(self) -> bool:
        return (self.metric or {}).get("goal", "minimize") != "maximize"

    def grid(self) -> list[dict[str, Any]]:
        """Every combination, in W&B's order (the last parameter changes fastest)."""
        axes = [p.grid() for p in self.params]
        return [
            nest(dict(zip((p.path for p in self.params), combo, strict=True)))
            for combo in itertools.product(*axes)
        ]


def nest(flat: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    """{("opt", "lr"): 0.1} -> {"opt": {"lr": 0.1}}: nested parameters as W&B hands them to config."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"opt": {"lr": 0.1}} -> {"opt.lr": 0.1}: nested parameters by their dotted names."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _number(spec: dict[str, Any], key: str, name: str) -> float:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SweepConfigError(f"parameter {name!r}: {key!r} must be a number, got {value!r}")
    return value


def _leaf(path: tuple[str, ...], spec: Any) -> Param:
    name = ".".join(path)
    if not isinstance(spec, dict):
        raise SweepConfigError(
            f"parameter {name!r} must be a mapping (value, values, distribution...), got {spec!r:.80}"
        )
    if "value" in spec:
        return Param(path, "constant", (spec["value"],))
    distribution = spec.get("distribution")
    if "values" in spec and distribution in (None, "categorical"):
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise SweepConfigError(f"parameter {name!r}: values must be a non-empty list, got {values!r:.80}")
        probabilities = spec.get("probabilities")
        if probabilities is not None:
            if len(probabilities) != len(values) or abs(sum(probabilities) - 1.0) > 1e-6:
                raise SweepConfigError(f"parameter {name!r}: probabilities must match values and sum to 1")
            probabilities = tuple(float(p) for p in probabilities)
        return Param(path, "categorical", tuple(values), probabilities)
    if distribution is None:
        if "min" in spec and "max" in spec:  # W&B infers: two ints -> int_uniform, else uniform
            both_int = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("min", "max"))
            distribution = "int_uniform" if both_int else "uniform"
        elif "mu" in spec or "sigma" in spec:
            distribution = "normal"
        else:
            raise SweepConfigError(
                f"parameter {name!r} needs value, values, min/max or a distribution: got {sorted(spec)}"
            )
    if distribution not in DISTRIBUTIONS:
        raise SweepConfigError(
            f"parameter {name!r}: unknown distribution {distribution!r} (W&B's are {', '.join(DISTRIBUTIONS)})"
        )
    if distribution in ("normal", "q_normal", "log_normal", "q_log_normal"):
        q = _number(spec, "q", name) if "q" in spec else None
        return Param(
            path, distribution, q=q, mu=float(spec.get("mu", 0.0)), sigma=float(spec.get("sigma", 1.0))
        )
    low, high = _number(spec, "min", name), _number(spec, "max", name)
    if not low < high and not (distribution == "int_uniform" and low == high):
        raise SweepConfigError(f"parameter {name!r}: min ({low}) must be below max ({high})")
    if distribution in ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values") and low <= 0:
        raise SweepConfigError(f"parameter {name!r}: {distribution} needs min > 0, got {low}")
    q = _number(spec, "q", name) if "q" in spec else (1.0 if distribution.startswith("q_") else None)
    return Param(path, distribution, low=float(low), high=float(high), q=q)


def _params(parameters: Any, prefix: tuple[str, ...] = ()) -> list[Param]:
    if not isinstance(parameters, dict) or not parameters:
        raise SweepConfigError(
            f"parameters{' of ' + '.'.join(prefix) if prefix else ''} must be a non-empty mapping"
        )
    out: list[Param] = []
    for key, spec in parameters.items():
        path = (*prefix, str(key))
        if isinstance(spec, dict) and "parameters" in spec:
            out += _params(spec["parameters"], path)
        else:
            out.append(_leaf(path, spec))
    return out


def parse(config: Any) -> Space:
    """The sweep configuration (a dict, as `wandb.sweep(sweep=...)` takes it)."""
    if not isinstance(config, dict):
        raise SweepConfigError(f"a sweep configuration is a mapping, got {type(config).__name__}")
    method = config.get("method")
    if method not in METHODS:
        raise SweepConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    metric = config.get("metric")
    if metric is not None:
        if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
            raise SweepConfigError(f"metric must be a mapping with a name (and a goal), got {metric!r:.80}")
        if metric.get("goal", "minimize") not in ("minimize", "maximize"):
            raise SweepConfigError(f"metric goal must be minimize or maximize, got {metric.get('goal')!r}")
    elif method == "bayes":
        raise SweepConfigError("a bayes sweep needs a metric to optimize (metric: {name, goal})")
    early = config.get("early_terminate")
    if early is not None:
        if not isinstance(early, dict) or early.get("type") != "hyperband":
            raise SweepConfigError(f"early_terminate: only type hyperband is supported, got {early!r:.80}")
        if "min_iter" not in early and "max_iter" not in early:
            raise SweepConfigError("early_terminate (hyperband) needs min_iter or max_iter")
        if metric is None:
            raise SweepConfigError("early_terminate needs the sweep's metric")
    run_cap = config.get("run_cap")
    if run_cap is not None and (isinstance(run_cap, bool) or not isinstance(run_cap, int) or run_cap < 1):
        raise SweepConfigError(f"run_cap must be a positive int, got {run_cap!r}")
    space = Space(method, tuple(_params(config.get("parameters"))), metric, early, run_cap)
    if method == "grid":
        space.grid()  # every parameter must be discrete: fail now, naming it
    return space
