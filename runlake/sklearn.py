"""`runlake.sklearn.plot_*`, as `wandb.sklearn`: scikit-learn model charts logged to the current
run, under W&B's keys ("roc", "precision_recall", "confusion_matrix", "feature_importances",
"class_proportions", "summary_metrics", "learning_curve", "calibration_curve", "residuals",
"outlier_candidates", "elbow_curve", "silhouette_plot"). Each is a chart of `runlake.plot`: a
Table of the numbers (computed with scikit-learn itself) and a spec naming the chart.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from . import plot as charts
from .errors import RunlakeError
from .write import registry
from .write.chart import CustomChart
from .write.table import Table


def _sk() -> Any:
    try:
        import sklearn  # noqa: F401
        import sklearn.base
        import sklearn.calibration
        import sklearn.metrics
        import sklearn.model_selection
        import sklearn.naive_bayes
    except ImportError:
        raise ImportError("runlake.sklearn needs scikit-learn: pip install scikit-learn") from None
    return sklearn


def _log(key: str, chart: CustomChart) -> None:
    run: Any = registry.current()
    if run is None:
        raise RunlakeError(f"runlake.sklearn: call runlake.init() before plotting {key!r}")
    run.log({key: chart})


def _labels(values: Any, labels: Any) -> list[Any]:
    out = []
    for v in np.asarray(values).tolist():
        out.append(labels[v] if labels is not None and isinstance(v, int) and 0 <= v < len(labels) else v)
    return out


def plot_roc(
    y_true: Any = None,
    y_probas: Any = None,
    labels: Any = None,
    plot_micro: bool = True,
    plot_macro: bool = True,
    classes_to_plot: Any = None,
) -> None:
    _log("roc", charts.roc_curve(y_true, y_probas, labels, classes_to_plot))


def plot_precision_recall(
    y_true: Any = None,
    y_probas: Any = None,
    labels: Any = None,
    plot_micro: bool = True,
    classes_to_plot: Any = None,
) -> None:
    _log("precision_recall", charts.pr_curve(y_true, y_probas, labels, classes_to_plot))


def plot_confusion_matrix(
    y_true: Any = None,
    y_pred: Any = None,
    labels: Any = None,
    true_labels: Any = None,
    pred_labels: Any = None,
    normalize: bool = False,
) -> None:
    sk = _sk()
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.unique(np.concatenate([y_true, y_pred]))
    matrix = sk.metrics.confusion_matrix(y_true, y_pred, labels=classes).astype(float)
    if normalize:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    names = _labels(classes, labels)
    data = [
        [names[i], names[j], float(matrix[i, j])] for i in range(len(classes)) for j in range(len(classes))
    ]
    table = Table(columns=["Actual", "Predicted", "nPredictions"], data=data)
    fields = {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}
    _log(
        "confusion_matrix",
        charts.plot_table("wandb/confusion_matrix/v1", table, fields, {"title": "Confusion Matrix"}),
    )


def plot_feature_importances(
    model: Any = None,
    feature_names: Any = None,
    title: str = "Feature Importance",
    max_num_features: int = 50,
) -> None:
    importances = getattr(model, "feature_importances_", None)
    if importances is None and getattr(model, "coef_", None) is not None:
        importances = (
            np.abs(np.asarray(model.coef_)).reshape(-1, np.asarray(model.coef_).shape[-1]).mean(axis=0)
        )
    if importances is None:
        raise ValueError(
            f"plot_feature_importances: {type(model).__name__} has neither feature_importances_ nor coef_ (is it fitted?)"
        )
    importances = np.asarray(importances, dtype=float)
    names = list(feature_names) if feature_names is not None else [str(i) for i in range(len(importances))]
    order = np.argsort(-importances)[:max_num_features]
    table = Table(
        columns=["feature_names", "importance"], data=[[str(names[i]), float(importances[i])] for i in order]
    )
    _log("feature_importances", charts.bar(table, "feature_names", "importance", title=title))


def plot_class_proportions(y_train: Any = None, y_test: Any = None, labels: Any = None) -> None:
    rows = []
    for dataset, values in (("train", y_train), ("test", y_test)):
        classes, counts = np.unique(np.asarray(values), return_counts=True)
        rows += [[name, dataset, int(c)] for name, c in zip(_labels(classes, labels), counts, strict=True)]
    table = Table(columns=["class", "dataset", "count"], data=rows)
    fields = {"x": "class", "color": "dataset", "y": "count"}
    _log(
        "class_proportions",
        charts.plot_table("wandb/class_proportions/v1", table, fields, {"title": "Class Proportions"}),
    )


def plot_summary_metrics(
    model: Any = None, X: Any = None, y: Any = None, X_test: Any = None, y_test: Any = None
) -> None:  # noqa: N803
    sk = _sk()
    m = sk.metrics
    predicted = model.predict(X_test)
    if sk.base.is_classifier(model):
        average = "weighted"
        values = {
            "accuracy": m.accuracy_score(y_test, predicted),
            "precision": m.precision_score(y_test, predicted, average=average, zero_division=0),
            "recall": m.recall_score(y_test, predicted, average=average, zero_division=0),
            "f1": m.f1_score(y_test, predicted, average=average, zero_division=0),
        }
    else:
        values = {
            "mae": m.mean_absolute_error(y_test, predicted),
            "mse": m.mean_squared_error(y_test, predicted),
            "r2_score": m.r2_score(y_test, predicted),
        }
    name = type(model).__name__
    table = Table(
        columns=["metric_name", "metric_value", "model_name"],
        data=[[k, round(float(v), 4), name] for k, v in values.items()],
    )
    _log("summary_metrics", charts.bar(table, "metric_name", "metric_value", title="Summary Metrics"))


def plot_learning_curve(
    model: Any = None,
    X: Any = None,
    y: Any = None,
    cv: Any = None,
    shuffle: bool = False,
    random_state: Any = None,
    train_sizes: Any = None,
    n_jobs: int = 1,
    scoring: Any = None,
) -> None:  # noqa: N803
    sk = _sk()
    sizes = np.linspace(0.1, 1.0, 5) if train_sizes is None else train_sizes
    used, train, test = sk.model_selection.learning_curve(
        model,
        X,
        y,
        cv=cv,
        train_sizes=sizes,
        n_jobs=n_jobs,
        scoring=scoring,
        shuffle=shuffle,
        random_state=random_state,
    )
    rows = [["train", float(s), int(n)] for n, s in zip(used, train.mean(axis=1), strict=True)]
    rows += [["test", float(s), int(n)] for n, s in zip(used, test.mean(axis=1), strict=True)]
    table = Table(columns=["dataset", "score", "train_size"], data=rows)
    _log(
        "learning_curve", charts.line(table, "train_size", "score", stroke="dataset", title="Learning Curve")
    )


def plot_calibration_curve(
    clf: Any = None, X: Any = None, y: Any = None, clf_name: str = "Classifier"
) -> None:  # noqa: N803
    sk = _sk()
    probabilities = clf.predict_proba(X)[:, 1] if hasattr(clf, "predict_proba") else clf.decision_function(X)
    if not hasattr(clf, "predict_proba"):
        probabilities = (probabilities - probabilities.min()) / max(float(np.ptp(probabilities)), 1e-12)
    fraction, mean_predicted = sk.calibration.calibration_curve(
        np.asarray(y) == np.max(y), probabilities, n_bins=10
    )
    rows = [[clf_name, float(p), float(f)] for p, f in zip(mean_predicted, fraction, strict=True)]
    rows += [["Perfectly calibrated", 0.0, 0.0], ["Perfectly calibrated", 1.0, 1.0]]
    table = Table(columns=["model", "mean_predicted_value", "fraction_of_positives"], data=rows)
    _log(
        "calibration_curve",
        charts.line(
            table, "mean_predicted_value", "fraction_of_positives", stroke="model", title="Calibration Curve"
        ),
    )


def plot_residuals(regressor: Any = None, X: Any = None, y: Any = None) -> None:  # noqa: N803
    predicted = np.asarray(regressor.predict(X), dtype=float)
    residuals = np.asarray(y, dtype=float) - predicted
    table = Table(
        columns=["y_pred", "residuals"],
        data=[[float(p), float(r)] for p, r in zip(predicted, residuals, strict=True)],
    )
    _log("residuals", charts.scatter(table, "y_pred", "residuals", title="Residuals Plot"))


def plot_outlier_candidates(regressor: Any = None, X: Any = None, y: Any = None) -> None:  # noqa: N803
    """Cook's distance of each sample (a linear model's influence measure), as W&B's does."""
    x = np.asarray(X, dtype=float)
    design = np.column_stack([np.ones(len(x)), x])
    leverage = np.einsum("ij,ji->i", design, np.linalg.pinv(design))
    residuals = np.asarray(y, dtype=float) - np.asarray(regressor.predict(X), dtype=float)
    p = design.shape[1]
    mse = float(residuals @ residuals) / max(len(x) - p, 1)
    distance = residuals**2 / (p * max(mse, 1e-12)) * leverage / np.maximum((1 - leverage) ** 2, 1e-12)
    table = Table(columns=["instance", "distance"], data=[[i, float(d)] for i, d in enumerate(distance)])
    _log(
        "outlier_candidates",
        charts.bar(table, "instance", "distance", title="Cook's Distance Outlier Detection"),
    )


