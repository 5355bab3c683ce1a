"""Edits of a run that is not running (what W&B's public API allows on a finished run): its
attributes, config and summary, or its deletion. Each is one new state manifest written by a
new writer slot (so two editors, or an editor and a resume, never both win), whole and
atomically; history is never touched."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from ..errors import RunlakeError
from ..store.manifests import (
    StateDoc,
    claim_writer,
    is_running,
    read_state,
    require_project,
    write,
)
from ..store.names import check_name
from ..store.storage import Storage
from .config import jsonable
from .media import Histogram, Media

_UNSET: Any = object()


@dataclass(frozen=True)
class RunEdit:
    """What to change (a field left at its default is kept as is). `summary` is the whole new
    summary: keys it lacks are removed."""

    name: str | None = _UNSET
    tags: list[str] | None = _UNSET
    notes: str | None = _UNSET
    group: str | None = _UNSET
    job_type: str | None = _UNSET
    config: dict[str, Any] | None = _UNSET
    summary: dict[str, Any] | None = _UNSET


def _check(edit: RunEdit) -> None:
    for name in ("name", "notes", "group", "job_type"):
        value = getattr(edit, name)
        if value is not _UNSET and value is not None and not isinstance(value, str):
            raise TypeError(f"a run's {name} must be a string or None, got {type(value).__name__}")
    if edit.tags is not _UNSET and edit.tags is not None:
        if isinstance(edit.tags, str) or not all(isinstance(t, str) for t in edit.tags):
            raise TypeError(f"a run's tags must be a list of strings, got {edit.tags!r:.80}")
    for name in ("config", "summary"):
        value = getattr(edit, name)
        if value is not _UNSET and value is not None and not isinstance(value, dict):
            raise TypeError(f"a run's {name} must be a dict, got {type(value).__name__}")


def _summary_value(key: str, value: Any) -> Any:
    """A summary value as stored: a Histogram as its JSON (as log() stores it); a value that
    would need a media file is refused (log it from a run, where media files are stored)."""
    if isinstance(value, Histogram):
        return value.to_json()
    if isinstance(value, Media):
        raise TypeError(
            f"summary[{key!r}]: a {type(value).__name__} is stored as a file, which only a run writes: "
            "log it in a run (init(resume=...)) instead of setting it through the Api"
        )
    return jsonable(value)


def _claim(storage: Storage, project: str, run_id: str, verb: str) -> tuple[StateDoc, int]:
    state = read_state(storage, project, run_id)
    if is_running(storage, project, state):
        raise RunlakeError(
            f"run {run_id!r} is running: {verb} it from its own process (run.summary, run.config, "
            "run.tags...) or after it finished"
        )
    try:
        seq = claim_writer(storage, project, run_id, state, verb)
    except RunlakeError:
        raise RunlakeError(
            f"run {run_id!r} was changed by another process at the same time (an edit, a resume or "
            "a rewind); read it again and retry"
        ) from None
    return state, seq


def update_run(storage: Storage, run_id: str, edit: RunEdit) -> StateDoc:
    """Write the run's new attributes, config and summary; returns the state written."""
    check_name(run_id, "run id")
    _check(edit)
    project = require_project(storage, run_id)
    state, seq = _claim(storage, project, run_id, "edit")
    changes: dict[str, Any] = {"writer_seq": seq}
    for name in ("name", "notes", "group", "job_type"):
        value = getattr(edit, name)
        if value is not _UNSET:
            changes[name] = value
    if edit.tags is not _UNSET:
        changes["tags"] = list(edit.tags or [])
    if edit.config is not _UNSET:
        changes["config"] = jsonable(dict(edit.config or {}))
    if edit.summary is not _UNSET:
        new = {str(k): _summary_value(str(k), v) for k, v in dict(edit.summary or {}).items()}
        old = state.summary or {}
        # a key set or changed here is the user's word; a key removed is gone everywhere
        user = {k: v for k, v in (state.summary_user or {}).items() if k in new}
        user.update({k: v for k, v in new.items() if k not in old or old[k] != v})
        changes["summary"] = new
        changes["summary_user"] = user
        changes["summary_auto"] = {k: v for k, v in (state.summary_auto or {}).items() if k in new}
    updated = replace(state, **changes)
    _commit(storage, project, run_id, updated)
    return updated


def _commit(storage: Storage, project: str, run_id: str, state: StateDoc) -> None:
    """Write the new state; if that fails, give the writer slot back (a live holder of an
    unused slot would block the run's next resume for as long as this process lives)."""
    try:
        write(storage, storage.paths.meta(project, run_id, "state.json"), state)
    except BaseException:
        storage.remove(storage.paths.meta(project, run_id, f"writer-{state.writer_seq}.json"))
        raise


def delete_run(storage: Storage, run_id: str) -> None:
    """Mark the run deleted: it leaves every listing; its rows stay while a fork reads them."""
    check_name(run_id, "run id")
    project = require_project(storage, run_id)
    if read_state(storage, project, run_id).deleted_at is not None:
        return  # deleted already
    state, seq = _claim(storage, project, run_id, "delete")
    _commit(storage, project, run_id, replace(state, writer_seq=seq, deleted_at=time.time()))
