"""Fork trees for tests, built one way: each branch is a run (a root, a fork or a rewind) that
logs `value(i)` for each of its own steps, in order, through the public API."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import runlake


@dataclass(frozen=True)
class Branch:
    id: str | None  # None: the id init() picks (a rewind keeps its run's)
    logs: int | Iterable[int] = 0  # how many steps it logs, or the explicit steps it logs at
    value: Callable[[int], dict[str, Any]] = lambda i: {}  # i: the n-th own log, or the explicit step
    fork_from: str | None = None  # "parent?_step=N"
    resume_from: str | None = None  # "run?_step=N": a rewind
    init: dict[str, Any] = field(default_factory=dict)  # more init() arguments (config, name, ...)


def grow(lake: runlake.Lake, project: str, *branches: Branch) -> list[str]:
    """Create `branches` in order (a parent before its forks); returns their run ids."""
    ids = []
    for b in branches:
        kwargs = dict(b.init)
        if b.id is not None:
            kwargs["id"] = b.id
        if b.fork_from is not None:
            kwargs["fork_from"] = b.fork_from
        if b.resume_from is not None:
            kwargs["resume_from"] = b.resume_from
        run = lake.init(project, **kwargs)
        if isinstance(b.logs, int):
            for i in range(b.logs):
                run.log(b.value(i))
        else:
            for step in b.logs:
                run.log(b.value(step), step=step)
        run.finish()
        ids.append(run.id)
    return ids
