"""W&B's shared mode: several processes (DDP ranks, nodes) log into one run.
`init(id=..., settings=Settings(mode="shared", x_label=..., x_primary=...))`.

The primary (`x_primary=True`, the default) creates the run, or continues it if it exists, and
owns its state, as any writer does. Every other process attaches: it waits for the run to
exist, then writes its own parts into the run's current segment (`part-...@<label>.parquet`,
its label in their names), its own console and system rows (its label in them), and its own
state beside the run's (`meta/shared-<segment>-<label>.json`, which also tells readers to index
its parts). It never takes the run's writer slot, so it neither fences nor is fenced by the
primary; it stops if the run moves on to another segment (a rewind).

Steps: W&B's server numbers a shared run's steps in arrival order and ignores `log(step=)`.
runlake has no server to order arrivals, so each process keeps its own step counter, from the
start of the run's current segment (0 for a new run), and honours `step=`:
DDP ranks log in lockstep, so their rows land on the same steps and read as one row; a key
logged by two processes at the same step keeps both values in `raw_history`, and `history()`
shows one of them. Give each process its own keys (W&B's advice for shared mode too).
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import RunNotFoundError
from ..store import settings
from ..store.manifests import find_project, read_identity, read_segment, read_state
from ..store.storage import Storage
from .nodes import StartOptions, _existing_meta, _refuse_deleted, _run_options
from .run import Run, RunMeta
from .writer import Writer

ATTACH_SECONDS = 120.0  # how long a non-primary process waits for the primary to create the run


def attach(storage: Storage, run_id: str, label: str, config: dict[str, Any], extras: StartOptions) -> Run:
    """A non-primary process's handle on the shared run `run_id` (see the module doc)."""
    deadline = time.monotonic() + ATTACH_SECONDS
    while True:
        project = find_project(storage, run_id)
        state = None
        if project is not None and storage.exists(storage.paths.meta(project, run_id, "state.json")):
            state = read_state(storage, project, run_id)
        if project is not None and state is not None:
            break
        if time.monotonic() > deadline:
            raise RunNotFoundError(
                f"shared mode: run {run_id!r} does not exist in root {storage.url!r} after "
                f"{ATTACH_SECONDS:.0f} s: start the primary process (x_primary=True) first"
            )
        time.sleep(min(settings.flush_interval(), 0.5))
    _refuse_deleted(state, run_id, "attached to")
    segment = int(state.segment)
    cutoff = read_segment(storage, project, run_id, segment).cutoff
    identity = read_identity(storage, project, run_id)
    meta = _existing_meta(identity, state, RunMeta())
    run = Run(
        writer=Writer(storage, project, run_id, segment, local_dir=extras.local_dir, label=label),
        name=meta.name,
        start_step=0 if cutoff is None else int(cutoff) + 1,  # its own counter, from the segment's start
        config={**(state.config or {}), **config},
        summary_auto={},
        summary_user={},
        runtime_offset=float(state.runtime or 0.0),
        inherit=None,
        parts_written=0,
        **_run_options(meta, extras, state),
    )
    run.flush()
    return run
