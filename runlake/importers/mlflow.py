"""`runlake import mlflow TRACKING_URI [--experiment NAME]`: MLflow runs through
`mlflow.MlflowClient` (a `sqlite:///` file, an `./mlruns` directory, or an HTTP server).

Every metric's complete history (`get_metric_history`, not the latest value) with MLflow's
step and timestamp; a run's metrics logged at different steps merge by step into one runlake
run. Params are the config (strings, as MLflow keeps them), the run name, tags, status and
times come along; a nested run's parent (`mlflow.parentRunId`) is a link in the metadata, not
a fork (MLflow's nested runs have separate histories).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from ..errors import RunlakeError
from .model import Skipped, SourceRun, SourceSegment

_STATES = {"FINISHED": ("finished", 0), "FAILED": ("failed", 1), "KILLED": ("failed", 137)}


def _client(uri: str) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise RunlakeError(
            "runlake import mlflow needs the mlflow package: pip install 'runlake[import]'"
        ) from None
    if "://" not in uri:
        if not os.path.isdir(uri) or not any(
            os.path.isfile(os.path.join(uri, d, "meta.yaml")) for d in os.listdir(uri)
        ):
            raise RunlakeError(
                f"{uri} is not an MLflow tracking URI or mlruns directory: expected sqlite:///path.db, "
                "http(s)://host:port, or an mlruns directory (experiment folders with meta.yaml)"
            )
        # reading an old file store is allowed (MLflow 3 only warns writers away from it)
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = "file://" + os.path.abspath(uri)
    elif uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :]
        if not os.path.isfile(path):
            raise RunlakeError(
                f"{path} does not exist: expected an MLflow sqlite database (sqlite:///path.db)"
            )
    try:
        return MlflowClient(tracking_uri=uri)
    except Exception as exc:  # noqa: BLE001 - MLflow's own message, with the URI
        raise RunlakeError(f"{uri} cannot be opened as an MLflow tracking store: {exc}") from None


def _paged(fetch: Any) -> list[Any]:
    out, token = [], None
    while True:
        page = fetch(token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def read(
    uri: str, project: str | None, skipped: list[Skipped], experiment: str | None = None
) -> list[SourceRun]:
    # MLflow's own dependencies warn about their deprecations: not the user's to act on
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return _read(uri, project, skipped, experiment)


def _read(uri: str, project: str | None, skipped: list[Skipped], experiment: str | None) -> list[SourceRun]:
    client = _client(uri)
    try:
        experiments = _paged(lambda token: client.search_experiments(page_token=token))
    except Exception as exc:  # noqa: BLE001 - the store's own error, named
        raise RunlakeError(f"{uri} cannot be read as an MLflow tracking store: {exc}") from None
    if experiment is not None:
        experiments = [e for e in experiments if e.name == experiment]
        if not experiments:
            raise RunlakeError(f"{uri} has no MLflow experiment named {experiment!r}")
    runs = []
    for exp in experiments:
        try:
            found = _paged(lambda token, exp=exp: client.search_runs([exp.experiment_id], page_token=token))
        except Exception as exc:  # noqa: BLE001 - one damaged run fails the whole search: one by one
            found = _one_by_one(client, uri, exp, skipped, exc)
        for run in found:
            try:
                runs.append(_run(client, run, exp.name, project, uri))
            except Exception as exc:  # noqa: BLE001 - a broken run is listed, the others come in
                skipped.append(Skipped(f"{uri} run {run.info.run_id}", f"could not be read: {exc}"))
    return runs


def _one_by_one(client: Any, uri: str, exp: Any, skipped: list[Skipped], cause: Exception) -> list[Any]:
    """An experiment's runs read one at a time (a file store's run directories), when a search
    over all of them failed on a damaged one: the others still come in, the damaged are listed."""
    base = uri.removeprefix("file://")
    directory = os.path.join(base, str(exp.experiment_id))
    if not os.path.isdir(directory):
        skipped.append(Skipped(f"{uri} experiment {exp.name!r}", f"its runs could not be listed: {cause}"))
        return []
    found = []
    for run_id in sorted(os.listdir(directory)):
        if not os.path.isfile(os.path.join(directory, run_id, "meta.yaml")):
            continue
        try:
            found.append(client.get_run(run_id))
        except Exception as exc:  # noqa: BLE001 - this run's files are damaged
            skipped.append(Skipped(f"{uri} run {run_id}", f"could not be read: {exc}"))
    return found


def _run(client: Any, run: Any, experiment: str, project: str | None, uri: str) -> SourceRun:
    info, data = run.info, run.data
    tags = dict(data.tags)
    state, code = _STATES.get(info.status, ("running", None))
    out = SourceRun(
        source="mlflow",
        source_id=info.run_id,
        project=project or _project_name(experiment),
        name=info.run_name or tags.get("mlflow.runName"),
        notes=tags.get("mlflow.note.content"),
        tags=sorted(f"{k}={v}" if v else k for k, v in tags.items() if not k.startswith("mlflow.")),
        config=dict(data.params),
        created_at=(info.start_time or 0) / 1000.0,
        finished_at=info.end_time / 1000.0 if info.end_time else None,
        state=state,
        exit_code=code,
        where=f"{uri} run {info.run_id}",
    )
    out.metadata = {"mlflow_experiment": experiment, "mlflow_tags": tags, "mlflow_status": info.status}
    if tags.get("mlflow.parentRunId"):
        out.metadata["parent_run_id"] = tags["mlflow.parentRunId"]  # nested: a link, not a fork
    segment = SourceSegment("root", None, None, out.created_at)
    rows = segment.rows
    for key in sorted(data.metrics):
        # MLflow keeps every value logged at a step; the last one logged there wins
        for metric in sorted(
            client.get_metric_history(info.run_id, key), key=lambda m: (m.step, m.timestamp)
        ):
            rows.number(int(metric.step), key, float(metric.value))
            rows.stamp(int(metric.step), metric.timestamp / 1000.0)
    rows.into(segment.points)
    out.segments.append(segment)
    return out


def _project_name(experiment: str) -> str:
    import re

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", experiment).strip("-.")[:128]
    return safe or "mlflow"
