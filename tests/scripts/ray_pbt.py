"""A Ray Tune PBT experiment (4 trials of a function trainable) logging to runlake, for
tests/test_integrations.py: python ray_pbt.py ROOT RESTORE_LOG. The trainable appends every
checkpoint it restores (its own trial, the checkpoint's trial and step) to RESTORE_LOG."""

import json
import os
import sys
import tempfile
import time

import ray
from ray import tune
from ray.tune import Checkpoint
from ray.tune.schedulers import PopulationBasedTraining

from runlake.integrations.ray import RunlakeLoggerCallback

root, log = sys.argv[1], sys.argv[2]
ITERATIONS = 9  # three perturbation intervals: two rounds of exploits


def train_fn(config):
    step, value = 0, 0.0
    ckpt = tune.get_checkpoint()
    ctx = tune.get_context()
    if ckpt:
        with ckpt.as_directory() as d:
            state = json.load(open(os.path.join(d, "state.json")))
        step, value = state["step"], state["value"]
        with open(log, "a") as fh:
            fh.write(
                json.dumps({"trial": ctx.get_trial_id(), "from_trial": state["trial"], "step": step}) + "\n"
            )
    while step < ITERATIONS:
        step += 1
        value += config["lr"]
        with tempfile.TemporaryDirectory() as d:
            json.dump(
                {"step": step, "value": value, "trial": ctx.get_trial_id()},
                open(os.path.join(d, "state.json"), "w"),
            )
            tune.report({"score": value, "lr": config["lr"]}, checkpoint=Checkpoint.from_directory(d))


ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
t = time.time()
pbt = PopulationBasedTraining(
    time_attr="training_iteration",
    perturbation_interval=3,
    metric="score",
    mode="max",
    hyperparam_mutations={"lr": tune.uniform(0.01, 1.0)},
    synch=True,
)
cb = RunlakeLoggerCallback(project="pbt", root=root)
tuner = tune.Tuner(
    train_fn,
    param_space={"lr": tune.grid_search([0.1, 0.2, 0.5, 0.9])},
    tune_config=tune.TuneConfig(scheduler=pbt, reuse_actors=True),
    run_config=tune.RunConfig(
        name="pbt_test", storage_path=os.path.join(root, "..", "ray"), callbacks=[cb], verbose=0
    ),
)
res = tuner.fit()
print(json.dumps({"seconds": time.time() - t, "exploits": cb.exploits}))
ray.shutdown()
