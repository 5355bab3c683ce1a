"""One rank of a distributed job logging into one run, after W&B's guide to distributed
training in shared mode (`wandb.init(id=..., settings=wandb.Settings(mode="shared",
x_label=f"rank_{rank}", x_primary=rank == 0))`), with `import wandb` meaning runlake; the
"model" is a numpy average so it runs on CPU in a second.

    python ddp_rank.py RUN_ID RANK STEPS
"""

import sys

import numpy as np
import wandb

run_id, rank, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
settings = wandb.Settings(
    mode="shared", x_label=f"rank_{rank}", x_primary=rank == 0, x_stats_sampling_interval=0.2
)
run = wandb.init(project="ddp", id=run_id, settings=settings)
rng = np.random.default_rng(rank)
for step in range(steps):
    loss = float(np.mean(rng.normal(size=64) ** 2)) / (step + 1)
    run.log({f"rank_{rank}/loss": loss, f"rank_{rank}/step_seen": step}, step=step)
    print(f"rank {rank} step {step} loss {loss:.3f}")
run.finish()
