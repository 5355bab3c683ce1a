"""Logging from the trainers people use, with rewind and fork wired to their checkpoints.

Each module imports its framework only when used, so `import runlake.integrations.ray` works
without Lightning or transformers installed (and fails with a clear message without Ray):

- `runlake.integrations.lightning.RunlakeLogger`: a Lightning `Logger`; resuming from a
  checkpoint rewinds the run to the checkpoint's last logged step.
- `runlake.integrations.transformers.RunlakeCallback`: a `transformers.TrainerCallback`; the
  same with `trainer.train(resume_from_checkpoint=...)`.
- `runlake.integrations.ray.RunlakeLoggerCallback`: a Ray Tune `LoggerCallback`; one run per
  trial, and a PBT exploit is recorded as what it is: the trial's run continues as a fork of
  the trial it cloned, at the checkpoint it restored.
"""

from __future__ import annotations


def require(module: str, extra: str) -> None:
    """ImportError naming what to install, when `module` is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ImportError(f"this integration needs {module}: pip install '{extra}'")
