"""Reading and writing one run's manifests, without the catalog (what training processes use)."""

from __future__ import annotations

import time
from typing import Any

from ._state import derive_state
from ._storage import SEGMENT_RE, Storage
from .errors import RunlakeError, RunNotFoundError

WRITER_RE_PREFIX = "writer-"


def find_project(storage: Storage, run_id: str) -> str | None:
    """The project holding `run_id` (run ids are unique in a root), or None."""
    for project in sorted(storage.listdir(f"{storage.root}/runs")):
        if storage.exists(storage.meta_path(project, run_id, "run.json")):
            return project
    return None


def require_project(storage: Storage, run_id: str) -> str:
    project = find_project(storage, run_id)
    if project is None:
        raise RunNotFoundError(f"run {run_id!r} does not exist in root {storage.url!r}")
    return project


def read_state(storage: Storage, project: str, run_id: str) -> dict[str, Any]:
    doc = storage.read_json(storage.meta_path(project, run_id, "state.json"))
    if doc is None:
        raise RunlakeError(
            f"run {run_id!r} has no state manifest (it is still being created, or its creation "
            "failed); try again in a moment"
        )
    return doc


def read_segment(storage: Storage, project: str, run_id: str, segment: int) -> dict[str, Any]:
    doc = storage.read_json(storage.meta_path(project, run_id, f"segment-{segment}.json"))
    if doc is None:
        raise RunNotFoundError(f"run {run_id!r} has no segment {segment}")
    return doc


def segment_numbers(storage: Storage, project: str, run_id: str) -> list[int]:
    names = storage.listdir(f"{storage.run_dir(project, run_id)}/meta")
    return sorted(int(m[1]) for n in names if (m := SEGMENT_RE.fullmatch(n)))


def node_last_step(storage: Storage, project: str, run_id: str, segment: int, cutoff: int | None) -> int | None:
    """The last durable step of a node's effective history (a fork has at least reached its cutoff)."""
    parts = storage.list_parts(storage.segment_dir(project, run_id, segment))
    own = max((p.step_hi for p in parts), default=None)
    if cutoff is None:
        return own
    return cutoff if own is None else max(own, cutoff)


def is_running(state: dict[str, Any]) -> bool:
    return derive_state(state) == "running"


def claim_writer(storage: Storage, project: str, run_id: str, what: str) -> int:
    """Take the next writer slot of a run atomically: of two racing resumes/rewinds one wins."""
    names = storage.listdir(f"{storage.run_dir(project, run_id)}/meta")
    taken = [int(n[len(WRITER_RE_PREFIX) : -5]) for n in names if n.startswith(WRITER_RE_PREFIX) and n.endswith(".json")]
    seq = max(taken, default=-1) + 1
    doc = f'{{"seq": {seq}, "what": "{what}", "at": {time.time()}}}'.encode()
    if not storage.create_exclusive(storage.meta_path(project, run_id, f"writer-{seq}.json"), doc):
        raise RunlakeError(
            f"run {run_id!r} was resumed or rewound by another process at the same time; "
            "exactly one may continue it (that one won)"
        )
    return seq
