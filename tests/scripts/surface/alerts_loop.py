"""After W&B's docs, "Send an alert" (docs.wandb.ai/guides/runs/alert): a training loop that
calls `wandb.alert(title=..., text=..., level=wandb.AlertLevel.WARN, wait_duration=...)` when
accuracy falls below a threshold. Shrunk: 20 steps of a made-up accuracy that dips twice; the
second dip is within wait_duration (dropped).
    python alerts_loop.py"""

from datetime import timedelta

import wandb

run = wandb.init(project="alerts-demo", config={"threshold": 0.5})
for step in range(20):
    acc = 0.9 if step not in (5, 8) else 0.3
    wandb.log({"acc": acc})
    if acc < wandb.config.threshold:
        wandb.alert(
            title="Low accuracy",
            text=f"Accuracy {acc} is below the acceptable threshold {wandb.config.threshold}",
            level=wandb.AlertLevel.WARN,
            wait_duration=timedelta(minutes=5),
        )
run.finish()
