"""`runlake.tensorboard.patch()` / `unpatch()`, as `wandb.tensorboard`: SummaryWriters also log
into the current run (see runlake/write/tensorboard_sync.py). `init(sync_tensorboard=True)`
patches for you."""

from __future__ import annotations

from .write.tensorboard_sync import patch, unpatch

__all__ = ["patch", "unpatch"]
