"""PyTorch Lightning: `RunlakeLogger(project=..., root=..., name=..., id=..., config=...)`, a
`lightning.pytorch.loggers.Logger` (`pytorch_lightning` too, where only it is installed).

    trainer = Trainer(logger=RunlakeLogger(project="mnist"), max_epochs=10)
    trainer.fit(model)                          # later: trainer.fit(model, ckpt_path="last.ckpt")

The run follows the checkpoint. Every checkpoint holds the run's id and the last step it
covers (a small callback the logger adds to the trainer: a logger alone cannot write into the
checkpoint). Resuming from a checkpoint (`trainer.fit(ckpt_path=...)`) with the same `id=`, or
with no id and the same experiment `name`, continues that run with `resume_from` at the
checkpoint's last logged step: what the first attempt logged after it is archived (readable
with `history(id, segment=0)`), not mixed with the new steps, and no step is lost or logged
twice. A checkpoint loaded into a new experiment (another `name` or `id`) forks instead.

Lightning hands loggers the count of batches that stepped (the first batch is step 0), so a
checkpoint taken at global step N covers logged steps up to N - 1; and it reads
`logger.experiment` during setup, before the checkpoint is restored, so the run is created at
the first hyperparameter or metric call, when the checkpoint is known.
"""

from __future__ import annotations

import argparse
import inspect
import os
from collections.abc import Mapping
from typing import Any

try:  # the unified package first, then the standalone one
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
    from lightning.pytorch.utilities import rank_zero_only
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        from pytorch_lightning.callbacks import Callback  # type: ignore[no-redef,assignment]
        from pytorch_lightning.loggers.logger import Logger, rank_zero_experiment  # type: ignore[no-redef,assignment]
        from pytorch_lightning.utilities import rank_zero_only  # type: ignore[no-redef]
    except ImportError:
        raise ImportError("RunlakeLogger needs PyTorch Lightning: pip install lightning") from None

from ..lake import Lake
from ..store.names import new_run_id
from ..write.run import Run

KEY = "runlake"  # where a checkpoint keeps the run


def flatten_params(params: Any, prefix: str = "") -> dict[str, Any]:
    """Hyperparameters as one flat dict ("/" between levels, as Lightning's loggers flatten)."""
    if isinstance(params, argparse.Namespace):
        params = vars(params)
    out: dict[str, Any] = {}
    for key, value in dict(params).items():
        name = f"{prefix}{key}"
        if isinstance(value, argparse.Namespace):
            value = vars(value)
        if isinstance(value, Mapping) and value:
            out.update(flatten_params(value, name + "/"))
        elif callable(value) and not isinstance(value, type):
            out[name] = getattr(value, "__name__", str(value))
        else:
            out[name] = (
                value
                if isinstance(value, bool | int | float | str | type(None) | list | tuple)
                else str(value)
            )
    return out


class CheckpointRun(Callback):
    """Writes the run into every checkpoint, and tells the logger what a loaded one holds."""

    def __init__(self, logger: RunlakeLogger) -> None:
        self.logger = logger

    @property
    def state_key(self) -> str:
        return f"RunlakeCheckpointRun[{self.logger.name}]"

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        run = self.logger._run
        if run is None:
            return
        run.commit()  # the steps this checkpoint covers are durable before it is
        run.flush()
        checkpoint[KEY] = {
            "run_id": run.id,
            "project": run.project,
            "name": self.logger.name,
            # steps 0..N-1 were logged by the batches that stepped before this checkpoint
            "step": int(trainer.global_step) - 1,
        }

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        info = checkpoint.get(KEY)
        if isinstance(info, dict) and info.get("run_id"):
            self.logger._from_checkpoint = info


