"""Reading and writing one run's manifests, without the catalog (what training processes use)."""

from __future__ import annotations

import json
import time
from typing import Any

from ._state import derive_state, writer_alive, writer_identity
from ._storage import SEGMENT_RE, Storage
from .errors import RunlakeError, RunNotFoundError


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


def node_last_step(
    storage: Storage, project: str, run_id: str, segment: int, cutoff: int | None
) -> int | None:
    """The last durable step of a node's effective history (a fork has at least reached its cutoff)."""
    parts = storage.list_parts(storage.segment_dir(project, run_id, segment))
    own = max((p.step_hi for p in parts), default=None)
    packed = storage.read_json(storage.meta_path(project, run_id, f"packed-{segment}.json"))
    if packed is not None:  # compaction moved (some of) its rows into a pack
        own = max(own if own is not None else packed["step_hi"], packed["step_hi"])
    if cutoff is None:
        return own
    return cutoff if own is None else max(own, cutoff)


def is_running(state: dict[str, Any]) -> bool:
    return derive_state(state) == "running"


def claim_writer(storage: Storage, project: str, run_id: str, state: dict[str, Any], what: str) -> int:
    """Take the writer slot after the one in `state`, atomically: of two racing resumes or
    rewinds that read the same state, exactly one wins. A slot taken by a claimant that died
    before taking over is skipped."""
    seq = int(state.get("writer_seq") or 0) + 1
    while True:
        doc = {"seq": seq, "what": what, "at": time.time(), **writer_identity()}
        path = storage.meta_path(project, run_id, f"writer-{seq}.json")
        if storage.create_exclusive(path, json.dumps(doc).encode()):
            return seq
        other = storage.read_json(path) or {}
        if writer_alive({**other, "heartbeat": other.get("at")}):
            raise RunlakeError(
                f"run {run_id!r} was resumed or rewound by another process at the same time "
                f"(pid {other.get('pid')} on {other.get('host')}); exactly one may continue it"
            )
        seq += 1
