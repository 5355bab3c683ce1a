"""Hugging Face transformers: `RunlakeCallback(project=..., root=...)`, a `TrainerCallback`.

    trainer = Trainer(model, args, train_dataset=..., callbacks=[RunlakeCallback(project="bert")])

(`report_to` cannot name runlake without a change in transformers: pass the callback, and
`report_to="none"` to keep the others out.) On the main process only: `on_train_begin` starts
the run with the `TrainingArguments` and the model's config as its config, `on_log` logs at
`state.global_step` (keys as W&B's integration names them: `train/loss`, `eval/loss`),
`on_train_end` finishes it.

The run follows the checkpoint: the callback's state (its run id) is saved in every
checkpoint's `trainer_state.json`. `trainer.train(resume_from_checkpoint=...)` rewinds the run
to the checkpoint's global step (transformers logs step N before it saves checkpoint-N), so what
the first attempt logged after it is archived, not mixed.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

from . import require

require("transformers", "transformers")

from transformers import TrainerCallback  # noqa: E402
from transformers.trainer_callback import ExportableState  # noqa: E402

from ..lake import Lake  # noqa: E402
from ..store import settings  # noqa: E402
from ..write.run import Run  # noqa: E402

# what transformers reports once at the end of training (wandb's WandbCallback keeps the same list)
SINGLE_VALUE_SCALARS = (
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "train_loss",
    "total_flos",
)


def rewrite_logs(logs: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in logs.items():
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            continue
        for prefix in ("eval_", "test_"):
            if key.startswith(prefix):
                out[f"{prefix[:-1]}/{key[len(prefix) :]}"] = float(value)
                break
        else:
            out[f"train/{key}"] = float(value)
    return out


class RunlakeCallback(TrainerCallback, ExportableState):
    def __init__(
        self,
        project: str = "huggingface",
        root: str | os.PathLike[str] | None = None,
        storage_options: dict[str, Any] | None = None,
        log_model: str | None = None,
        **init_kwargs: Any,
    ) -> None:
        """`log_model`: "checkpoint" logs every saved checkpoint directory as a `model`
        artifact (aliased checkpoint_global_step_<N>), "end" the trained model when training
        ends; None (the default): $RUNLAKE_LOG_MODEL, else $WANDB_LOG_MODEL, else off (W&B's)."""
        self.log_model = log_model if log_model is not None else settings.log_model()
        if self.log_model not in (None, "checkpoint", "end"):
            raise ValueError(f"log_model must be 'checkpoint', 'end' or None, got {self.log_model!r}")
        self.project = project
        self.root = None if root is None else os.fspath(root)
        self.storage_options = storage_options
        self.init_kwargs = init_kwargs
        self.run_id: str | None = init_kwargs.pop("id", None)
        self._run: Run | None = None

    @property
    def run(self) -> Run | None:
        return self._run

    def state(self) -> dict[str, Any]:
        """Saved in each checkpoint's trainer_state.json (stateful_callbacks)."""
        return {
            "args": {"project": self.project, "root": self.root},
            "attributes": {"run_id": self._run.id if self._run is not None else self.run_id},
        }

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or self._run is not None:
            return
        config: dict[str, Any] = {}
        model_config = getattr(model, "config", None)
        if model_config is not None and hasattr(model_config, "to_dict"):
            config.update({k: v for k, v in model_config.to_dict().items() if not k.startswith("_")})
        config.update(args.to_dict())
        lake = Lake(self.root, storage_options=self.storage_options)
        saved = (getattr(state, "stateful_callbacks", None) or {}).get(type(self).__name__)
        saved = saved[0] if isinstance(saved, list) and saved else saved
        resumed_id = (
            ((saved or {}).get("attributes") or {}).get("run_id") if isinstance(saved, dict) else None
        )
        run_id = self.run_id or resumed_id
        if state.global_step > 0 and run_id is not None:
            # resuming from checkpoint-N: the run goes back to step N (logged before the save)
            self._run = lake.init(
                self.project,
                resume_from=f"{run_id}?_step={int(state.global_step)}",
                config=config,
                allow_val_change=True,
                **self.init_kwargs,
            )
        else:
            self._run = lake.init(
                self.project,
                id=run_id,
                resume="allow" if run_id is not None else None,
                config=config,
                allow_val_change=True,
                **self.init_kwargs,
            )
        self.run_id = self._run.id

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if self._run is None or not state.is_world_process_zero or not logs:
            return
        # the end of training reports these once, at a step already logged: W&B's callback puts
        # them in the summary, as here (logged at that step they would be dropped, out of order)
        for key in SINGLE_VALUE_SCALARS:
            if isinstance(logs.get(key), numbers.Real):
                self._run.summary[key] = logs[key]
        rest = {k: v for k, v in logs.items() if k not in SINGLE_VALUE_SCALARS}
        if rest:
            self._run.log(rewrite_logs(rest), step=int(state.global_step))

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._run is not None and state.is_world_process_zero:
            self._run.commit()  # the checkpoint covers its step: the row is whole, and made durable
            self._run.flush()
            directory = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            if self.log_model == "checkpoint" and os.path.isdir(directory):
                self._run.log_model(
                    directory,
                    name=f"checkpoint-{self._run.id}",
                    aliases=[f"checkpoint_global_step_{state.global_step}"],
                )

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._run is not None and state.is_world_process_zero:
            model = kwargs.get("model")
            if self.log_model == "end" and model is not None and hasattr(model, "save_pretrained"):
                import tempfile

                with tempfile.TemporaryDirectory(prefix="runlake-model-") as out:
                    model.save_pretrained(out)
                    self._run.log_model(out, name=f"model-{self._run.id}")
            self._run.finish()
            self._run = None
