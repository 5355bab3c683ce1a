"""runlake: a local-first, columnar run-history store with zero-copy fork and rewind."""

from __future__ import annotations

from typing import Any

from . import _registry
from ._compact import compact
from ._doctor import doctor
from ._explore import compare, descendants, tree
from ._init import init
from ._plot import Plot, plot
from ._run import Run
from ._spill import sync
from .errors import CorruptPartError, ForkPointError, RunlakeError, RunNotFoundError, StepOrderWarning
from .lake import connect, history, lineage, runs, sql

__version__ = "0.1.0"

run: Run | None = None  # the most recently started run that is still open (as wandb.run)


def _current() -> Run:
    current = _registry.current()
    if current is None:
        raise RunlakeError("no run is active: call runlake.init() first")
    return current


def log(data: Any, step: int | None = None, commit: bool | None = None) -> None:
    """`run.log()` on the current run."""
    _current().log(data, step=step, commit=commit)


def finish(exit_code: int = 0) -> None:
    """`run.finish()` on the current run (no-op if none is active)."""
    current = _registry.current()
    if current is not None:
        current.finish(exit_code=exit_code)


__all__ = [
    "CorruptPartError",
    "ForkPointError",
    "Plot",
    "Run",
    "RunNotFoundError",
    "RunlakeError",
    "StepOrderWarning",
    "compact",
    "compare",
    "connect",
    "descendants",
    "doctor",
    "finish",
    "history",
    "init",
    "lineage",
    "log",
    "plot",
    "run",
    "runs",
    "sql",
    "sync",
    "tree",
]
