"""The rest of the wandb surface (#25): media (Table's API, media cells, lists of media,
figures, Audio/Video/Html/Plotly), `wandb.plot.*` charts, `wandb.sklearn`, alerts, TensorBoard
sync. Each is logged, read back (history, SQL, the files) and, where wandb 0.31 offline can
record it, compared with what wandb recorded (tests/data/wandb-surface.json: keys and kinds)."""

from __future__ import annotations

import io
import json
import os
import threading
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from parity.surface import SURFACE

import runlake
from runlake.cli import main

HERE = os.path.dirname(__file__)
with open(os.path.join(HERE, "data", "wandb-surface.json")) as _fh:
    RECORDED = json.load(_fh)


def _rows(lake, run_id):
    """{step: {key: kind}}: a media value's `_type`, else its JSON type (as the recorder does)."""
    with open(os.path.join(lake.url, "runs", lake.runs()["project"][0], run_id, "meta", "state.json")) as fh:
        json_keys = set(json.load(fh)["json_keys"])
    out = {}
    for row in lake.history(run_id).iter_rows(named=True):
        kinds = {}
        for key, value in row.items():
            if key.startswith("_") or value is None:
                continue
            if key in json_keys and isinstance(value, str):
                value = json.loads(value)
            if isinstance(value, dict) and "_type" in value:
                kinds[key] = value["_type"]
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                kinds[key] = "number"
            else:
                kinds[key] = type(value).__name__
        out[str(row["_step"])] = kinds
    return out


# the cases that import heavy frameworks (torch/tensorboardX, scikit-learn, matplotlib) are slow
HEAVY = {"tensorboard_sync", "pr_and_roc", "matplotlib_figures"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in sorted(SURFACE)]
)
def test_runlake_records_the_keys_and_kinds_wandb_records(name, tmp_path):
    expected = RECORDED["cases"][name]
    root = str(tmp_path / "root")
    os.makedirs(tmp_path / "dir")
    SURFACE[name](runlake, {"root": root, "dir": str(tmp_path / "dir")})
    lake = runlake.Lake(root)
    run_id = lake.runs()["run_id"][0]
    assert _rows(lake, run_id) == expected["rows"]


def _value(lake, run_id, key, step=None):
    frame = lake.history(run_id, [key])
    values = [v for v in frame[key].to_list() if v is not None]
    return json.loads(values[-1 if step is None else step])


def _file(lake, ref):
    with open(os.path.join(lake.url, ref["path"]), "rb") as fh:
        return fh.read()


def test_table_api_and_media_cells_round_trip(tmp_path):
    lake = runlake.Lake(str(tmp_path / "root"))
    run = lake.init("p", id="t")
    table = runlake.Table(columns=["id", "image"])
    table.add_data(1, runlake.Image(np.zeros((4, 4, 3), dtype=np.uint8)))
    table.add_data(2, None)
    table.add_column("score", np.array([0.5, 0.25]))
    assert table.columns == ["id", "image", "score"] and len(table.data) == 2
    assert table.get_column("score", convert_to="numpy").tolist() == [0.5, 0.25]
    with pytest.raises(TypeError, match="mixes types"):
        table.add_data("three", None, 1.0)
    with pytest.raises(ValueError, match="must have 3 values"):
        table.add_data(3)
    run.log({"preds": table})
    run.finish()
    ref = _value(lake, "t", "preds")
    assert ref["_type"] == "table-file" and ref["media_columns"] == ["image"] and ref["nrows"] == 2
    stored = pq.read_table(io.BytesIO(_file(lake, ref)))
    assert stored.column("id").to_pylist() == [1, 2] and stored.column("score").to_pylist() == [0.5, 0.25]
    cell = json.loads(stored.column("image")[0].as_py())
    assert cell["_type"] == "image-file" and _file(lake, cell)[:4] == b"\x89PNG"
    assert stored.column("image")[1].as_py() is None
    # the table's references are queryable in SQL like any logged value
    found = lake.sql(
        "SELECT json_extract_string(text, '$._type') AS t FROM history WHERE run_id = 't' AND key = 'preds'"
    )
    assert found["t"].to_list() == ["table-file"]


