"""`runlake.plot`: W&B's `wandb.plot.*` charts, and still runlake's fork-tree chart when called.

`runlake.plot.line(table, x, y)`, `scatter`, `bar`, `histogram`, `line_series`,
`confusion_matrix`, `pr_curve`, `roc_curve` and `plot_table` return a chart to log, as W&B's
do: a Table with the data plus a spec naming the chart type and the columns it draws (W&B's
vega spec names are kept). `runlake.plot(run_ids, key, ...)` (calling the module) draws a
metric of several runs as a fork tree, as before (`runlake.plotting`).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .write.chart import CustomChart
from .write.table import Table

__all__ = [
    "CustomChart",
    "bar",
    "confusion_matrix",
    "histogram",
    "line",
    "line_series",
    "plot_table",
    "pr_curve",
    "roc_curve",
    "scatter",
]


def plot_table(
    vega_spec_name: str,
    data_table: Table,
    fields: dict[str, Any],
    string_fields: dict[str, Any] | None = None,
    split_table: bool = False,
) -> CustomChart:
    """A custom chart: `data_table` drawn by the chart `vega_spec_name`, its `fields` naming columns."""
    if not isinstance(vega_spec_name, str) or not vega_spec_name:
        raise ValueError("vega_spec_name must name a chart, e.g. 'wandb/line/v0'")
    chosen = {k: v for k, v in fields.items() if v is not None}
    return CustomChart(vega_spec_name, data_table, chosen, string_fields, split_table)


def line(
    table: Table, x: str, y: str, stroke: str | None = None, title: str = "", split_table: bool = False
) -> CustomChart:
    return plot_table(
        "wandb/line/v0", table, {"x": x, "y": y, "stroke": stroke}, {"title": title}, split_table
    )


def scatter(table: Table, x: str, y: str, title: str = "", split_table: bool = False) -> CustomChart:
    return plot_table("wandb/scatter/v0", table, {"x": x, "y": y}, {"title": title}, split_table)


def bar(table: Table, label: str, value: str, title: str = "", split_table: bool = False) -> CustomChart:
    return plot_table("wandb/bar/v0", table, {"label": label, "value": value}, {"title": title}, split_table)


def histogram(table: Table, value: str, title: str = "", split_table: bool = False) -> CustomChart:
    return plot_table("wandb/histogram/v0", table, {"value": value}, {"title": title}, split_table)


def line_series(
    xs: Iterable[Iterable[Any]] | Iterable[Any],
    ys: Iterable[Iterable[Any]],
    keys: Iterable[str] | None = None,
    title: str = "",
    xname: str = "x",
    split_table: bool = False,
) -> CustomChart:
    """Several lines in one chart: one x series for all (or one per line), a y series per line."""
    ys = [list(y) for y in ys]
    xs = list(xs)
    if not xs or not isinstance(xs[0], Iterable) or isinstance(xs[0], (str, bytes)):
        xs = [xs] * len(ys)
    if len(xs) != len(ys):
        raise ValueError(f"Number of x-series ({len(xs)}) must match y-series ({len(ys)}).")
    names = [f"line_{i}" for i in range(len(ys))] if keys is None else list(keys)
    if len(names) != len(ys):
        raise ValueError(f"Number of keys ({len(names)}) must match y-series ({len(ys)}).")
    data = [
        [x, names[i], y]
        for i, (xx, yy) in enumerate(zip(xs, ys, strict=True))
        for x, y in zip(xx, yy, strict=False)
    ]
    table = Table(data=data, columns=["step", "lineKey", "lineVal"])
    fields = {"step": "step", "lineKey": "lineKey", "lineVal": "lineVal"}
    return plot_table("wandb/lineseries/v0", table, fields, {"title": title, "xname": xname}, split_table)


def confusion_matrix(
    probs: Sequence[Sequence[float]] | None = None,
    y_true: Sequence[Any] | None = None,
    preds: Sequence[Any] | None = None,
    class_names: Sequence[str] | None = None,
    title: str = "Confusion Matrix Curve",
    split_table: bool = False,
) -> CustomChart:
    """Counts of (actual, predicted) class pairs, from predictions or from probabilities (argmax)."""
    if probs is not None and preds is not None:
        raise ValueError("Only one of `probs` or `preds` should be provided, not both.")
    if probs is not None:
        preds = np.argmax(np.asarray(probs), axis=1).tolist()
    if preds is None or y_true is None:
        raise ValueError("confusion_matrix needs y_true and one of preds or probs")
    preds, y_true = list(np.asarray(preds).tolist()), list(np.asarray(y_true).tolist())
    if len(preds) != len(y_true):
        raise ValueError("The number of predictions and true labels must be equal.")
    if class_names is not None:
        n = len(class_names)
        index: Iterable[Any] = range(n)
        if len(set(preds)) > n:
            raise ValueError("The number of unique predicted classes exceeds the number of class names.")
        if len(set(y_true)) > n:
            raise ValueError("The number of unique true labels exceeds the number of class names.")
    else:
        index = set(preds) | set(y_true)
        n = len(index)  # type: ignore[arg-type]
        class_names = [f"Class_{i + 1}" for i in range(n)]
    mapping = {value: i for i, value in enumerate(sorted(index))}
    counts = np.zeros((n, n))
    for actual, predicted in zip(y_true, preds, strict=True):
        counts[mapping[actual], mapping[predicted]] += 1
    data = [[class_names[i], class_names[j], counts[i, j]] for i in range(n) for j in range(n)]
    table = Table(columns=["Actual", "Predicted", "nPredictions"], data=data)
    fields = {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}
    return plot_table("wandb/confusion_matrix/v1", table, fields, {"title": title}, split_table)


def _sklearn_metrics(what: str) -> Any:
    try:
        import sklearn.metrics
    except ImportError:
        raise ImportError(
            f"runlake.plot.{what} needs scikit-learn (as wandb's does): pip install scikit-learn"
        ) from None
    return sklearn.metrics


def _curves(
    y_true: Any, y_probas: Any, labels: Any, classes_to_plot: Any, what: str
) -> Iterable[tuple[Any, Any, np.ndarray]]:
    """(class label, class value, that class's probability column) for each class drawn."""
    y_true, y_probas = np.asarray(y_true), np.asarray(y_probas)
    if y_probas.ndim != 2 or len(y_probas) != len(y_true):
        raise ValueError(
            f"{what}: y_probas must be (samples, classes) with a row per y_true value, got {y_probas.shape}"
        )
    classes = np.unique(y_true)
    wanted = classes if classes_to_plot is None else classes_to_plot
    for i in np.where(np.isin(classes, wanted))[0]:
        label = (
            labels[classes[i]]
            if labels is not None and isinstance(classes[i], (int, np.integer))
            else classes[i]
        )
        yield (label.item() if isinstance(label, np.generic) else label), classes[i], y_probas[:, i]


def pr_curve(
    y_true: Any = None,
    y_probas: Any = None,
    labels: list[str] | None = None,
    classes_to_plot: list[Any] | None = None,
    interp_size: int = 21,
    title: str = "Precision-Recall Curve",
    split_table: bool = False,
) -> CustomChart:
    """Precision against recall per class (one-vs-rest), interpolated at `interp_size` recalls."""
    metrics = _sklearn_metrics("pr_curve")
    interp_recall = np.linspace(0, 1, interp_size)[::-1]
    rows: list[list[Any]] = []
    for label, value, column in _curves(y_true, y_probas, labels, classes_to_plot, "pr_curve"):
        precision, recall, _ = metrics.precision_recall_curve(np.asarray(y_true), column, pos_label=value)
        precision = np.maximum.accumulate(precision)[::-1]
        recall = recall[::-1]
        picked = precision[
            np.minimum(np.searchsorted(recall, interp_recall, side="left"), len(precision) - 1)
        ]
        rows += [
            [label, round(float(p), 3), round(float(r), 3)]
            for p, r in zip(picked, interp_recall, strict=True)
        ]
    table = Table(columns=["class", "precision", "recall"], data=rows)
    strings = {"title": title, "x-axis-title": "Recall", "y-axis-title": "Precision"}
    return plot_table(
        "wandb/area-under-curve/v0",
        table,
        {"x": "recall", "y": "precision", "class": "class"},
        strings,
        split_table,
    )


def roc_curve(
    y_true: Any = None,
    y_probas: Any = None,
    labels: list[str] | None = None,
    classes_to_plot: list[Any] | None = None,
    title: str = "ROC Curve",
    split_table: bool = False,
) -> CustomChart:
    """True against false positive rate per class (one-vs-rest)."""
    metrics = _sklearn_metrics("roc_curve")
    rows: list[list[Any]] = []
    for label, value, column in _curves(y_true, y_probas, labels, classes_to_plot, "roc_curve"):
        fpr, tpr, _ = metrics.roc_curve(np.asarray(y_true), column, pos_label=value)
        rows += [[label, round(float(f), 3), round(float(t), 3)] for f, t in zip(fpr, tpr, strict=True)]
    table = Table(columns=["class", "fpr", "tpr"], data=rows)
    strings = {"title": title, "x-axis-title": "False positive rate", "y-axis-title": "True positive rate"}
    return plot_table(
        "wandb/area-under-curve/v0", table, {"x": "fpr", "y": "tpr", "class": "class"}, strings, split_table
    )


class _PlotModule(types.ModuleType):
    """Calling `runlake.plot(...)` draws a fork tree (runlake's own chart, `Lake.plot`)."""

    def __call__(
        self,
        run_ids: Sequence[str] | str,
        key: str,
        *,
        root: Any = None,
        storage_options: Any = None,
        **kwargs: Any,
    ) -> Any:
        from .lake import default

        return default(root, storage_options).plot(run_ids, key, **kwargs)


sys.modules[__name__].__class__ = _PlotModule
