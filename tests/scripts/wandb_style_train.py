"""A W&B-style training script, exactly as a W&B user writes one, with only the import changed.

Run by tests/test_wandb_dropin.py: `python wandb_style_train.py --epochs 4 --lr 0.05`.
"""

import argparse
import sys

import numpy as np

import runlake as wandb

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--fail", action="store_true")
args = parser.parse_args()

wandb.login()
run = wandb.init(
    project="mnist-ish",
    entity="my-team",
    group="sweep-7",
    job_type="train",
    tags=["baseline", "cpu"],
    notes="a tiny model",
    config=args,
    settings=wandb.Settings(start_method="thread"),
)
wandb.config.update({"optimizer": "sgd", "classes": 3})
wandb.config.update({"lr": args.lr * 2}, allow_val_change=True)
wandb.define_metric("epoch")
wandb.define_metric("val/*", step_metric="epoch")
wandb.define_metric("val/loss", summary="min")
wandb.define_metric("train/acc", summary="max")

rng = np.random.default_rng(0)
weights = rng.normal(size=50)
for epoch in range(wandb.config.epochs):
    for batch in range(5):
        loss = 1.0 / (1 + epoch * 5 + batch)
        wandb.log({"train/loss": loss, "train/acc": 1 - loss, "lr": wandb.config.lr})
    per_class = [0.5 + 0.1 * epoch, 0.4 + 0.1 * epoch, 0.3 + 0.1 * epoch]
    wandb.log(
        {
            "epoch": epoch,
            "val/loss": 2.0 / (epoch + 1),
            "val/per_class_acc": per_class,
            "weights": wandb.Histogram(weights + epoch),
            "grads": weights * 0.1,
        }
    )
pixels = np.linspace(0, 1, 8 * 8 * 3).reshape(8, 8, 3)
wandb.log({"examples": wandb.Image(pixels, caption="first batch")})
table = wandb.Table(columns=["id", "label", "score"], data=[[0, "cat", 0.9], [1, "dog", 0.4]])
wandb.log({"predictions": table})
wandb.summary["best_epoch"] = wandb.config.epochs - 1
wandb.summary["final"] = {"acc": 0.93, "loss": 0.07}
run.tags = run.tags + ("done",)
print(run.id)
sys.stdout.flush()
wandb.finish(exit_code=3 if args.fail else 0)
