"""Shaped after a public research repo's plotting script (a reinforcement-learning paper's
"mean +- std over seeds" figure, found on GitHub by searching for `run.history(keys=[` with
`fill_between`): it lists a project's runs, picks them by display name and `config["seed"]`,
reads `run.history(keys=[metric, "_step"], pandas=True)`, drops NaNs, interpolates the seeds
onto one step grid, smooths with an EMA and draws mean +- std bands; then reads each run's
final score and `run.summary.get("_wandb", {}).get("runtime")`. The same calls, in the same
order, on our own runs.
    python seed_bands_plot.py ENTITY PROJECT   (writes Plots/<env>.png and bands.json)"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import wandb  # noqa: E402


def exponential_moving_average(data, alpha=0.05):
    if len(data) == 0:
        return data
    ema = np.zeros_like(data)
    ema[0] = data[0]
    for i in range(1, len(data)):
        ema[i] = alpha * data[i] + (1 - alpha) * ema[i - 1]
    return ema


def runs_named(api, entity, project, name, metric, valid_seeds):
    found = []
    for run in api.runs(f"{entity}/{project}"):
        if run.name != name:
            continue
        seed = run.config.get("seed", None)
        if seed not in valid_seeds:
            continue
        history = run.history(keys=[metric, "_step"], pandas=True)
        if metric in history.columns:
            history = history.dropna(subset=[metric])
            if len(history) > 0:
                found.append(history[[metric, "_step"]])
    return found


def mean_std(all_seeds, metric):
    steps = sorted({s for df in all_seeds for s in df["_step"].values})
    curves = []
    for df in all_seeds:
        df = df.sort_values("_step")
        curves.append(np.interp(steps, df["_step"].values, df[metric].values))
    stacked = np.array(curves)
    std = np.std(stacked, axis=0, ddof=1) if len(stacked) > 1 else np.zeros(len(steps))
    return np.array(steps), stacked.mean(axis=0), std


entity, project = sys.argv[1], sys.argv[2]
metric = "EvalReward"
valid_seeds = {0, 42, 1234}
api = wandb.Api()
out = {}
os.makedirs("Plots", exist_ok=True)
for env in ["Hopper-v5", "Ant-v5"]:
    fig, ax = plt.subplots(figsize=(6, 4))
    for algo in ["iql", "rlpd"]:
        name = f"{algo}_{env}"
        seeds = runs_named(api, entity, project, name, metric, valid_seeds)
        if not seeds:
            print(f"    {name}: no data found")
            continue
        steps, mean, std = mean_std(seeds, metric)
        mean_ema, std_ema = exponential_moving_average(mean), exponential_moving_average(std)
        ax.plot(steps, mean_ema, label=algo)
        ax.fill_between(steps, mean_ema - std_ema, mean_ema + std_ema, alpha=0.2)
        out[name] = {"seeds": len(seeds), "points": int(len(steps)), "final_mean": float(mean[-1])}
    ax.legend()
    plt.savefig(f"Plots/{env}.png", dpi=60)
    plt.close(fig)

final = {}
for run in api.runs(f"{entity}/{project}"):
    history = run.history(keys=[metric], pandas=True)
    if metric in history.columns and len(history.dropna(subset=[metric])):
        final[run.id] = float(history.dropna(subset=[metric])[metric].iloc[-1])
        runtime = run.summary.get("_wandb", {}).get("runtime", None)
        if runtime is not None:
            final[run.id + ":runtime_h"] = runtime / 3600.0
out["final"] = final
with open("bands.json", "w") as fh:
    json.dump(out, fh)
