"""The rest of the wandb surface (#25), run through `wandb` (record_wandb.py --surface) and
through runlake (tests/test_wandb_surface.py): media, tables, lists of media, figures, charts
(`wandb.plot.*`), TensorBoard sync. Values of media are files whose names differ between the two,
so what is compared is each row's keys and each value's kind (its `_type`, or its JSON type)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Case = Callable[[Any, dict[str, Any]], Any]
SURFACE: dict[str, Case] = {}


def case(fn: Case) -> Case:
    SURFACE[fn.__name__] = fn
    return fn


def _pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, size=(8, 8, 3), dtype=np.uint8)


@case
def table_with_media(wb, kw):
    run = wb.init(project="surface", **kw)
    table = wb.Table(columns=["id", "image", "score"])
    for i in range(3):
        table.add_data(i, wb.Image(_pixels(i), caption=f"c{i}"), i * 0.5)
    table.add_column("label", ["a", "b", "c"])
    assert table.get_column("score") == [0.0, 0.5, 1.0]
    run.log({"predictions": table})
    run.log({"plain": wb.Table(data=[[1, "x"], [2, "y"]], columns=["n", "s"])})
    run.finish()


@case
def lists_of_images(wb, kw):
    run = wb.init(project="surface", **kw)
    run.log({"examples": [wb.Image(_pixels(i)) for i in range(3)], "loss": 0.5})
    run.log({"one": wb.Image(_pixels(9))})
    run.finish()


@case
def matplotlib_figures(wb, kw):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = wb.init(project="surface", **kw)
    fig, ax = plt.subplots()
    ax.imshow(_pixels(1))  # an image plot: wandb stores a figure it cannot make plotly of as an image
    run.log({"figure_image": wb.Image(fig)})
    plt.close(fig)
    run.finish()


@case
def html_and_files(wb, kw):
    import os
    import wave

    path = os.path.join(kw["dir"], "tone.wav")
    with wave.open(path, "wb") as fh:  # an audio file: stored as it is (numpy audio needs soundfile in wandb)
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(8000)
        fh.writeframes((np.sin(np.linspace(0, 100, 800)) * 3000).astype("<i2").tobytes())
    run = wb.init(project="surface", **kw)
    run.log({"html": wb.Html("<p>hello</p>")})
    run.log({"audio": wb.Audio(path, caption="a")})
    run.finish()


@case
def plot_charts(wb, kw):
    run = wb.init(project="surface", **kw)
    table = wb.Table(
        data=[[i, i * i, "s1" if i % 2 else "s2"] for i in range(10)], columns=["x", "y", "series"]
    )
    run.log({"line": wb.plot.line(table, "x", "y", stroke="series", title="line")})
    run.log({"scatter": wb.plot.scatter(table, "x", "y", title="scatter")})
    bars = wb.Table(data=[["a", 1.0], ["b", 2.0]], columns=["label", "value"])
    run.log({"bar": wb.plot.bar(bars, "label", "value", title="bar")})
    run.log({"histogram": wb.plot.histogram(table, "y", title="hist")})
    run.log(
        {
            "series": wb.plot.line_series(
                xs=[0, 1, 2], ys=[[1, 2, 3], [3, 2, 1]], keys=["up", "down"], title="ls"
            )
        }
    )
    run.log(
        {"cm": wb.plot.confusion_matrix(y_true=[0, 1, 1, 2], preds=[0, 1, 2, 2], class_names=["a", "b", "c"])}
    )
    run.finish()


@case
def pr_and_roc(wb, kw):
    run = wb.init(project="surface", **kw)
    y_true = [0, 1, 1, 0, 1, 0, 1, 1]
    probas = np.array(
        [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2], [0.45, 0.55], [0.1, 0.9]]
    )
    run.log({"pr": wb.plot.pr_curve(y_true, probas, labels=["neg", "pos"])})
    run.log({"roc": wb.plot.roc_curve(y_true, probas, labels=["neg", "pos"])})
    run.finish()


@case
def tensorboard_sync(wb, kw):
    import os

    from tensorboardX import SummaryWriter

    run = wb.init(project="surface", sync_tensorboard=True, **kw)
    writer = SummaryWriter(os.path.join(kw["dir"], "tb"))
    for step in range(3):
        writer.add_scalar("charts/return", float(step * 10), step)
        writer.add_scalar("losses/value", 1.0 / (step + 1), step)
    writer.close()
    run.finish()
    wb.tensorboard.unpatch()
