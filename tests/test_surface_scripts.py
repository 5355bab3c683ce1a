"""Public scripts that use the rest of the wandb surface (#25), shrunk to run on CPU in seconds
(tests/scripts/surface/, each with its source and how it was shrunk), run unchanged as
processes where `import wandb` is runlake (tests/scripts/as_wandb): each exits 0 and records
the keys and rows the original records."""

from __future__ import annotations

import json
import os

import pytest
from shim import run_as_wandb

import runlake

HERE = os.path.dirname(__file__)
SCRIPTS = os.path.join(HERE, "scripts", "surface")
pytestmark = pytest.mark.slow


def _run(name, tmp_path, *args):
    root = str(tmp_path / "root")
    proc = run_as_wandb(os.path.join(SCRIPTS, name), tmp_path, *args, root=root)
    lake = runlake.Lake(root)
    runs = lake.runs()
    assert runs.height == 1
    return lake, runs.row(0, named=True), proc


def test_cleanrl_ppo_with_sync_tensorboard_records_its_scalars(tmp_path):
    lake, run, _ = _run("cleanrl_ppo_tb.py", tmp_path)
    frame = lake.history(run["run_id"])
    assert frame["global_step"].to_list() == [0.0, 16.0, 32.0, 48.0]  # one row per global_step
    assert frame["hyperparameters"][0].startswith(
        "|param|value|"
    )  # add_text without a step: step 0, as TensorBoard
    for key in (
        "charts/episodic_return",
        "charts/learning_rate",
        "losses/value_loss",
        "losses/entropy",
        "charts/SPS",
    ):
        assert frame[key].null_count() == 1, key  # all but the text row
    assert json.loads(run["config"])["total_timesteps"] == 48 and run["name"].startswith(
        "CartPole-v1__ppo__1__"
    )
    assert os.listdir(tmp_path / "runs")  # its TensorBoard event files are written as before


def test_alerts_loop_stores_one_alert_and_drops_the_one_within_wait_duration(tmp_path):
    lake, run, proc = _run("alerts_loop.py", tmp_path)
    alerts = lake.alerts(run["run_id"])
    assert alerts.select("step", "level", "title").rows() == [(5, "WARN", "Low accuracy")]
    assert proc.stderr.count("alert [WARN] Low accuracy") == 1


def test_log_media_stores_every_kind(tmp_path):
    lake, run, _ = _run("log_media.py", tmp_path)
    frame = lake.history(run["run_id"])
    kinds = {}
    for key in frame.columns:
        if key.startswith("_"):
            continue
        value = next(v for v in frame[key].to_list() if v is not None)
        kinds[key] = json.loads(value)["_type"]
    assert kinds == {
        "image": "image-file",
        "examples": "images/separated",
        "predictions": "table-file",
        "gradients": "histogram",
        "audio": "audio-file",
        "video": "video-file",
        "custom_html": "html-file",
        "plotly": "plotly-file",
        "chart": "image-file",
    }
    media = os.path.join(lake.url, "media")
    stored = sorted({d for _, dirs, _ in os.walk(media) for d in dirs if d.endswith("s") and d != "runs"})
    assert {"images", "tables", "audios", "videos", "htmls", "plotlys"} <= set(stored)


def test_scikit_classifier_logs_its_charts(tmp_path):
    lake, run, _ = _run("scikit_classifier.py", tmp_path)
    keys = {c for c in lake.history(run["run_id"]).columns if not c.startswith("_")}
    assert keys == {
        "feature_importances_table",
        "confusion_matrix_table",
        "summary_metrics_table",
        "class_proportions_table",
        "roc_table",
        "precision_recall_table",
        "learning_curve_table",
        "cm_table",
    }
