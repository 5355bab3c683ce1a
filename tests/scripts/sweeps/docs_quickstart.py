"""W&B's sweep quickstart (docs.wandb.ai/guides/sweeps/walkthrough, "Tutorial: define,
initialize, and run a sweep"): a random sweep of batch_size, epochs and lr maximizing val_acc,
`wandb.sweep(sweep=..., project=...)`, a `main()` reading `wandb.config`, and
`wandb.agent(sweep_id, function=main, count=...)`. The same calls; shrunk: fewer epochs and
trials, the made-up train/evaluate functions of the tutorial.
    python docs_quickstart.py"""

import random

import numpy as np
import wandb

wandb.login()

sweep_configuration = {
    "method": "random",
    "name": "sweep",
    "metric": {"goal": "maximize", "name": "val_acc"},
    "parameters": {
        "batch_size": {"values": [16, 32, 64]},
        "epochs": {"values": [2, 3, 4]},
        "lr": {"max": 0.1, "min": 0.0001},
    },
}
sweep_id = wandb.sweep(sweep=sweep_configuration, project="my-first-sweep")


def train_one_epoch(epoch, lr, bs):
    acc = 0.25 + ((epoch / 30) + (random.random() / 10))
    loss = 0.2 + (1 - ((epoch - 1) / 10 + random.random() / 5))
    return acc, loss


def evaluate_one_epoch(epoch):
    acc = 0.1 + ((epoch / 20) + (random.random() / 10))
    loss = 0.25 + (1 - ((epoch - 1) / 10 + random.random() / 6))
    return acc, loss


def main():
    run = wandb.init()  # noqa: F841 - as the docs write it
    lr = wandb.config.lr
    bs = wandb.config.batch_size
    epochs = wandb.config.epochs
    for epoch in np.arange(1, epochs):
        train_acc, train_loss = train_one_epoch(epoch, lr, bs)
        val_acc, val_loss = evaluate_one_epoch(epoch)
        wandb.log(
            {
                "epoch": epoch,
                "train_acc": train_acc,
                "train_loss": train_loss,
                "val_acc": val_acc,
                "val_loss": val_loss,
            }
        )


wandb.agent(sweep_id, function=main, count=4)
