"""A sweep `program` as W&B's quickstart writes one: argparse defaults, then wandb.init with
them as config (the agent passes the trial's values as --name=value arguments).
    python train_program.py --lr=0.1 --epochs=2"""

import argparse

import wandb

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=1.0)
parser.add_argument("--epochs", type=int, default=1)
args = parser.parse_args()
run = wandb.init(config=vars(args))
for epoch in range(run.config.epochs):
    run.log({"epoch": epoch, "val_loss": run.config.lr * (run.config.epochs - epoch)})
run.finish()
