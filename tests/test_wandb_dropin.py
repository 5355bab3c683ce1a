"""`import runlake as wandb` (#10): init's keywords, run attributes, module-level objects,
config and summary semantics, define_metric, W&B's values and media, resume modes, exit codes."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import polars as pl
import pytest

import runlake
from runlake.errors import InvalidSpecError

HERE = os.path.dirname(__file__)
# wandb.init's keywords in wandb 0.31 (inspect.signature(wandb.init)), every one taken
WANDB_INIT = (
    "entity project dir id name notes tags config config_exclude_keys config_include_keys allow_val_change "
    "group job_type mode force reinit resume resume_from fork_from save_code tensorboard sync_tensorboard "
    "monitor_gym settings anonymous"
).split()


def _run(root, **kw):
    return runlake.init("p", root=root, **kw)


def _state(root, run_id, project="p"):
    with open(os.path.join(root, "runs", project, run_id, "meta", "state.json")) as fh:
        return json.load(fh)


def test_init_takes_every_wandb_init_keyword(tmp_path):
    params = inspect.signature(runlake.init).parameters
    assert set(WANDB_INIT) <= set(params)
    root = str(tmp_path / "root")
    run = runlake.init(
        project="p",
        root=root,
        entity="team",
        dir=str(tmp_path / "local"),
        id="all-args",
        name="every keyword",
        notes="n",
        tags=["a"],
        config={"a": 1, "b": 2},
        config_exclude_keys=["b"],
        allow_val_change=False,
        group="g",
        job_type="train",
        mode="offline",
        force=True,
        reinit="create_new",
        resume=None,
        save_code=True,
        tensorboard=False,
        sync_tensorboard=False,
        monitor_gym=False,
        settings={"start_method": "thread"},
        anonymous="never",
    )
    run.log({"x": 1.0})
    run.finish()
    row = runlake.runs(root=root).row(0, named=True)
    assert (row["name"], row["group"], row["job_type"], row["entity"], row["tags"]) == (
        "every keyword",
        "g",
        "train",
        "team",
        ["a"],
    )
    assert json.loads(row["config"]) == {"a": 1}
    meta = json.loads(row["metadata"])
    assert meta["save_code"] is True and meta["settings"] == {"start_method": "thread"}
    assert meta["anonymous"] == "never"


def test_run_attributes_are_mutable_persisted_and_filterable(tmp_path):
    root = str(tmp_path / "root")
    a = _run(root, id="a", group="g1", job_type="train", tags=["x"], notes="first")
    b = _run(root, id="b", group="g2", tags=["x", "y"])
    a.name, a.notes, a.group, a.job_type = "renamed", "second", "g2", "eval"
    a.tags = (*a.tags, "y")
    assert a.tags == ("x", "y") and a.group == "g2"
    a.log({"m": 1.0})
    a.finish()
    b.finish()
    runs = runlake.runs(root=root).sort("run_id")
    assert runs.select("run_id", "name", "notes", "group", "job_type", "tags").rows() == [
        ("a", "renamed", "second", "g2", "eval", ["x", "y"]),
        ("b", "b", None, "g2", None, ["x", "y"]),
    ]
    hits = runlake.sql(
        "SELECT run_id FROM runs WHERE \"group\" = 'g2' AND list_contains(tags, 'y') ORDER BY 1", root=root
    )
    assert hits["run_id"].to_list() == ["a", "b"]
    # resuming keeps them; init's new values win
    c = runlake.init("p", root=root, id="a", resume="must", notes="third")
    assert (c.name, c.notes, c.group, c.tags, c.resumed) == ("renamed", "third", "g2", ("x", "y"), True)
    c.finish()
    cli = [sys.executable, "-m", "runlake.cli", "--root", root, "runs"]
    out = subprocess.run(
        [*cli, "--group", "g2", "--tag", "y", "--json"], capture_output=True, text=True, check=True
    )
    assert sorted(r["run_id"] for r in json.loads(out.stdout)) == ["a", "b"]
    out = subprocess.run([*cli, "--tag", "nope"], capture_output=True, text=True)
    assert "no runs tagged 'nope'" in out.stderr


def test_module_level_objects_follow_the_current_run(tmp_path):
    root = str(tmp_path / "root")
    with pytest.raises(runlake.RunlakeError, match="call runlake.init"):
        runlake.config.lr  # noqa: B018
    run = runlake.init("p", root=root, config={"lr": 0.1})
    assert runlake.run is run and runlake.config is run.config and runlake.config.lr == 0.1
    runlake.define_metric("loss", summary="min")
    runlake.log({"loss": 2.0})
    runlake.log({"loss": 1.0})
    runlake.log({"loss": 3.0})
    runlake.summary["note"] = "hi"
    assert runlake.summary["loss"] == {"min": 1.0} and runlake.summary["note"] == "hi"
    runlake.finish()
    assert runlake.run is None
    assert json.loads(runlake.runs(root=root)["summary"][0]) == {"loss": {"min": 1.0}, "note": "hi"}


def test_config_semantics(tmp_path):
    root = str(tmp_path / "root")
    yaml_file = tmp_path / "config.yaml"
    yaml_file.write_text("wandb_version: 1\nlr:\n  value: 0.5\nlayers:\n  desc: depth\n  value: 3\n")
    run = _run(root, config=str(yaml_file))
    assert dict(run.config) == {"lr": 0.5, "layers": 3}
    run.config.update(argparse.Namespace(seed=1, layers=3))  # the same value again is fine
    with pytest.raises(runlake.ConfigError, match="allow_val_change"):
        run.config.update({"lr": 0.1})
    with pytest.raises(runlake.ConfigError):
        run.config.lr = 0.2
    run.config.update({"lr": 0.1}, allow_val_change=True)
    run.config.setdefaults({"lr": 9, "new": "x"})
    run.config["nested"] = {"a": {"b": 1}}
    assert run.config.as_dict() == {"lr": 0.1, "layers": 3, "seed": 1, "new": "x", "nested": {"a": {"b": 1}}}
    assert "allow_val_change" not in run.config
    run.finish()
    assert json.loads(runlake.runs(root=root)["config"][0])["lr"] == 0.1
    free = _run(root, allow_val_change=True, config={"lr": 1})
    free.config.lr = 2
    free.finish()


def test_config_from_absl_flags(tmp_path):
    from absl import flags

    values = flags.FlagValues()
    flags.DEFINE_integer("steps", 7, "steps", flag_values=values)
    flags.DEFINE_string("opt", "adam", "optimizer", flag_values=values)
    values(["prog"])
    run = _run(str(tmp_path / "root"), config=values)
    assert run.config.steps == 7 and run.config.opt == "adam"
    run.finish()


def test_summary_last_write_wins_nested_access_and_deletion(tmp_path):
    root = str(tmp_path / "root")
    run = _run(root)
    run.log({"train": {"acc": 0.7, "loss": 0.4}})
    assert run.summary["train"]["acc"] == 0.7 and set(run.summary["train"]) == {"acc", "loss"}
    run.summary["train"]["acc"] = 0.99  # through the nested view
    assert run.summary["train.acc"] == 0.99
    run.log({"train": {"acc": 0.8}})
    assert run.summary["train"]["acc"] == 0.8
    del run.summary["train"]
    assert "train" not in run.summary
    run.log({"train": {"acc": 0.85}})
    assert run.summary["train.acc"] == 0.85
    run.finish()


def test_define_metric_summaries_best_goal_and_globs(tmp_path):
    root = str(tmp_path / "root")
    run = _run(root)
    run.define_metric("err", summary="best", goal="minimize")
    run.define_metric("gain", summary="best", goal="maximize")
    run.define_metric("val/*", summary="mean")
    run.define_metric("val/special", summary="first")  # its own name beats the glob
    with pytest.raises(ValueError, match="goal"):
        run.define_metric("x", summary="best")
    with pytest.raises(ValueError, match="not one of"):
        run.define_metric("x", summary="median")
    for err, gain in ((0.5, 1.0), (0.2, 3.0), (0.3, 2.0)):
        run.log({"err": err, "gain": gain, "val/a": gain, "val/special": err})
    run.finish()
    summary = json.loads(runlake.runs(root=root)["summary"][0])
    assert summary == {
        "err": {"best": 0.2},
        "gain": {"best": 3.0},
        "val/a": {"mean": 2.0},
        "val/special": {"first": 0.5},
    }
    # resumed: the aggregates carry on
    again = runlake.init("p", root=root, id=run.id, resume="allow")
    again.log({"err": 0.1, "val/a": 6.0})
    again.finish()
    summary = json.loads(runlake.runs(root=root)["summary"][0])
    assert summary["err"] == {"best": 0.1} and summary["val/a"] == {"mean": 3.0}


def test_plots_use_the_step_metric_as_x_axis(tmp_path):
    root = str(tmp_path / "root")
    run = _run(root)
    run.define_metric("val/*", step_metric="epoch")
    for epoch in range(3):
        run.log({"train/loss": 1.0})
        run.log({"epoch": float(epoch) * 10, "val/acc": epoch / 10})
    run.finish()
    plot = runlake.plot(run.id, "val/acc", root=root, output=str(tmp_path / "p.png"))
    assert plot.x_key == "epoch" and plot.lines[0].steps == [0.0, 10.0, 20.0]
    plain = runlake.plot(run.id, "train/loss", root=root, output=str(tmp_path / "q.png"))
    assert plain.x_key == "step" and plain.lines[0].steps == [0, 2, 4]


def test_lists_histograms_images_and_tables_are_stored_readable_and_inherited(tmp_path):
    from PIL import Image as PILImage

    root = str(tmp_path / "root")
    png = tmp_path / "in.png"
    PILImage.new("RGB", (5, 4), (255, 0, 0)).save(png)
    run = _run(root, id="media")
    run.log({"acc": [0.1, 0.2], "h": runlake.Histogram(np.arange(10), num_bins=5)})
    run.log({"img": runlake.Image(np.zeros((6, 7, 3)), caption="zeros"), "file": runlake.Image(str(png))})
    run.log(
        {
            "pil": runlake.Image(PILImage.new("L", (3, 3))),
            "t": runlake.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]]),
        }
    )
    run.log({"df": runlake.Table(dataframe=pl.DataFrame({"q": [1.5, 2.5]}))})
    run.finish()
    history = runlake.history("media", root=root)
    assert json.loads(history["acc"][0]) == [0.1, 0.2]
    assert json.loads(history["h"][0]) == {
        "_type": "histogram",
        "values": [2, 2, 2, 2, 2],
        "bins": [0.0, 1.8, 3.6, 5.4, 7.2, 9.0],
    }
    img = json.loads(history["img"][1])
    assert img["_type"] == "image-file" and (img["width"], img["height"], img["caption"]) == (7, 6, "zeros")
    with PILImage.open(os.path.join(root, img["path"])) as opened:
        assert opened.size == (7, 6)
    assert json.loads(history["file"][1])["width"] == 5
    table = json.loads(history["t"][2])
    assert table["_type"] == "table-file" and table["nrows"] == 2 and table["columns"] == ["a", "b"]
    assert pl.read_parquet(os.path.join(root, table["path"])).to_dicts() == [
        {"a": 1, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    df = json.loads(history["df"][3])
    assert pl.read_parquet(os.path.join(root, df["path"]))["q"].to_list() == [1.5, 2.5]
    # SQL unpacks them with DuckDB's JSON functions
    unpacked = runlake.sql(
        "SELECT json_extract(text, '$.bins[1]')::DOUBLE AS b1, json_array_length(text, '$.values') AS n "
        "FROM history WHERE run_id = 'media' AND key = 'h'",
        root=root,
    )
    assert unpacked.rows() == [(1.8, 5)]
    # a fork inherits them like any key, and its summary decodes them
    fork = runlake.init("p", root=root, fork_from="media?_step=2")
    assert fork.summary["acc"] == [0.1, 0.2] and fork.summary["t"]["nrows"] == 2
    fork.finish()
    assert runlake.history(fork.id, root=root)["acc"].to_list()[0] == "[0.1,0.2]"


def test_bad_media_and_values_fail_the_call_and_keep_the_rest(tmp_path):
    root = str(tmp_path / "root")
    run = _run(root)
    run.log({"ok": 1.0})
    with pytest.raises(ValueError, match="shape"):
        run.log({"img": runlake.Image(np.zeros((2, 2, 7)))})
    with pytest.raises(FileNotFoundError, match="no image file"):
        runlake.Image(str(tmp_path / "missing.png"))
    with pytest.raises(TypeError, match="mixes types"):
        runlake.Table(columns=["a"], data=[[1], ["x"]])
    with pytest.raises(TypeError, match="'bad'"):
        run.log({"fine": 2.0, "bad": [object()]})
    with pytest.raises(ValueError, match="2\\*\\*63"):
        run.log({"x": 1.0}, step=2**63)
    run.log({"ok": 2.0})
    run.finish()
    history = runlake.history(run.id, root=root)
    assert history["ok"].to_list() == [1.0, 2.0] and "fine" not in history.columns
    assert runlake.runs(root=root)["state"].to_list() == ["finished"]


def test_underscore_keys(tmp_path):
    root = str(tmp_path / "root")
    run = _run(root)
    run.log({"_custom": 1.0, "_step": 50, "_runtime": 9.0, "_timestamp": 1700000000.0, "x": 1.0})
    run.finish()
    row = runlake.history(run.id, root=root).row(0, named=True)
    assert row["_step"] == 0 and row["_custom"] == 1.0 and row["_timestamp"] == 1700000000.0
    assert row["_runtime"] != 9.0


def test_mode_disabled_has_the_whole_api_and_writes_nothing(tmp_path):
    root = tmp_path / "root"
    run = runlake.init("p", root=str(root), mode="disabled", config={"a": 1}, tags=["t"])
    assert run.disabled and runlake.run is run
    run.define_metric("x", summary="max")
    for i in range(25_000):  # past a flush's worth of rows: memory stays bounded
        run.log({"x": float(i % 7)})
    run.log({"img": runlake.Image(np.zeros((2, 2)))})
    run.config.update({"b": 2})
    run.summary["s"] = 1
    assert run.step == 25_001 and run.summary["x"] == {"max": 6.0} and run.summary["s"] == 1
    run.finish()
    assert not root.exists()
    with runlake.init("p", root=str(root), mode="disabled"):
        pass
    assert not root.exists()


def test_reinit_values(tmp_path):
    root = str(tmp_path / "root")
    first = _run(root)
    second = _run(root)  # runlake's default: create_new (both stay open)
    assert not first.finished and runlake.run is second
    assert _run(root, reinit="return_previous") is second
    assert _run(root, reinit=False) is second
    third = _run(root, reinit="finish_previous")
    assert first.finished and second.finished and not third.finished
    fourth = _run(root, reinit=True)
    assert third.finished
    with pytest.raises(InvalidSpecError, match="reinit"):
        _run(root, reinit="sometimes")
    fourth.finish()


def test_dir_holds_the_local_files(tmp_path):
    local = tmp_path / "local"
    run = _run(str(tmp_path / "root"), dir=str(local))
    assert run.dir.startswith(str(local)) and os.path.isdir(run.dir)
    run.finish()


@pytest.mark.slow
def test_resume_auto_true_and_false(tmp_path, monkeypatch):
    root = str(tmp_path / "root")
    monkeypatch.chdir(tmp_path)
    crash = _python(
        """
        import os, runlake
        run = runlake.init("p", resume="auto")
        run.log({"x": 1.0})
        run.flush()
        print(run.id, flush=True)
        os._exit(1)  # dies: no finish
        """,
        root,
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(tmp_path),
    )
    crashed_id = crash.communicate(timeout=120)[0].strip()
    again = _run(root, resume=True)  # the directory's unfinished run continues
    assert again.id == crashed_id and again.step == 1 and again.resumed
    again.log({"x": 2.0})
    again.finish()
    fresh = _run(root, resume="auto")  # it finished cleanly: a new run
    assert fresh.id != crashed_id
    fresh.finish()
    with pytest.raises(runlake.RunlakeError, match="already exists"):
        _run(root, id=fresh.id, resume=False)
    with pytest.raises(InvalidSpecError, match="resume"):
        _run(root, id="z", resume="sometimes")


def test_fork_from_takes_run_moment_objects(tmp_path):
    root = str(tmp_path / "root")
    src = _run(root, id="src")
    for i in range(5):
        src.log({"x": float(i)})
    src.finish()

    class Moment:  # what wandb.RunMoment looks like
        run, value, metric = "src", 2.7, "_step"

    fork = _run(root, fork_from=Moment())
    assert fork.step == 3
    fork.finish()


def test_systemexit_and_keyboardinterrupt_in_a_with_block(tmp_path):
    root = str(tmp_path / "root")
    with pytest.raises(SystemExit), _run(root, id="exit3") as run:
        run.log({"x": 1.0})
        raise SystemExit(3)
    with pytest.raises(KeyboardInterrupt), _run(root, id="ctrlc"):
        raise KeyboardInterrupt
    with pytest.raises(SystemExit), _run(root, id="exit0"):
        raise SystemExit(0)
    runs = runlake.runs(root=root).sort("run_id").select("run_id", "state", "exit_code").rows()
    assert runs == [("ctrlc", "failed", 255), ("exit0", "finished", 0), ("exit3", "failed", 3)]


def _python(code: str, root: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "RUNLAKE_ROOT": root}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, **kw)


@pytest.mark.slow
def test_exit_codes_of_a_process(tmp_path):
    root = str(tmp_path / "root")
    for code, run_id in ((3, "sysexit"), (0, "clean")):
        proc = _python(
            f"""
            import sys, runlake
            run = runlake.init("p", id="{run_id}")
            run.log({{"x": 1.0}})
            sys.exit({code})
            """,
            root,
        )
        assert proc.wait(timeout=120) == code
    proc = _python(
        """
        import runlake
        run = runlake.init("p", id="interrupted")
        run.log({"x": 1.0})
        raise KeyboardInterrupt
        """,
        root,
        stderr=subprocess.DEVNULL,
    )
    assert proc.wait(timeout=120) != 0
    runs = runlake.runs(root=root).sort("run_id").select("run_id", "state", "exit_code").rows()
    assert runs == [("clean", "finished", 0), ("interrupted", "failed", 255), ("sysexit", "failed", 3)]


@pytest.mark.slow
def test_mark_preempting_then_killed_reads_preempted_and_resumes(tmp_path):
    root = str(tmp_path / "root")
    ready = tmp_path / "ready"
    proc = _python(
        f"""
        import time, runlake
        run = runlake.init("p", id="pre")
        run.log({{"x": 1.0}})
        run.mark_preempting()
        open({str(ready)!r}, "w").close()
        time.sleep(600)
        """,
        root,
    )
    deadline = time.time() + 120
    while not ready.exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert runlake.runs(root=root)["state"].to_list() == ["preempted"]
    run = runlake.init("p", root=root, id="pre", resume="allow")
    assert run.step == 1
    run.finish()
    assert runlake.runs(root=root)["state"].to_list() == ["finished"]


@pytest.mark.slow
@pytest.mark.parametrize("fail", [False, True])
def test_a_wandb_training_script_runs_unchanged(tmp_path, fail):
    root = str(tmp_path / "root")
    script = os.path.join(HERE, "scripts", "wandb_style_train.py")
    args = [sys.executable, script, "--epochs", "4", "--lr", "0.05"] + (["--fail"] if fail else [])
    out = subprocess.run(
        args, env={**os.environ, "RUNLAKE_ROOT": root}, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    run_id = out.stdout.strip().splitlines()[-1]
    row = runlake.runs(root=root).row(0, named=True)
    assert (row["run_id"], row["project"], row["group"], row["job_type"], row["entity"]) == (
        run_id,
        "mnist-ish",
        "sweep-7",
        "train",
        "my-team",
    )
    assert row["tags"] == ["baseline", "cpu", "done"] and row["notes"] == "a tiny model"
    assert (row["state"], row["exit_code"]) == (("failed", 3) if fail else ("finished", 0))
    config = json.loads(row["config"])
    assert config == {
        "epochs": 4,
        "lr": 0.1,
        "batch_size": 16,
        "fail": fail,
        "optimizer": "sgd",
        "classes": 3,
    }
    history = runlake.history(run_id, root=root)
    assert history.height == 4 * 6 + 2 and history["_step"].to_list() == list(range(26))
    train = history.filter(pl.col("train/loss").is_not_null())
    expected = [1.0 / (1 + e * 5 + b) for e in range(4) for b in range(5)]
    assert train["train/loss"].to_list() == pytest.approx(expected)
    assert train["lr"].unique().to_list() == [0.1]
    val = history.filter(pl.col("epoch").is_not_null())
    assert val["epoch"].to_list() == [0.0, 1.0, 2.0, 3.0]
    assert [json.loads(v) for v in val["val/per_class_acc"]] == [
        pytest.approx([0.5 + 0.1 * e, 0.4 + 0.1 * e, 0.3 + 0.1 * e]) for e in range(4)
    ]
    hist = json.loads(val["weights"][0])
    assert hist["_type"] == "histogram" and len(hist["values"]) == 64 and sum(hist["values"]) == 50
    assert json.loads(val["grads"][0])["_type"] == "histogram"  # an array of 50 numbers
    image = json.loads(history["examples"].drop_nulls()[0])
    assert image["caption"] == "first batch" and os.path.isfile(os.path.join(root, image["path"]))
    table = json.loads(history["predictions"].drop_nulls()[0])
    assert pl.read_parquet(os.path.join(root, table["path"]))["label"].to_list() == ["cat", "dog"]
    summary = json.loads(row["summary"])
    assert summary["val/loss"] == {"min": 0.5} and summary["train/acc"] == {"max": pytest.approx(1 - 1 / 20)}
    assert summary["best_epoch"] == 3 and summary["final"] == {"acc": 0.93, "loss": 0.07}
    assert summary["epoch"] == 3.0 and summary["val/per_class_acc"] == pytest.approx([0.8, 0.7, 0.6])
    metrics = json.loads(row["metrics"])
    assert {"name": "val/*", "step_metric": "epoch"} in metrics
