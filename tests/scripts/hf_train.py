"""A tiny transformers Trainer run (a 2-layer BERT, hidden size 16, random token ids, no
download) logging to runlake: python hf_train.py ROOT OUT_DIR [--stop-at N] [--resume CKPT]"""

import argparse
import sys

import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from runlake.integrations.transformers import RunlakeCallback

parser = argparse.ArgumentParser()
parser.add_argument("root")
parser.add_argument("out")
parser.add_argument("--stop-at", type=int, default=None)
parser.add_argument("--resume", default=None)
parser.add_argument("--log-model", default=None, help="RunlakeCallback's log_model: checkpoint or end")
args = parser.parse_args()

torch.manual_seed(0)
config = BertConfig(
    vocab_size=50,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=32,
)
model = BertForSequenceClassification(config)


class Data(torch.utils.data.Dataset):
    def __init__(self, n):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randint(0, 50, (n, 12), generator=g)
        self.y = torch.randint(0, 2, (n,), generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.y[i]}


class StopAt(TrainerCallback):
    def on_step_end(self, a, state, control, **kw):
        if args.stop_at is not None and state.global_step >= args.stop_at:
            raise RuntimeError(f"interrupted at global step {state.global_step}")


training = TrainingArguments(
    output_dir=args.out,
    per_device_train_batch_size=8,
    num_train_epochs=3,
    logging_steps=1,
    save_steps=5,
    eval_strategy="steps",
    eval_steps=6,
    report_to="none",
    use_cpu=True,
    disable_tqdm=True,
    seed=0,
)
callback = RunlakeCallback(project="hf", root=args.root, log_model=args.log_model)
trainer = Trainer(
    model=model, args=training, train_dataset=Data(64), eval_dataset=Data(16), callbacks=[callback, StopAt()]
)
try:
    trainer.train(resume_from_checkpoint=args.resume)
except RuntimeError as exc:
    print(f"stopped: {exc}", file=sys.stderr)
print(callback.run_id)