def plot_elbow_curve(
    clusterer: Any = None,
    X: Any = None,
    cluster_ranges: Any = None,
    n_jobs: int = 1,
    show_cluster_time: bool = True,
) -> None:  # noqa: N803
    sk = _sk()
    ranges = list(cluster_ranges) if cluster_ranges is not None else list(range(1, 10, 2))
    rows = []
    for k in ranges:
        model = sk.base.clone(clusterer).set_params(n_clusters=k)
        started = time.perf_counter()
        model.fit(X)
        rows.append([k, float(model.inertia_), time.perf_counter() - started])
    table = Table(columns=["cluster_ranges", "errors", "clustering_time"], data=rows)
    _log("elbow_curve", charts.line(table, "cluster_ranges", "errors", title="Elbow Plot"))


def plot_silhouette(
    clusterer: Any = None,
    X: Any = None,
    cluster_labels: Any = None,
    labels: Any = None,
    metric: str = "euclidean",
    kmeans: bool = True,
) -> None:  # noqa: N803
    sk = _sk()
    assigned = clusterer.fit_predict(X) if kmeans else np.asarray(cluster_labels)
    values = sk.metrics.silhouette_samples(X, assigned, metric=metric)
    rows = [[i, int(c), float(v)] for i, (c, v) in enumerate(zip(assigned, values, strict=True))]
    table = Table(columns=["instance", "cluster", "silhouette"], data=rows)
    _log("silhouette_plot", charts.bar(table, "instance", "silhouette", title="Silhouette Plot"))


