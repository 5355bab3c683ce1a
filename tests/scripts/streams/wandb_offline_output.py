"""A real wandb offline run that prints and is sampled (system metrics every 0.5 s), for the
importer: what `runlake import wandb` must bring along besides the history."""

import sys
import time

import wandb

run = wandb.init(project="imp", mode="offline", settings=wandb.Settings(x_stats_sampling_interval=0.5))
for i in range(5):
    run.log({"loss": 1.0 / (i + 1)})
    print(f"epoch {i}")
    time.sleep(0.3)
print("bad thing", file=sys.stderr)
run.finish()