class RunlakeLogger(Logger):
    def __init__(
        self,
        project: str = "lightning",
        root: str | os.PathLike[str] | None = None,
        name: str | None = None,
        id: str | None = None,  # noqa: A002 - W&B's and Lightning's name
        config: Mapping[str, Any] | None = None,
        log_model: bool | str = False,
        storage_options: dict[str, Any] | None = None,
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        self._project = project
        self._root = None if root is None else os.fspath(root)
        self._name = name
        self._id = id
        self._config = dict(config or {})
        self._log_model = log_model
        self._storage_options = storage_options
        self._init_kwargs = init_kwargs
        self._run: Run | None = None
        self._from_checkpoint: dict[str, Any] | None = None
        self._checkpoints: Any = None  # the ModelCheckpoint callback that saved last
        self._planned_id = id or new_run_id()
        self.callback = CheckpointRun(self)
        self._lake: Lake | None = None

    # ---- Lightning's Logger interface ------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name or self._project

    @property
    def version(self) -> str:
        return self._run.id if self._run is not None else self._planned_id

    @property
    def save_dir(self) -> str | None:
        return self._root

    @property
    def root_dir(self) -> str | None:
        return self._root

    @property
    @rank_zero_experiment
    def experiment(self) -> Run:
        """The runlake run (made on first use; Lightning touches this during setup, before a
        checkpoint is restored: then the callback is attached, and the run waits)."""
        self._attach_callback()
        if self._run is None and not self._in_setup():
            self._start()
        return self._run if self._run is not None else _Pending(self)  # type: ignore[return-value]

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        run = self._start()
        run.config.update(flatten_params(params), allow_val_change=True)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        run = self._start()
        values = {k: (v.item() if hasattr(v, "item") else v) for k, v in metrics.items()}
        run.log(values, step=step)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._run is not None:
            if self._log_model is True and self._checkpoints is not None:
                self._log_checkpoints(self._checkpoints)  # W&B's log_model=True: at the end
            self._run.finish(exit_code=0 if status in ("success", "finished") else 1)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """log_model=True: the checkpoints are logged as a `model` artifact when training ends;
        "all": each one when it is saved (W&B's WandbLogger rule). Each version records the
        run's step, so `runlake fork RUN --step N` finds the checkpoint a fork at N starts from."""
        if self._log_model and self._run is not None:
            best = getattr(checkpoint_callback, "best_model_path", "") or ""
            last = getattr(checkpoint_callback, "last_model_path", "") or ""
            self._run.summary["checkpoint/best"] = best
            self._run.summary["checkpoint/last"] = last
            self._checkpoints = checkpoint_callback
            if self._log_model == "all":
                self._log_checkpoints(checkpoint_callback)

    def _log_checkpoints(self, callback: Any) -> None:
        assert self._run is not None
        best = getattr(callback, "best_model_path", "") or ""
        last = getattr(callback, "last_model_path", "") or ""
        for path, aliases in ((last or best, ["latest"]), (best, ["best"])):
            if path and os.path.isfile(path):
                self._run.log_model(path, name=f"model-{self._run.id}", aliases=aliases)

    # ---- the run ---------------------------------------------------------------------------
    def _start(self) -> Run:
        if self._run is not None:
            return self._run
        if self._lake is None:
            self._lake = Lake(self._root, storage_options=self._storage_options)
        info = self._from_checkpoint
        kwargs = dict(self._init_kwargs)
        if self._config:
            kwargs["config"] = self._config
        if info is not None:
            same = self._id == info["run_id"] or (self._id is None and self.name == info.get("name"))
            spec = f"{info['run_id']}?_step={max(int(info['step']), 0)}"
            if same and int(info["step"]) >= 0:
                self._run = self._lake.init(self._project, resume_from=spec, **kwargs)
            elif int(info["step"]) >= 0:
                self._run = self._lake.init(
                    self._project, id=self._planned_id, name=self.name, fork_from=spec, **kwargs
                )
        if self._run is None:
            resume = "allow" if self._id is not None else None
            self._run = self._lake.init(
                self._project, id=self._planned_id, name=self.name, resume=resume, **kwargs
            )
        return self._run

    def _attach_callback(self) -> None:
        """Add the checkpoint callback to the trainer that is setting this logger up (found
        on the stack: Lightning gives loggers no reference to their trainer)."""
        trainer = _calling_trainer()
        if trainer is not None and not any(cb is self.callback for cb in trainer.callbacks):
            trainer.callbacks.append(self.callback)

    @staticmethod
    def _in_setup() -> bool:
        frame = inspect.currentframe()
        while frame is not None:
            if frame.f_code.co_name == "_call_setup_hook":
                return True
            frame = frame.f_back
        return False

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_run"] = None
        state["_lake"] = None
        return state


def _calling_trainer() -> Any:
    frame = inspect.currentframe()
    while frame is not None:
        for name in ("trainer", "self"):
            value = frame.f_locals.get(name)
            if value is not None and type(value).__name__ == "Trainer" and hasattr(value, "callbacks"):
                return value
        frame = frame.f_back
    return None


class _Pending:
    """`logger.experiment` during Lightning's setup, before the run exists: using it starts it."""

    def __init__(self, logger: RunlakeLogger) -> None:
        object.__setattr__(self, "_logger", logger)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_logger")._start(), name)
