"""W&B docs, public API guide (https://docs.wandb.ai/guides/track/public-api-guide): "Read
metrics from a run", "Read specific metrics from a run", "Compare two runs", "Update metrics
for a run, after the run has finished", "Rename a metric in a run", "Update config for an
existing run", "Export metrics from a single run" with scan_history. Each section's calls as
the docs write them; the run paths come from the command line.
    python read_and_compare.py ENTITY/PROJECT/RUN1 ENTITY/PROJECT/RUN2   (prints, writes JSON)"""

import json
import sys

import numpy as np
import pandas as pd
import wandb

path1, path2 = sys.argv[1], sys.argv[2]
out = {}

api = wandb.Api()

# Read metrics from a run
run = api.run(path1)
if run.state == "finished":
    rows = []
    for i, row in run.history().iterrows():  # noqa: B007 - the docs write it so
        print(row["_timestamp"], row["accuracy"])
        rows.append(row["accuracy"])
    out["history_accuracy"] = [None if pd.isna(v) else float(v) for v in rows]

# Read specific metrics from a run
run = api.run(path1)
if run.state == "finished":
    out["keyed_accuracy"] = []
    for i, row in run.history(keys=["accuracy"]).iterrows():  # noqa: B007
        print(row["_timestamp"], row["accuracy"])
        out["keyed_accuracy"].append(float(row["accuracy"]))

# Compare two runs
run1 = api.run(path1)
run2 = api.run(path2)
df = pd.DataFrame([run1.config, run2.config]).transpose()
df.columns = [run1.name, run2.name]
print(df[df[run1.name] != df[run2.name]])
out["config_differs"] = sorted(df[df[run1.name] != df[run2.name]].index)

# Export metrics from a single run, unsampled
run = api.run(path2)
history = run.scan_history()
losses = [row["loss"] for row in history if "loss" in row]
out["scanned_losses"] = len(losses)

# Update metrics for a run, after the run has finished
numpy_array = np.arange(10.0)
run = api.run(path2)
run.summary["accuracy"] = 0.9
run.summary["accuracy_histogram"] = wandb.Histogram(numpy_array)
run.summary.update()

# Rename a metric in a run, after the run has finished
run = api.run(path2)
run.summary["new_name"] = run.summary["loss"]
del run.summary["loss"]
run.summary.update()

# Update config for an existing run
run = api.run(path2)
run.config["key"] = 10
run.update()

with open("read_and_compare.json", "w") as fh:
    json.dump(out, fh)
