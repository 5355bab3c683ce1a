"""Make W&B offline runs with the real wandb client (for tests/test_importers.py), and write
what was logged to expected.json: python wandb_offline_runs.py DIR"""

import json
import os
import sys

os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"

import numpy as np  # noqa: E402
import wandb  # noqa: E402

out = sys.argv[1]
logged = {}

base = wandb.init(
    project="imp",
    dir=out,
    id="base1",
    name="the base",
    notes="n1",
    tags=["t1", "t2"],
    group="g",
    job_type="train",
    config={"lr": 0.1, "nested": {"a": 1}},
)
rows = {}
for step in range(10):
    row = {"loss": 1.0 / (step + 1), "train": {"acc": step / 10}, "label": f"s{step}"}
    if step == 3:
        row["per_class"] = [0.1, 0.2]
        row["hist"] = wandb.Histogram(np.arange(50.0), num_bins=5)
    base.log(row)
    rows[step] = row
base.summary["best"] = 0.99
base.finish()
logged["base1"] = {"steps": sorted(rows)}

fork = wandb.init(project="imp", dir=out, fork_from="base1?_step=4")
for step in range(5, 8):
    fork.log({"loss": 100.0 + step})
fork_id = fork.id
fork.finish()

rewound = wandb.init(project="imp", dir=out, resume_from="base1?_step=6")
for step in range(7, 9):
    rewound.log({"loss": 200.0 + step})
rewound.finish()

failed = wandb.init(project="imp", dir=out, id="failed1")
failed.log({"x": 1.0})
failed.summary["note"] = "failed on purpose"
failed.finish(exit_code=2)

with open(os.path.join(out, "expected.json"), "w") as fh:
    json.dump({"fork_id": fork_id}, fh)
