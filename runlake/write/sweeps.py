"""A sweep on storage: its configuration (written once), and its trials, each created
exclusively by the agent that claims it (as runs claim ids), so several agents on several
machines share one sweep through the root and each trial runs exactly once. A trial whose
agent died while it ran reads `crashed` (its run, and the history it logged, stay)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import polars as pl

from ..errors import RunlakeError
from ..store import settings
from ..store.liveness import holder_alive, writer_identity
from ..store.manifests import SweepDoc, TrialDoc, find_project, is_running, read, read_state, write
from ..store.names import check_name, new_run_id
from ..store.storage import Storage


def new_sweep_id() -> str:
    return uuid.uuid4().hex[:8]


def create(storage: Storage, project: str, config: dict[str, Any], entity: str | None = None) -> SweepDoc:
    check_name(project, "project name")
    for _ in range(5):
        doc = SweepDoc(
            sweep_id=new_sweep_id(), project=project, config=config, entity=entity, created_at=time.time()
        )
        if storage.create_exclusive(storage.paths.sweep_doc(project, doc.sweep_id), _encode(doc)):
            return doc
    raise RunlakeError("could not pick a free sweep id")  # pragma: no cover - 8 hex digits, 5 tries


def _encode(doc: Any) -> bytes:
    import json

    return json.dumps(doc.to_json()).encode()


def find(storage: Storage, sweep_id: str, project: str | None = None) -> SweepDoc:
    """A sweep by id (in `project`, else in whichever project holds it)."""
    check_name(sweep_id, "sweep id")
    projects = [project] if project else sorted(storage.listdir(f"{storage.root}/sweeps"))
    for name in projects:
        doc = read(storage, storage.paths.sweep_doc(name, sweep_id), SweepDoc)
        if doc is not None:
            return doc
    where = f"project {project!r} of " if project else ""
    raise RunlakeError(
        f"no sweep {sweep_id!r} in {where}root {storage.url}: create one with runlake.sweep(config)"
    )


def sweeps(storage: Storage, project: str | None = None) -> list[SweepDoc]:
    projects = [project] if project else sorted(storage.listdir(f"{storage.root}/sweeps"))
    out = []
    for name in projects:
        for sweep_id in sorted(storage.listdir(f"{storage.root}/sweeps/{name}")):
            doc = read(storage, storage.paths.sweep_doc(name, sweep_id), SweepDoc)
            if doc is not None:
                out.append(doc)
    return out


def trials(storage: Storage, sweep: SweepDoc) -> list[TrialDoc]:
    """Every trial, in order; a running trial whose agent is gone reads `crashed`."""
    directory = f"{storage.paths.sweep_dir(sweep.project, sweep.sweep_id)}/trials"
    out = []
    for name in sorted(storage.listdir(directory)):
        if not name.endswith(".json"):
            continue
        doc = read(storage, f"{directory}/{name}", TrialDoc)
        if doc is None:
            continue
        if doc.state == "running" and not _alive(storage, doc):
            doc.state = "crashed"
        out.append(doc)
    return out


def _alive(storage: Storage, trial: TrialDoc) -> bool:
    """Is a running trial still running? Its agent's pid answers on this host (ten heartbeat
    timeouts from the claim elsewhere); failing that, a trial is as alive as its run's
    heartbeat (a program the agent started may outlive it; another machine's agent)."""
    if holder_alive(trial.to_json(), trial.at, settings.heartbeat_timeout() * 10):
        return True
    project = find_project(storage, trial.run_id)
    if project is None:
        return False
    try:
        return is_running(storage, project, read_state(storage, project, trial.run_id))
    except RunlakeError:
        return False


def claim(storage: Storage, sweep: SweepDoc, number: int, params: dict[str, Any]) -> TrialDoc | None:
    """Trial `number` with `params`, if no agent took that number first (None: taken)."""
    doc = TrialDoc(
        sweep_id=sweep.sweep_id,
        number=number,
        params=params,
        run_id=new_run_id(),
        state="running",
        at=time.time(),
        **writer_identity(),
    )
    path = storage.paths.trial(sweep.project, sweep.sweep_id, number)
    return doc if storage.create_exclusive(path, _encode(doc)) else None


def end(storage: Storage, sweep: SweepDoc, trial: TrialDoc, state: str) -> None:
    """The trial's outcome (finished, failed, early_terminated), written whole over its claim."""
    trial.state, trial.ended_at = state, time.time()
    write(storage, storage.paths.trial(sweep.project, sweep.sweep_id, trial.number), trial)


def sweeps_frame(storage: Storage, project: str | None = None) -> pl.DataFrame:
    """`Lake.sweeps()`: one row per sweep with its trials' states counted."""
    rows = []
    for doc in sweeps(storage, project):
        states = [t.state for t in trials(storage, doc)]
        rows.append(
            {
                "sweep_id": doc.sweep_id,
                "project": doc.project,
                "entity": doc.entity,
                "method": doc.config.get("method"),
                "metric": json.dumps(doc.config.get("metric")) if doc.config.get("metric") else None,
                "created_at": doc.created_at,
                "config": json.dumps(doc.config),
                "trials": len(states),
                "running": states.count("running"),
                "finished": states.count("finished"),
                "failed": states.count("failed") + states.count("crashed"),
                "early_terminated": states.count("early_terminated"),
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None)


def trials_frame(storage: Storage, sweep_id: str, project: str | None = None) -> pl.DataFrame:
    """`Lake.trials()`: a sweep's trials in order."""
    doc = find(storage, sweep_id, project)
    return pl.DataFrame(
        [
            {
                "number": t.number,
                "run_id": t.run_id,
                "state": t.state,
                "params": json.dumps(t.params),
                "at": t.at,
                "ended_at": t.ended_at,
                "host": t.host,
                "pid": t.pid,
            }
            for t in trials(storage, doc)
        ],
        schema={
            "number": pl.Int64,
            "run_id": pl.String,
            "state": pl.String,
            "params": pl.String,
            "at": pl.Float64,
            "ended_at": pl.Float64,
            "host": pl.String,
            "pid": pl.Int64,
        },
    )
