"""W&B docs, "Export metrics from all runs in a project to a CSV file"
(https://docs.wandb.ai/guides/track/public-api-guide, section "Export data"): the snippet's
calls as written there, with `<entity>`/`<project>` taken from the command line.
    python export_runs_csv.py ENTITY PROJECT   (writes project.csv)"""

import sys

import pandas as pd
import wandb

api = wandb.Api()
entity, project = sys.argv[1], sys.argv[2]
runs = api.runs(entity + "/" + project)

summary_list, config_list, name_list = [], [], []
for run in runs:
    # .summary contains output keys/values for metrics such as accuracy; ._json_dict omits large files
    summary_list.append(run.summary._json_dict)
    # .config contains the hyperparameters; remove special values that start with _
    config_list.append({k: v for k, v in run.config.items() if not k.startswith("_")})
    # .name is the human-readable name of the run
    name_list.append(run.name)

runs_df = pd.DataFrame({"summary": summary_list, "config": config_list, "name": name_list})
runs_df.to_csv("project.csv")
