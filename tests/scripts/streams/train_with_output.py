"""A training script that prints as real ones do (after the shape of W&B's quickstart and
cleanrl's scripts: a banner, per-epoch lines, a tqdm-style progress bar redrawn with "\r", a
warning on stderr), with `import wandb` meaning runlake. Shrunk to a numpy linear model.

    python train_with_output.py EPOCHS [--quiet-stats] [--no-console] [--done-flag PATH]

System metrics are sampled every 0.2 s (`x_stats_sampling_interval`), not W&B's 15 s, so a
CPU-second run has some; `--done-flag`: keep printing until PATH exists (a live run).
"""

import os
import sys
import time

import numpy as np
import wandb

epochs = int(sys.argv[1])
settings = wandb.Settings(x_stats_sampling_interval=0.2)
if "--quiet-stats" in sys.argv:
    settings = wandb.Settings(x_disable_stats=True)
if "--no-console" in sys.argv:
    settings = wandb.Settings(console="off", x_stats_sampling_interval=0.2)
flag = sys.argv[sys.argv.index("--done-flag") + 1] if "--done-flag" in sys.argv else None

run = wandb.init(project="streams", id=os.environ.get("RUN_ID"), config={"lr": 0.1}, settings=settings)
print(f"training for {epochs} epochs")
rng = np.random.default_rng(0)
x = rng.normal(size=(256, 4))
y = x @ np.array([1.0, -2.0, 0.5, 3.0])
w = np.zeros(4)
for epoch in range(epochs):
    for batch in range(4):
        sys.stdout.write(f"\repoch {epoch}: {25 * (batch + 1)}%")
        sys.stdout.flush()
        grad = x.T @ (x @ w - y) / len(x)
        w -= run.config.lr * grad
    sys.stdout.write("\n")
    loss = float(np.mean((x @ w - y) ** 2))
    run.log({"loss": loss})
    print(f"epoch {epoch} loss {loss:.4f}")
    if epoch == 1:
        print("warning: learning rate may be high", file=sys.stderr)
    time.sleep(0.05)
while flag is not None and not os.path.exists(flag):
    print("still training")
    run.log({"loss": 0.0})
    time.sleep(0.2)
print("done")
run.finish()
