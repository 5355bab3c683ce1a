"""W&B's public API (`wandb.Api()`) over a root: `Api`, `Runs`, `Run`, `Project`."""

from .api import Api, Project
from .history import HistoryScan
from .runs import Run, Runs, Summary

__all__ = ["Api", "HistoryScan", "Project", "Run", "Runs", "Summary"]
