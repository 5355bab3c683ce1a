"""Ray Tune: `RunlakeLoggerCallback(project=..., root=...)`, a `ray.tune.logger.LoggerCallback`.

    tuner = tune.Tuner(train_fn, run_config=tune.RunConfig(callbacks=[RunlakeLoggerCallback(project="pbt")]))

One run per trial (its id is the trial id; name, config and experiment tag come along), every
result logged at its `training_iteration`, the trial's end finishing the run (a failed trial
fails it). When a trial restarts from a checkpoint, the run follows the checkpoint:

- from one of its own checkpoints (after a failure): the run rewinds to that iteration;
- from another trial's (PopulationBasedTraining's exploit: trial B clones trial A's checkpoint
  at iteration n): B's run continues as a fork of A at n, in a new segment of B whose parent is
  A (see README, "Trainers"), so `runlake.history(B)` is A's history up to n then B's own, and
  `runlake.lineage(B)` walks every exploit back to a root.

The checkpoint a trial restores is known from Tune's own bookkeeping: every checkpoint a trial
saves is recorded (`on_checkpoint`) with the trial and its iteration, and a restarting trial's
latest checkpoint (`log_trial_start`, just before Tune restores it) is looked up there.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from typing import Any

from . import require

require("ray.tune", "ray[tune]")

from ray.tune.logger import LoggerCallback  # noqa: E402

from ..lake import Lake  # noqa: E402
from ..write.run import Run  # noqa: E402

# Tune's bookkeeping fields that are not metrics
SKIP = frozenset(
    [
        "config",
        "date",
        "hostname",
        "node_ip",
        "pid",
        "trial_id",
        "experiment_tag",
        "experiment_id",
        "done",
        "should_checkpoint",
        "checkpoint_dir_name",
        "timestamp",
        "training_iteration",
        "trial_log_path",
    ]
)


def _run_id(trial_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", trial_id)[:128]


def _metrics(result: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in result.items():
        if not prefix and key in SKIP:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_metrics(value, name + "/"))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            out[name] = float(value)
        elif isinstance(value, bool):
            out[name] = float(value)
    return out


class RunlakeLoggerCallback(LoggerCallback):
    def __init__(
        self,
        project: str = "ray-tune",
        root: str | os.PathLike[str] | None = None,
        storage_options: dict[str, Any] | None = None,
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        self.project = project
        self._root = None if root is None else os.fspath(root)
        self._storage_options = storage_options
        self._lake_: Lake | None = None  # made in the driver on first use (Tune pickles callbacks)
        self._init_kwargs = init_kwargs
        self._runs: dict[str, Run] = {}  # trial id -> its open run
        self._ids: dict[str, str] = {}  # trial id -> run id
        self._checkpoints: dict[str, tuple[str, int]] = {}  # checkpoint path -> (trial id, iteration)
        self._trials: dict[str, Any] = {}  # trial id -> the Trial (for its last result)
        self._logged: dict[str, int] = {}  # trial id -> the last iteration logged
        self.exploits: list[tuple[str, str, int]] = []  # (trial, cloned trial, iteration), in order

    @property
    def _lake(self) -> Lake:
        if self._lake_ is None:
            self._lake_ = Lake(self._root, storage_options=self._storage_options)
        return self._lake_

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_lake_"] = None
        state["_runs"] = {}
        return state

    # ---- Tune's hooks ----------------------------------------------------------------------
    def log_trial_start(self, trial: Any) -> None:
        trial_id = trial.trial_id
        run_id = self._ids.get(trial_id)
        open_run = self._runs.pop(trial_id, None)
        if open_run is not None:
            open_run.finish()  # paused, and started again: what it logged is kept
        meta = {
            "name": str(trial),
            "config": dict(trial.config),
            "tags": [trial.experiment_tag] if trial.experiment_tag else [],
        }
        if run_id is None:
            run_id = _run_id(trial_id)
            self._ids[trial_id] = run_id
            self._runs[trial_id] = self._lake.init(
                self.project, id=run_id, job_type="trial", resume="allow", **meta, **self._init_kwargs
            )
            return
        checkpoint = getattr(trial, "checkpoint", None)
        source = self._checkpoints.get(getattr(checkpoint, "path", None) or "")
        own_latest = (
            source is not None and source[0] == trial_id and source[1] >= self._logged.get(trial_id, 0)
        )
        if source is None or own_latest:  # nothing to restore, or its own latest: it continues
            run = self._lake.init(
                self.project, id=run_id, resume="allow", allow_val_change=True, **meta, **self._init_kwargs
            )
        else:
            source_trial, iteration = source
            source_run = self._ids[source_trial]
            # Tune may restore a checkpoint before the result it came with reached the loggers
            # (a paused trial's last result): log that result first, so the fork point exists
            self._catch_up(source_trial, iteration)
            if source_trial != trial_id:
                self.exploits.append((trial_id, source_trial, iteration))
            run = self._lake.init(
                self.project,
                id=run_id,
                fork_from=f"{source_run}?_step={iteration}",
                resume="allow",
                config=meta["config"],
                tags=meta["tags"],
                allow_val_change=True,
                **self._init_kwargs,
            )
            self._logged[trial_id] = iteration  # its steps after the restored one come again
        self._runs[trial_id] = run

    def _catch_up(self, trial_id: str, iteration: int) -> None:
        trial = self._trials.get(trial_id)
        result = getattr(trial, "last_result", None) or {}
        if self._logged.get(trial_id, 0) < iteration and result.get("training_iteration") == iteration:
            self.log_trial_result(0, trial, result)
            run = self._runs.get(trial_id)
            if run is not None:
                run.flush()

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        run = self._runs.get(trial.trial_id)
        if run is None:
            return
        self._trials[trial.trial_id] = trial
        step = result.get("training_iteration")
        if isinstance(step, numbers.Integral):
            if int(step) <= self._logged.get(trial.trial_id, 0):
                return  # logged already (caught up when another trial cloned this checkpoint)
            self._logged[trial.trial_id] = int(step)
        metrics = _metrics(result)
        stamp = result.get("timestamp")
        if isinstance(stamp, numbers.Real) and math.isfinite(float(stamp)):
            metrics["_timestamp"] = float(stamp)
        # one result is one whole row: committed now, so a checkpoint right after it can be forked
        run.log(metrics, step=int(step) if isinstance(step, numbers.Integral) else None, commit=True)

    def on_checkpoint(
        self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        self._trials[trial.trial_id] = trial
        run = self._runs.get(trial.trial_id)
        done = (trial.last_result or {}).get("training_iteration")
        if run is not None and isinstance(done, numbers.Integral):
            run.flush()  # the checkpoint's steps are durable: another trial may fork from them
            self._checkpoints[checkpoint.path] = (trial.trial_id, int(done))

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        run = self._runs.pop(trial.trial_id, None)
        if run is not None:
            run.finish(exit_code=1 if failed else 0)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        for run in list(self._runs.values()):
            run.finish()
        self._runs.clear()
        super().on_experiment_end(trials, **info)
