"""Sweeps without a server: `runlake.sweep(config)` stores a sweep in the root and
`runlake.agent(sweep_id, function=..., count=...)` runs its trials (see agent.py)."""

from .agent import agent, sweep
from .space import SweepConfigError, parse

__all__ = ["SweepConfigError", "agent", "parse", "sweep"]