def test_tables_from_frames_and_mixed_types(tmp_path):
    import pandas as pd

    lake = runlake.Lake(str(tmp_path / "root"))
    run = lake.init("p", id="f")
    frame = runlake.Table(dataframe=pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert frame.get_column("b") == ["x", "y"] and frame.data == [[1, "x"], [2, "y"]]
    frame.add_data(3, "z")
    mixed = runlake.Table(columns=["m"], data=[[1], ["x"], [None]], allow_mixed_types=True)
    run.log({"frame": frame, "mixed": mixed})
    run.finish()
    assert pq.read_table(io.BytesIO(_file(lake, _value(lake, "f", "frame")))).num_rows == 3
    assert pq.read_table(io.BytesIO(_file(lake, _value(lake, "f", "mixed")))).column("m").to_pylist() == [
        "1",
        '"x"',
        None,
    ]


@pytest.mark.slow
def test_lists_of_media_figures_audio_video_html_plotly(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    from PIL import Image as PILImage

    lake = runlake.Lake(str(tmp_path / "root"))
    run = lake.init("p", id="m")
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    tone = np.sin(np.linspace(0, 200, 4000))
    frames = np.random.default_rng(0).integers(0, 255, size=(3, 3, 6, 6), dtype=np.uint8)
    run.log(
        {
            "imgs": [runlake.Image(np.full((3, 3), i, dtype=np.uint8)) for i in range(3)],
            "clips": [runlake.Audio(tone, sample_rate=8000), runlake.Audio(tone, sample_rate=8000)],
            "fig": fig,
            "plt": plt,
            "audio": runlake.Audio(tone, sample_rate=8000, caption="tone"),
            "video": runlake.Video(frames, fps=2),
            "html": runlake.Html("<b>hi</b>"),
            "plotly": go.Figure(go.Scatter(x=[1, 2], y=[3, 4])),
        }
    )
    run.finish()
    imgs = _value(lake, "m", "imgs")
    assert imgs["_type"] == "images/separated" and imgs["count"] == 3
    assert all(_file(lake, item)[:4] == b"\x89PNG" for item in imgs["items"])
    assert _value(lake, "m", "clips")["_type"] == "media-list"
    for key in ("fig", "plt"):
        ref = _value(lake, "m", key)
        assert ref["_type"] == "image-file" and ref["width"] == 200
    audio = _value(lake, "m", "audio")
    with wave.open(io.BytesIO(_file(lake, audio))) as wav:
        assert (wav.getframerate(), wav.getnframes()) == (8000, 4000)
    assert audio["caption"] == "tone" and audio["duration"] == 0.5
    video = _value(lake, "m", "video")
    assert video["_type"] == "video-file" and video["frames"] == 3
    assert PILImage.open(io.BytesIO(_file(lake, video))).n_frames == 3
    assert _file(lake, _value(lake, "m", "html")) == b"<b>hi</b>"
    assert json.loads(_file(lake, _value(lake, "m", "plotly")))["data"][0]["type"] == "scatter"
    with pytest.raises(NotImplementedError, match="does not store 3D"):
        runlake.Object3D(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="sample_rate"):
        runlake.Audio(tone)
    with pytest.raises(ValueError, match="would need ffmpeg"):
        runlake.Video(frames, format="mp4")


def test_charts_store_their_table_and_spec_and_plot_still_draws_fork_trees(tmp_path):
    lake = runlake.Lake(str(tmp_path / "root"))
    run = lake.init("p", id="c")
    for i in range(3):
        run.log({"loss": 1.0 / (i + 1)})
    run.log({"cm": runlake.plot.confusion_matrix(y_true=[0, 1, 1], preds=[0, 1, 0], class_names=["a", "b"])})
    run.log({"series": runlake.plot.line_series([0, 1], [[1, 2], [3, 4]], keys=["u", "v"], xname="epoch")})
    with pytest.raises(ValueError, match="no column"):
        runlake.plot.line(runlake.Table(columns=["a"], data=[[1]]), "a", "missing")
    run.finish()
    cm = _value(lake, "c", "cm_table")
    assert (
        cm["chart"]["type"] == "wandb/confusion_matrix/v1"
        and cm["chart"]["title"] == "Confusion Matrix Curve"
    )
    counts = pq.read_table(io.BytesIO(_file(lake, cm))).to_pylist()
    assert {(r["Actual"], r["Predicted"]): r["nPredictions"] for r in counts} == {
        ("a", "a"): 1.0,
        ("a", "b"): 0.0,
        ("b", "a"): 1.0,
        ("b", "b"): 1.0,
    }
    series = _value(lake, "c", "series_table")
    assert series["chart"]["string_fields"]["xname"] == "epoch" and series["nrows"] == 4
    assert callable(runlake.plot)
    drawn = runlake.plot("c", "loss", root=lake.url, output=str(tmp_path / "c.png"))
    assert os.path.getsize(tmp_path / "c.png") > 1000 and drawn is not None


@pytest.mark.slow
def test_sklearn_plot_classifier_logs_every_chart_wandb_logs(tmp_path):
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0)
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(x_train, y_train)
    lake = runlake.Lake(str(tmp_path / "root"))
    run = lake.init("p", id="sk")
    runlake.sklearn.plot_classifier(
        model,
        x_train,
        x_test,
        y_train,
        y_test,
        model.predict(x_test),
        model.predict_proba(x_test),
        ["setosa", "versicolor", "virginica"],
        model_name="RF",
        feature_names=["a", "b", "c", "d"],
    )
    run.finish()
    keys = {c for c in lake.history("sk").columns if not c.startswith("_")}
    assert keys == {
        "feature_importances_table",
        "confusion_matrix_table",
        "summary_metrics_table",
        "class_proportions_table",
        "roc_table",
        "precision_recall_table",
    }
    roc = pq.read_table(io.BytesIO(_file(lake, _value(lake, "sk", "roc_table"))))
    assert set(roc.column("class").to_pylist()) == {"setosa", "versicolor", "virginica"}


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    got = threading.Event()

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(200)
        self.end_headers()
        _Hook.got.set()

    def log_message(self, *args):
        pass


def test_alerts_are_stored_printed_rate_limited_and_sent(tmp_path, monkeypatch, capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("RUNLAKE_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_address[1]}/hook")
    try:
        lake = runlake.Lake(str(tmp_path / "root"))
        run = lake.init("p", id="al")
        run.log({"loss": 9.0})
        run.alert("loss exploded", "loss is 9", level=runlake.AlertLevel.WARN)
        assert _Hook.got.wait(30)
        run.alert("loss exploded", "again, too soon", level="WARN")  # within a minute: dropped
        run.alert("other", "x", level="ERROR", wait_duration=0.0)
        with pytest.raises(ValueError, match="level must be one of"):
            run.alert("t", "x", level="LOUD")
        with pytest.raises(ValueError, match="less than 64"):
            run.alert("x" * 64, "x")
        run.finish()
    finally:
        server.shutdown()
        server.server_close()
    err = capsys.readouterr().err
    assert "alert [WARN] loss exploded: loss is 9" in err and "too soon" not in err
    content_type, body = _Hook.received[0]
    assert (
        content_type == "application/json"
        and "loss exploded" in body["text"]
        and body["runlake"]["step"] == 0
    )
    rows = lake.alerts("al")
    assert rows.select("step", "level", "title", "text").rows() == [
        (0, "WARN", "loss exploded", "loss is 9"),
        (0, "ERROR", "other", "x"),
    ]
    assert lake.sql("SELECT count(*) AS n FROM alerts WHERE level = 'ERROR'")["n"][0] == 1
    out = CliRunner().invoke(main, ["--root", lake.url, "alerts", "al"], catch_exceptions=False)
    assert out.exit_code == 0 and "loss exploded" in out.output
    assert lake.alerts(level="INFO").height == 0


@pytest.mark.slow
def test_tensorboard_sync_logs_what_a_summary_writer_writes(tmp_path):
    import torch
    from torch.utils.tensorboard import SummaryWriter

    lake = runlake.Lake(str(tmp_path / "root"))
    run = lake.init("p", id="tb", sync_tensorboard=True)
    try:
        writer = SummaryWriter(str(tmp_path / "tb"))
        for step in (0, 10, 20):
            writer.add_scalar("charts/episodic_return", torch.tensor(float(step)), step)
            writer.add_scalar("losses/value_loss", 1.0 / (step + 1), step)
        writer.add_histogram("weights", np.arange(10.0), 20)
        writer.close()
        run.finish()
    finally:
        runlake.tensorboard.unpatch()
    frame = lake.history("tb")
    assert frame["global_step"].to_list() == [0.0, 10.0, 20.0]
    assert frame["charts/episodic_return"].to_list() == [0.0, 10.0, 20.0]
    assert json.loads(frame["weights"][-1])["_type"] == "histogram"
    assert os.listdir(tmp_path / "tb")  # the event files are still written


def test_calls_with_no_local_meaning_say_so_once(tmp_path):
    runlake._said.clear()
    with pytest.warns(RuntimeWarning, match="stores no files"):
        assert runlake.save("*.ckpt") == []
    with pytest.warns(RuntimeWarning, match="logs no gradients"):
        runlake.watch(object())
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second time: silent
        runlake.save("*.ckpt")
        runlake.watch(object())
