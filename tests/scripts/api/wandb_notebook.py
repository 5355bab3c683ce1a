"""Two runs logged the way W&B's docs notebook logs them, with the real wandb client offline
(the input for the Api tests that read imported W&B runs): python wandb_notebook.py DIR"""

import os
import sys

os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"

import wandb  # noqa: E402

out = sys.argv[1]
for run_id, config in (
    ("nb1", {"batch_size": 32, "optimizer": "rmsprop"}),
    ("nb2", {"batch_size": 16, "optimizer": "adam"}),
):
    run = wandb.init(project="proj", dir=out, id=run_id, name=f"notebook-{run_id}", config=config)
    for step in range(12):
        run.log({"accuracy": step / 12, "loss": 1.0 / (step + 1)})
    run.finish()
