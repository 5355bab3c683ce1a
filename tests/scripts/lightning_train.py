"""Tiny Lightning training logging to runlake (tests/test_integrations.py):
python lightning_train.py ROOT CKPT_DIR [--stop-at N] [--resume CKPT] [--name NAME]"""

import argparse
import sys

import lightning.pytorch as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from runlake.integrations.lightning import RunlakeLogger

parser = argparse.ArgumentParser()
parser.add_argument("root")
parser.add_argument("ckpt_dir")
parser.add_argument("--stop-at", type=int, default=None)
parser.add_argument("--resume", default=None)
parser.add_argument("--name", default="tiny")
parser.add_argument("--id", default=None)
parser.add_argument("--log-model", default=False, help="RunlakeLogger's log_model: 'all' or 'true'")
args = parser.parse_args()


class Tiny(L.LightningModule):
    def __init__(self, hidden=8, lr=0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def training_step(self, batch, _):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class StopAt(L.Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_end(self, trainer, *_):
        if self.step is not None and trainer.global_step >= self.step:
            raise RuntimeError(f"interrupted at global step {trainer.global_step}")


torch.manual_seed(0)
data = TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
train, val = DataLoader(data, batch_size=8), DataLoader(data, batch_size=32)
log_model = {"all": "all", "true": True}.get(str(args.log_model).lower(), False)
logger = RunlakeLogger(project="lit", root=args.root, name=args.name, id=args.id, log_model=log_model)
checkpoints = L.callbacks.ModelCheckpoint(
    dirpath=args.ckpt_dir, every_n_train_steps=5, save_top_k=-1, filename="{step}"
)
trainer = L.Trainer(
    max_epochs=4,
    logger=logger,
    callbacks=[checkpoints, StopAt(args.stop_at)],
    log_every_n_steps=1,
    enable_progress_bar=False,
    enable_model_summary=False,
    accelerator="cpu",
)
try:
    trainer.fit(Tiny(), train, val, ckpt_path=args.resume)
except RuntimeError as exc:
    print(f"stopped: {exc}", file=sys.stderr)
print(logger.version)