def plot_classifier(
    model: Any,
    X_train: Any,
    X_test: Any,
    y_train: Any,
    y_test: Any,
    y_pred: Any,
    y_probas: Any,
    labels: Any = None,
    is_binary: bool = False,
    model_name: str = "Classifier",
    feature_names: Any = None,
    log_learning_curve: bool = False,
) -> None:  # noqa: N803
    """Every classifier chart W&B's plot_classifier logs, in its order."""
    sk = _sk()
    multinomial_nb = isinstance(model, sk.naive_bayes.MultinomialNB)
    if not multinomial_nb:
        plot_feature_importances(model, feature_names)
    if log_learning_curve:
        plot_learning_curve(model, X_train, y_train)
    plot_confusion_matrix(y_test, y_pred, labels)
    plot_summary_metrics(model, X=X_train, y=y_train, X_test=X_test, y_test=y_test)
    plot_class_proportions(y_train, y_test, labels)
    if not multinomial_nb and len(np.unique(y_train)) == 2:
        plot_calibration_curve(model, X_train, y_train, model_name)
    plot_roc(y_test, y_probas, labels)
    plot_precision_recall(y_test, y_probas, labels)


def plot_regressor(
    model: Any, X_train: Any, X_test: Any, y_train: Any, y_test: Any, model_name: str = "Regressor"
) -> None:  # noqa: N803
    plot_learning_curve(model, X_train, y_train)
    plot_summary_metrics(model, X_train, y_train, X_test, y_test)
    plot_residuals(model, X_train, y_train)
    plot_outlier_candidates(model, X_train, y_train)


def plot_clusterer(
    model: Any, X_train: Any, cluster_labels: Any, labels: Any = None, model_name: str = "Clusterer"
) -> None:  # noqa: N803
    plot_elbow_curve(model, X_train)
    plot_silhouette(model, X_train, cluster_labels, labels=labels, kmeans=hasattr(model, "n_clusters"))
