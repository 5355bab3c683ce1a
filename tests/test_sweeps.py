"""Sweeps without a server (#26): W&B's configuration syntax, grid / random / bayes (Optuna's
TPE) trials claimed exactly once by agents sharing a root, an agent killed mid-trial, program
agents from the command line, hyperband early termination, and the Api's Sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from servers import wait_for
from shim import env_as_wandb, run_as_wandb

import runlake
from runlake.cli import main
from runlake.sweeps import SweepConfigError, hyperband, parse

HERE = os.path.dirname(__file__)
SCRIPTS = os.path.join(HERE, "scripts", "sweeps")


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"method": "annealing", "parameters": {"x": {"values": [1]}}}, "method must be one of"),
        ({"method": "grid", "parameters": {"x": {"min": 0.0, "max": 1.0}}}, "grid sweep needs values"),
        (
            {"method": "random", "parameters": {"x": {"distribution": "zipf", "min": 1, "max": 2}}},
            "unknown distribution 'zipf'",
        ),
        ({"method": "bayes", "parameters": {"x": {"min": 0.0, "max": 1.0}}}, "needs a metric"),
        (
            {"method": "random", "parameters": {"x": {"values": [1, 2], "probabilities": [0.5]}}},
            "probabilities must match",
        ),
        ({"method": "random", "parameters": {"x": {"min": 2.0, "max": 1.0}}}, "must be below max"),
        ({"method": "random", "parameters": {}}, "non-empty"),
        (
            {
                "method": "random",
                "metric": {"name": "l"},
                "parameters": {"x": {"value": 1}},
                "early_terminate": {"type": "median"},
            },
            "hyperband",
        ),
    ],
)
def test_bad_configurations_name_what_is_wrong(config, error, tmp_path):
    with pytest.raises(SweepConfigError, match=error):
        runlake.sweep(config, project="p", root=str(tmp_path / "r"))


def test_parameter_syntax_and_distributions():
    space = parse(
        {
            "method": "random",
            "parameters": {
                "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
                "lr_exp": {"distribution": "log_uniform", "min": -5, "max": -1},
                "layers": {"min": 1, "max": 4},
                "drop": {"distribution": "q_uniform", "min": 0.0, "max": 0.5, "q": 0.1},
                "noise": {"distribution": "normal", "mu": 0.0, "sigma": 0.1},
                "act": {"values": ["relu", "tanh"], "probabilities": [0.9, 0.1]},
                "epochs": {"value": 3},
                "opt": {"parameters": {"name": {"values": ["adam"]}, "beta": {"min": 0.8, "max": 0.99}}},
            },
        }
    )
    import numpy as np

    rng = np.random.default_rng(0)
    from runlake.sweeps.space import nest

    for _ in range(200):
        p = nest({q.path: q.sample(rng) for q in space.params})
        assert 1e-4 <= p["lr"] <= 1e-1 and np.exp(-5) <= p["lr_exp"] <= np.exp(-1)
        assert isinstance(p["layers"], int) and 1 <= p["layers"] <= 4
        assert abs(p["drop"] * 10 - round(p["drop"] * 10)) < 1e-9
        assert p["act"] in ("relu", "tanh") and p["epochs"] == 3 and p["opt"]["name"] == "adam"
        assert 0.8 <= p["opt"]["beta"] <= 0.99


def test_a_grid_sweep_runs_every_combination_once_and_runs_join_it(tmp_path):
    root = str(tmp_path / "root")
    config = {
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {
            "lr": {"values": [0.1, 0.01]},
            "opt": {"parameters": {"name": {"values": ["adam", "sgd"]}}},
            "epochs": {"value": 2},
        },
    }
    sweep_id = runlake.sweep(config, project="sw", root=root)
    seen = []

    def train():
        run = runlake.init(config={"lr": 1.0, "batch": 8}, root=root)
        assert run.sweep_id == sweep_id and run.project == "sw"
        seen.append((run.config["lr"], run.config["opt"]["name"], run.config["batch"]))
        for epoch in range(run.config["epochs"]):
            run.log(
                {"loss": run.config["lr"] * (2 - epoch) + (0.5 if run.config["opt"]["name"] == "sgd" else 0)}
            )

    assert runlake.agent(sweep_id, function=train, root=root) == 4
    assert runlake.agent(sweep_id, function=train, root=root) == 0  # the grid is done
    assert sorted(seen) == sorted([(lr, o, 8) for lr in (0.1, 0.01) for o in ("adam", "sgd")])
    lake = runlake.Lake(root)
    runs = lake.runs("sw")
    assert runs.height == 4 and set(runs["sweep_id"]) == {sweep_id} and set(runs["state"]) == {"finished"}
    trials = lake.trials(sweep_id)
    assert trials["number"].to_list() == [0, 1, 2, 3] and set(trials["state"]) == {"finished"}
    assert sorted(trials["run_id"]) == sorted(runs["run_id"])
    row = lake.sweeps("sw").row(0, named=True)
    assert (row["trials"], row["finished"], row["method"]) == (4, 4, "grid")
    sweep = runlake.Api(root=root).sweep(f"ent/sw/{sweep_id}")
    assert sweep.state == "FINISHED" and len(sweep.runs) == 4 and sweep.expected_run_count() == 4
    best = sweep.best_run()
    assert best.config["lr"] == 0.01 and best.config["opt"] == {"name": "adam"}
    assert best.sweep.id == sweep_id
    assert [r.id for r in runlake.Api(root=root).runs("sw", filters={"sweep": sweep_id})] == runs[
        "run_id"
    ].to_list()
    from runlake.ui import api as ui_api

    listed = ui_api.sweeps(lake, "sw")
    assert listed[0]["best_run"] == best.id and listed[0]["best_value"] == pytest.approx(0.01)


@pytest.mark.slow  # Optuna
def test_random_and_bayes_sweeps_with_count_and_run_cap(tmp_path):
    root = str(tmp_path / "root")
    rand = runlake.sweep(
        {"method": "random", "run_cap": 3, "parameters": {"x": {"min": -1.0, "max": 1.0}}},
        project="p",
        root=root,
    )
    xs = []

    def f():
        run = runlake.init(root=root)
        xs.append(run.config["x"])
        run.log({"y": run.config["x"] ** 2})

    assert runlake.agent(rand, function=f, count=2, root=root) == 2
    assert runlake.agent(rand, function=f, root=root) == 1  # run_cap 3
    assert len(set(xs)) == 3 and all(-1 <= x <= 1 for x in xs)
    bayes = runlake.sweep(
        {
            "method": "bayes",
            "metric": {"name": "y", "goal": "minimize"},
            "parameters": {"x": {"min": -3.0, "max": 3.0}, "k": {"values": [0, 5]}},
        },
        project="p",
        root=root,
    )
    values = []

    def g():
        run = runlake.init(root=root)
        y = (run.config["x"] - 1) ** 2 + run.config["k"]
        values.append(y)
        run.log({"y": y})

    assert runlake.agent(bayes, function=g, count=10, root=root) == 10
    history = runlake.Lake(root).trials(bayes)
    assert history.height == 10 and set(history["state"]) == {"finished"}
    assert all(-3 <= json.loads(p)["x"] <= 3 for p in history["params"])


def test_a_trial_that_raises_is_failed_and_the_agent_goes_on(tmp_path, capsys):
    root = str(tmp_path / "root")
    sweep_id = runlake.sweep(
        {"method": "grid", "parameters": {"x": {"values": [1, 2, 3]}}}, project="p", root=root
    )

    def f():
        run = runlake.init(root=root)
        run.log({"x": run.config["x"]})
        if run.config["x"] == 2:
            raise RuntimeError("boom")

    assert runlake.agent(sweep_id, function=f, root=root) == 3
    assert runlake.Lake(root).trials(sweep_id)["state"].to_list() == ["finished", "failed", "finished"]
    assert "boom" in capsys.readouterr().err


@pytest.mark.slow
def test_two_agent_processes_share_a_sweep_and_a_killed_agents_trial_reads_crashed(tmp_path):
    root = str(tmp_path / "root")
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    sweep_id = runlake.sweep(
        {"method": "grid", "parameters": {"x": {"values": values}}}, project="p", root=root
    )
    script = os.path.join(SCRIPTS, "agent_proc.py")
    first = subprocess.Popen([sys.executable, script, root, sweep_id, str(tmp_path), "3.0"])
    wait_for(
        lambda: any(n.startswith("started-") for n in os.listdir(tmp_path)) or first.poll() is not None,
        "the blocking trial",
    )
    second = subprocess.Popen([sys.executable, script, root, sweep_id, str(tmp_path), "-1"])  # alongside
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    assert second.wait(timeout=300) == 0
    lake = runlake.Lake(root)
    trials = lake.trials(sweep_id)
    params = [json.loads(p)["x"] for p in trials["params"]]
    assert trials["number"].to_list() == list(range(6)) and sorted(params) == values  # each exactly once
    states = dict(zip(params, trials["state"], strict=True))
    assert states[3.0] == "crashed" and all(s == "finished" for x, s in states.items() if x != 3.0)
    runs = {r["run_id"]: r for r in lake.runs("p").iter_rows(named=True)}
    assert len(runs) == 6
    crashed = trials.filter(trials["state"] == "crashed")["run_id"][0]
    assert runs[crashed]["state"] == "crashed" and lake.history(crashed)["loss"].to_list() == [
        3.0,
        3.0,
        3.0,
    ]  # not lost


@pytest.mark.slow
def test_the_command_line_sweep_and_agent_run_a_program(tmp_path):
    root = str(tmp_path / "root")
    config = tmp_path / "sweep.yaml"
    config.write_text(
        "program: " + os.path.join(SCRIPTS, "train_program.py") + "\n"
        "method: grid\nmetric:\n  name: val_loss\n  goal: minimize\n"
        "parameters:\n  lr:\n    values: [0.5, 0.05]\n  epochs:\n    value: 2\n"
        "command:\n  - ${env}\n  - ${interpreter}\n  - ${program}\n  - ${args}\n"
    )
    runner = CliRunner()
    made = runner.invoke(
        main, ["--root", root, "sweep", str(config), "--project", "cli"], catch_exceptions=False
    )
    assert made.exit_code == 0, made.output
    sweep_id = made.stdout.strip().splitlines()[0]
    proc = subprocess.run(
        [sys.executable, "-m", "runlake.cli", "--root", root, "agent", sweep_id],
        env=env_as_wandb(root),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    lake = runlake.Lake(root)
    runs = lake.runs("cli")
    assert sorted(json.loads(c)["lr"] for c in runs["config"]) == [0.05, 0.5] and set(runs["sweep_id"]) == {
        sweep_id
    }
    assert lake.trials(sweep_id)["state"].to_list() == ["finished", "finished"]
    assert "agent ran 2 trials" in proc.stderr


def test_hyperband_brackets_and_the_stopping_rule():
    assert hyperband.brackets({"min_iter": 2, "eta": 2, "s": 3}) == [2, 4, 8]
    assert hyperband.brackets({"max_iter": 27, "eta": 3, "s": 2}) == [3, 9]
    good = [[1.0, 0.5, 0.4, 0.3], [1.0, 0.6, 0.5, 0.4], [1.0, 0.7, 0.6, 0.5]]
    spec = {"type": "hyperband", "min_iter": 2, "eta": 2, "s": 2}
    assert hyperband.should_stop([5.0, 5.0], good, spec, minimize=True)
    assert not hyperband.should_stop([0.2, 0.1], good, spec, minimize=True)
    assert not hyperband.should_stop([5.0], good, spec, minimize=True)  # below the first bracket
    assert hyperband.should_stop([0.1, 0.1], [[5.0, 9.0]] * 3, spec, minimize=False)


@pytest.mark.slow
def test_hyperband_stops_a_trial_that_falls_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNLAKE_SWEEP_CHECK_INTERVAL", "0.05")
    root = str(tmp_path / "root")
    sweep_id = runlake.sweep(
        {
            "method": "grid",
            "metric": {"name": "loss", "goal": "minimize"},
            "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2, "s": 2},
            "parameters": {"level": {"values": [0.1, 0.2, 9.0]}},
        },
        project="hb",
        root=root,
    )
    logged = {}

    def train():
        run = runlake.init(root=root)
        level = run.config["level"]
        deadline = time.monotonic() + (120 if level == 9.0 else 0)
        n = 0
        while n < 4 or time.monotonic() < deadline:  # the bad trial runs until it is stopped
            run.log({"loss": level})
            n += 1
            time.sleep(0.01)
        logged[level] = n

    runlake.agent(sweep_id, function=train, root=root)
    states = dict(
        zip(
            [json.loads(p)["level"] for p in runlake.Lake(root).trials(sweep_id)["params"]],
            runlake.Lake(root).trials(sweep_id)["state"],
            strict=True,
        )
    )
    assert states == {0.1: "finished", 0.2: "finished", 9.0: "early_terminated"}
    assert 9.0 not in logged  # interrupted inside the function


@pytest.mark.slow
def test_the_docs_sweep_quickstart_runs_unchanged(tmp_path):
    root = str(tmp_path / "root")
    run_as_wandb(os.path.join(SCRIPTS, "docs_quickstart.py"), tmp_path, root=root)
    lake = runlake.Lake(root)
    runs = lake.runs("my-first-sweep")
    assert runs.height == 4 and runs["sweep_id"].n_unique() == 1 and set(runs["state"]) == {"finished"}
    for row in runs.iter_rows(named=True):
        config = json.loads(row["config"])
        assert (
            config["batch_size"] in (16, 32, 64)
            and config["epochs"] in (2, 3, 4)
            and 0.0001 <= config["lr"] <= 0.1
        )
        assert lake.history(row["run_id"])["epoch"].to_list() == [
            float(e) for e in range(1, config["epochs"])
        ]
    best = runlake.Api(root=root).sweep(runs["sweep_id"][0]).best_run()
    assert best.summary["val_acc"] == max(json.loads(s)["val_acc"] for s in runs["summary"])
