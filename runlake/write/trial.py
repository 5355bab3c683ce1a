"""The sweep trial a new run joins: set by an in-process agent (`wandb.agent(function=...)`), or
given to a program the agent started through $RUNLAKE_SWEEP_TRIAL (JSON). `init()` takes it once:
the run gets the trial's id, its parameters over the given config (as W&B's sweeps do), and
`sweep_id` in its metadata (the `runs` view's `sweep_id` column)."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

ENV = "RUNLAKE_SWEEP_TRIAL"


@dataclass(frozen=True)
class Trial:
    sweep_id: str
    project: str
    number: int
    run_id: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_env(self) -> str:
        return json.dumps(
            {
                "sweep_id": self.sweep_id,
                "project": self.project,
                "number": self.number,
                "run_id": self.run_id,
                "params": self.params,
            }
        )


_lock = threading.Lock()
_current: Trial | None = None
_taken_env = False


def offer(trial: Trial | None) -> None:
    """The trial the next init() in this process joins (None: no trial)."""
    global _current
    with _lock:
        _current = trial


def take() -> Trial | None:
    """The trial to join, once: the in-process agent's, else the one in the environment."""
    global _current, _taken_env
    with _lock:
        if _current is not None:
            trial, _current = _current, None
            return trial
        raw = os.environ.get(ENV)
        if raw and not _taken_env:
            _taken_env = True
            doc = json.loads(raw)
            return Trial(
                doc["sweep_id"],
                doc["project"],
                int(doc["number"]),
                doc["run_id"],
                dict(doc.get("params") or {}),
            )
    return None
