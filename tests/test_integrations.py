"""Trainer integrations (#11), trained for real, tiny and on CPU: Ray Tune PBT, PyTorch
Lightning, Hugging Face transformers. Each test runs its training in a subprocess (a fresh
interpreter, as a user's script)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

import runlake

pytestmark = pytest.mark.slow
HERE = os.path.dirname(__file__)


def _script(name, *args, timeout=900):
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "scripts", name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    return out.stdout


def test_ray_pbt_exploits_are_forks_at_the_restored_checkpoint(tmp_path):
    pytest.importorskip("ray.tune")
    root, restores = tmp_path / "root", tmp_path / "restores.jsonl"
    printed = _script(
        "ray_pbt.py", root, restores, timeout=1800
    )  # Ray spawns many processes: slow on busy cores
    reported = json.loads(printed.strip().splitlines()[-1])
    restored = [json.loads(line) for line in restores.read_text().splitlines()]
    exploits = [(r["trial"], r["from_trial"], r["step"]) for r in restored if r["trial"] != r["from_trial"]]
    assert exploits and [tuple(e) for e in reported["exploits"]] == exploits
    # Ray's own record of the exploits (pbt_global.txt names trials by experiment tag)
    (global_log,) = glob.glob(str(tmp_path / "ray" / "*" / "pbt_global.txt"))
    with open(global_log) as fh:
        recorded = [json.loads(line) for line in fh if line.strip()]
    by_index = {t.rsplit("_", 1)[1].lstrip("0") or "0": t for t, _, _ in exploits} | {
        f.rsplit("_", 1)[1].lstrip("0") or "0": f for _, f, _ in exploits
    }
    assert [(by_index[a.split("_")[0]], by_index[b.split("_")[0]]) for a, b, *_ in recorded] == [
        (t, f) for t, f, _ in exploits
    ]
    segments = runlake.sql("SELECT * FROM segments ORDER BY run_id, segment", root=str(root))
    forks = [
        (r["run_id"], r["parent_run_id"], r["cutoff"])
        for r in segments.iter_rows(named=True)
        if r["kind"] == "fork" and r["segment"] > 0
    ]
    assert sorted(forks) == sorted(exploits)  # every exploit, at the step of the checkpoint restored
    runs = runlake.runs(root=str(root))
    assert runs.height == 4 and set(runs["state"]) == {"finished"}
    for run_id in runs["run_id"]:
        history = runlake.history(run_id, ["score"], root=str(root))
        assert history["_step"].to_list() == list(range(1, 10))  # one row per iteration, none twice
    last = {trial: (source, step) for trial, source, step in exploits}  # a trial's latest exploit
    for trial, (source, step) in last.items():
        chain = runlake.lineage(trial, root=str(root))
        if chain["kind"][0] == "fork":  # not restored from its own checkpoint since
            assert (chain["run_id"][1], chain["cutoff"][0]) == (source, step)
            depths = runlake.sql(
                "SELECT step, source_depth FROM history WHERE run_id = ? AND key = 'score' ORDER BY step",
                root=str(root),
                params=[trial],
            )
            # steps up to the exploit come from the cloned trial's lineage, the rest are its own
            assert all(d > 0 for s, d in depths.rows() if s <= step)
            assert all(d == 0 for s, d in depths.rows() if s > step)


def _run_of(root):
    runs = runlake.runs(root=str(root))
    assert runs.height == 1
    return runs.row(0, named=True)


def test_lightning_resume_from_a_checkpoint_rewinds_the_run(tmp_path):
    pytest.importorskip("lightning")
    root, ckpt = tmp_path / "root", tmp_path / "ckpt"
    first = _script("lightning_train.py", root, ckpt, "--stop-at", 17).strip().splitlines()[-1]
    assert sorted(p.name for p in ckpt.iterdir()) == ["step=10.ckpt", "step=15.ckpt", "step=5.ckpt"]
    run = _run_of(root)
    assert (
        run["run_id"] == first
        and run["state"] == "failed"
        and json.loads(run["config"]) == {"hidden": 8, "lr": 0.05}
    )
    before = runlake.history(first, root=str(root))
    assert before["_step"].to_list() == list(range(16))  # batches 0..15 logged before the interruption
    # resumed with no id and the same experiment name: the checkpoint names the run
    second = (
        _script("lightning_train.py", root, ckpt, "--resume", ckpt / "step=15.ckpt").strip().splitlines()[-1]
    )
    assert second == first
    run = _run_of(root)
    assert run["state"] == "finished" and run["segment"] == 1
    history = runlake.history(first, root=str(root))
    assert history["_step"].to_list() == list(range(32))  # 4 epochs of 8 batches: one row per step
    assert history["train_loss"].null_count() == 0 and history["val_loss"].drop_nulls().len() == 4
    chain = runlake.lineage(first, root=str(root))
    assert (
        chain["kind"].to_list() == ["rewind", "root"] and chain["cutoff"][0] == 14
    )  # global step 15 covers 0..14
    archived = runlake.history(first, segment=0, root=str(root))
    assert archived["_step"].to_list() == list(range(16))  # the first attempt's step 15 is archived
    assert (
        history.filter(history["_step"] <= 14)["train_loss"].to_list()
        == before.filter(before["_step"] <= 14)["train_loss"].to_list()
    )
    # a checkpoint loaded into a new experiment forks
    _script("lightning_train.py", root, ckpt, "--resume", ckpt / "step=10.ckpt", "--name", "other")
    other = (
        runlake.runs(root=str(root))
        .filter(runlake.runs(root=str(root))["name"] == "other")
        .row(0, named=True)
    )
    assert (other["parent_run_id"], other["fork_step"]) == (first, 9)
    assert runlake.history(other["run_id"], root=str(root))["_step"].to_list() == list(range(32))


def test_transformers_trainer_resume_rewinds_the_run(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    root, out = tmp_path / "root", tmp_path / "out"
    first = _script("hf_train.py", root, out, "--stop-at", 13).strip().splitlines()[-1]
    run = _run_of(root)
    config = json.loads(run["config"])
    assert config["hidden_size"] == 16 and config["num_hidden_layers"] == 2 and config["logging_steps"] == 1
    assert runlake.history(first, root=str(root))["_step"].to_list() == list(range(1, 13))
    second = _script("hf_train.py", root, out, "--resume", out / "checkpoint-10").strip().splitlines()[-1]
    assert second == first
    history = runlake.history(first, root=str(root))
    assert history["_step"].to_list() == list(range(1, 25))  # 3 epochs of 8 steps, each once
    assert history["train/loss"].drop_nulls().len() == 24
    assert history.filter(history["eval/loss"].is_not_null())["_step"].to_list() == [6, 12, 18, 24]
    chain = runlake.lineage(first, root=str(root))
    assert chain["kind"].to_list() == ["rewind", "root"] and chain["cutoff"][0] == 10
    assert runlake.history(first, segment=0, root=str(root))["_step"].to_list() == list(range(1, 13))
    assert _run_of(root)["state"] == "finished"
    # the end-of-training report (#23.17) is in the summary, as W&B's callback puts it
    summary = json.loads(_run_of(root)["summary"])
    assert summary["train_runtime"] > 0 and summary["train_loss"] > 0 and "total_flos" in summary


def test_lightning_log_model_logs_each_checkpoint_as_an_artifact_a_fork_can_find(tmp_path):
    pytest.importorskip("lightning")
    root, ckpt = tmp_path / "root", tmp_path / "ckpt"
    run_id = _script("lightning_train.py", root, ckpt, "--log-model", "all").strip().splitlines()[-1]
    lake = runlake.Lake(str(root))
    versions = lake.sql(
        "SELECT version, step, type FROM artifacts WHERE name = ? ORDER BY version", [f"model-{run_id}"]
    )
    assert versions.height == 6 and set(versions["type"]) == {"model"}  # a checkpoint every 5 steps of 32
    steps = versions["step"].to_list()
    assert steps == sorted(steps) and len(set(steps)) == 6
    found = lake.checkpoint(run_id, steps[2] + 1, f"model-{run_id}")
    assert found["version"][0] == 2 and found["step"][0] == steps[2]
    art = lake.artifact(f"lit/model-{run_id}:latest")
    assert art.version == "v5" and art.files()[0].path.endswith(".ckpt")


def test_transformers_log_model_logs_each_saved_checkpoint(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    root, out = tmp_path / "root", tmp_path / "out"
    run_id = _script("hf_train.py", root, out, "--log-model", "checkpoint").strip().splitlines()[-1]
    lake = runlake.Lake(str(root))
    versions = lake.sql(
        "SELECT version, step FROM artifacts WHERE name = ? ORDER BY version", [f"checkpoint-{run_id}"]
    )
    saved = sorted(int(p.name.split("-")[1]) for p in out.iterdir() if p.name.startswith("checkpoint-"))
    assert versions.height == len(saved) >= 4  # one version per saved checkpoint directory
    art = lake.artifact(f"hf/checkpoint-{run_id}:checkpoint_global_step_{saved[1]}")
    assert art.version == "v1" and any(e.path.endswith("config.json") for e in art.files())
    found = lake.checkpoint(run_id, saved[1], f"checkpoint-{run_id}")
    assert found["version"][0] == 1
