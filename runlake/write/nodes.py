"""Making a run's node: create a run, fork one, rewind, re-fork or resume it. Each validates
what it can before writing, claims the id or the writer slot, and writes the manifests in the
order readers rely on (segment, then state; run.json last for a new run). `init()` (start.py)
parses the arguments and picks one of these."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ForkPointError, RunlakeError, RunNotFoundError
from ..read.inherit import inherited_summary
from ..store.liveness import holder_alive, writer_identity
from ..store.manifests import (
    RunIdentity,
    SegmentDoc,
    StateDoc,
    WriterClaim,
    claim_writer,
    find_project,
    is_running,
    node_last_step,
    read_identity,
    read_segment,
    read_state,
    require_project,
    segment_numbers,
    write,
)
from ..store.names import StepSpec, new_run_id
from ..store.storage import Storage
from . import registry
from .run import Run, RunMeta
from .writer import Writer


@dataclass(frozen=True)
class StartOptions:
    """What `init()` passes on to the node it makes, beyond config and attributes (typed: this
    was an untyped dict)."""

    metadata: dict[str, Any] = field(default_factory=dict)
    entity: str | None = None
    allow_val_change: bool = False
    local_dir: str | None = None
    json_keys: list[str] | None = None
    metric_state: dict[str, Any] | None = None
    source: str | None = None
    source_id: str | None = None


def _source_last_step(storage: Storage, project: str, run_id: str, state: StateDoc) -> tuple[int, int | None]:
    segment = int(state.segment)
    doc = read_segment(storage, project, run_id, segment)
    return segment, node_last_step(storage, project, run_id, segment, doc.cutoff)


def _check_point(run_id: str, step: int, last: int | None, verb: str) -> None:
    if last is None:
        raise ForkPointError(f"cannot {verb} run {run_id!r} at step {step}: it has no durable steps yet")
    if step > last:
        raise ForkPointError(f"cannot {verb} run {run_id!r} at step {step}: its last step is {last}")


def _inherit(storage: Storage, parent: SegmentDoc | None) -> Callable[[], dict[str, Any]] | None:
    """How a new node reads its inherited summary when first needed (None: it has none)."""
    if (
        parent is None
        or parent.parent_run_id is None
        or parent.parent_segment is None
        or parent.cutoff is None
    ):
        return None
    project, run_id, segment, cutoff = (
        parent.parent_project or "",
        parent.parent_run_id,
        int(parent.parent_segment),
        int(parent.cutoff),
    )
    return lambda: inherited_summary(storage, project, run_id, segment, cutoff)


def fork(
    storage: Storage,
    project: str,
    run_id: str | None,
    meta: RunMeta,
    config: dict[str, Any],
    spec: StepSpec,
    extras: StartOptions,
) -> Run:
    source_project = require_project(storage, spec.run_id)
    live = registry.get(storage.key, spec.run_id)
    if live is not None:
        live.flush_if_dirty()  # so any step it has logged can be a fork point
    state = read_state(storage, source_project, spec.run_id)
    _refuse_deleted(state, spec.run_id, "forked")
    if state.watermark is not None and spec.step <= int(state.watermark):
        # at or below the durable watermark: a valid fork point without listing the parts,
        # so forking costs the same whatever the source's size
        segment = int(state.segment)
    else:  # beyond it: parts a killed writer left after its last state update may hold it
        segment, last = _source_last_step(storage, source_project, spec.run_id, state)
        _check_point(spec.run_id, spec.step, last, "fork")
    if run_id is not None and (existing := find_project(storage, run_id)) is not None:
        raise RunlakeError(
            f"run {run_id!r} already exists (in project {existing!r}): pick another id for the fork"
        )
    parent = SegmentDoc(
        run_id="",
        segment=0,
        project=project,
        kind="fork",
        parent_project=source_project,
        parent_run_id=spec.run_id,
        parent_segment=segment,
        cutoff=spec.step,
    )
    # Forking at the source's watermark (PBT forks the latest step): the summary the source
    # wrote with that watermark is exactly the inherited one, so no history needs reading.
    inherited = None
    if state.watermark == spec.step and not state.inherited_pending and state.segment == segment:
        inherited = dict(state.summary_auto or {})
    extras = replace(extras, json_keys=list(state.json_keys or []))
    return create(
        storage, project, run_id or new_run_id(), meta, config, parent, spec.step + 1, inherited, extras
    )


def create(
    storage: Storage,
    project: str,
    run_id: str,
    meta: RunMeta,
    config: dict[str, Any],
    parent: SegmentDoc | None,
    start_step: int,
    inherited: dict[str, Any] | None = None,
    extras: StartOptions | None = None,
) -> Run:
    extras = extras or StartOptions()
    now = time.time()
    with new_run(storage, project, run_id, WriterClaim(seq=0, what="create", at=now, **writer_identity())):
        meta = RunMeta(meta.name or run_id, list(meta.tags or []), meta.notes, meta.group, meta.job_type)
        identity = RunIdentity(
            run_id=run_id,
            project=project,
            name=meta.name,
            notes=meta.notes,
            tags=list(meta.tags),
            created_at=now,
            group=meta.group,
            job_type=meta.job_type,
            entity=extras.entity,
            source=extras.source,
            source_id=extras.source_id,
            metadata=extras.metadata or {},
        )
        write(storage, storage.paths.meta(project, run_id, "run.json"), identity)
        segment = SegmentDoc(run_id=run_id, segment=0, project=project, created_at=now, kind="root")
        if parent is not None:
            segment.kind = parent.kind
            segment.parent_project = parent.parent_project
            segment.parent_run_id = parent.parent_run_id
            segment.parent_segment = parent.parent_segment
            segment.cutoff = parent.cutoff
        write(storage, storage.paths.meta(project, run_id, "segment-0.json"), segment)
        run = Run(
            writer=Writer(storage, project, run_id, 0, local_dir=extras.local_dir),
            name=meta.name,
            start_step=start_step,
            config=config,
            summary_auto=inherited or {},
            summary_user={},
            runtime_offset=0.0,
            inherit=_inherit(storage, segment) if inherited is None else None,
            **_run_options(meta, extras),
        )
        run.flush()
    return run


@contextmanager
def new_run(storage: Storage, project: str, run_id: str, claim: WriterClaim) -> Iterator[None]:
    """The create protocol every new run goes through (init() and importers): claim the id in
    the whole root, take writer slot 0, and if what follows fails, leave nothing behind (the
    run's manifests and history, the claim, directories this made). A killed creator leaves no
    run.json, so whoever takes its stale claim over clears what it left first."""
    with storage.journal.batch():  # the run's first files, in one commit-log entry
        with _creating(storage, project, run_id, claim):
            yield


@contextmanager
def _creating(storage: Storage, project: str, run_id: str, claim: WriterClaim) -> Iterator[None]:
    root_existed = storage.exists(storage.root)
    claim_id(storage, project, run_id, claim)
    run_dir = storage.paths.run_dir(project, run_id)
    if not storage.exists(storage.paths.meta(project, run_id, "run.json")):
        storage.remove_tree(run_dir)  # a killed creator's leftovers (no run without run.json)
        storage.remove_tree(storage.paths.run_history_dir(project, run_id))
    if not storage.create_exclusive(storage.paths.meta(project, run_id, "writer-0.json"), claim.encode()):
        storage.remove(storage.paths.id_claim(run_id))
        raise RunlakeError(f"run {run_id!r} already exists in project {project!r}: pick another id")
    try:
        yield
    except BaseException:
        storage.remove_tree(run_dir)
        storage.remove_tree(storage.paths.run_history_dir(project, run_id))
        claim_path = storage.paths.id_claim(run_id)
        storage.remove(claim_path)
        stop = os.path.dirname(storage.root) if not root_existed else storage.root
        if not root_existed:  # a root this create made: nothing happened in it
            storage.journal.discard()
            storage.journal.forget_origin()
            storage.remove_empty_dirs(storage.paths.log_dir, stop)
        storage.remove_empty_dirs(os.path.dirname(claim_path), stop)
        storage.remove_empty_dirs(os.path.dirname(run_dir), stop)
        raise


def _run_options(meta: RunMeta, extras: StartOptions, state: StateDoc | None = None) -> dict[str, Any]:
    """Run() keyword arguments beyond history: attributes, metric definitions, options."""
    return {
        "meta": meta,
        "metrics": list(state.metrics or []) if state is not None else None,
        "metric_state": extras.metric_state,
        "json_keys": extras.json_keys or (list(state.json_keys or []) if state is not None else None),
        "allow_val_change": extras.allow_val_change,
        "local_dir": extras.local_dir,
        "resumed": state is not None,
        "entity": extras.entity,
    }


def _existing_meta(identity: RunIdentity, state: StateDoc, given: RunMeta) -> RunMeta:
    """A resumed or rewound run's attributes: as last written, with what init() was given on top."""
    return RunMeta(
        name=given.name or state.name or identity.name,
        tags=list(given.tags)
        if given.tags
        else list(state.tags if state.tags is not None else identity.tags),
        notes=given.notes
        if given.notes is not None
        else (state.notes if state.notes is not None else identity.notes),
        group=given.group or state.group or identity.group,
        job_type=given.job_type or state.job_type or identity.job_type,
    )


def claim_id(storage: Storage, project: str, run_id: str, claim: WriterClaim) -> None:
    """Take the run id for `project` in the whole root, atomically: of two processes creating
    the same id (in any projects) at the same moment, exactly one wins. A claim whose creator
    died before writing the run (no run.json, holder gone) is taken over."""
    path = storage.paths.id_claim(run_id)
    doc = json.dumps({**claim.to_json(), "project": project}).encode()
    for _ in range(2):
        if storage.create_exclusive(path, doc):
            return
        other = storage.read_json(path) or {}
        owner = other.get("project")
        created = isinstance(owner, str) and storage.exists(storage.paths.meta(owner, run_id, "run.json"))
        if created or holder_alive(other, other.get("at"), _CLAIM_STALE_SECONDS):
            raise RunlakeError(
                f"run {run_id!r} already exists (in project {owner!r}): run ids are unique in a root; "
                "pick another id"
            )
        storage.remove(path)  # its creator died before the run existed
    raise RunlakeError(f"run {run_id!r} is being created by another process at the same time; that one won")


_CLAIM_STALE_SECONDS = 60.0


def _refuse_deleted(state: StateDoc, run_id: str, verb: str) -> None:
    """A deleted run is gone for writers too: its files are reclaimed once nothing reads them."""
    if state.deleted_at is not None:
        raise RunNotFoundError(f"run {run_id!r} was deleted: it cannot be {verb}")


def _refuse_live(storage: Storage, project: str, run_id: str, state: StateDoc, verb: str) -> None:
    if registry.get(storage.key, run_id) is not None:
        raise RunlakeError(
            f"run {run_id!r} is still running in this process: finish() it before you {verb} it"
        )
    if is_running(storage, project, state):
        raise RunlakeError(
            f"run {run_id!r} is still running (pid {state.pid} on {state.host}): "
            f"it must finish before you {verb} it"
        )


def rewind(
    storage: Storage, spec: StepSpec, config: dict[str, Any], given: RunMeta, extras: StartOptions
) -> Run:
    project = require_project(storage, spec.run_id)
    state = read_state(storage, project, spec.run_id)
    _refuse_deleted(state, spec.run_id, "rewound")
    _refuse_live(storage, project, spec.run_id, state, "rewind")
    segment, last = _source_last_step(storage, project, spec.run_id, state)
    _check_point(spec.run_id, spec.step, last, "rewind")
    seq, new_segment, seg_path = _new_segment(
        storage, project, spec.run_id, state, "rewind", (project, spec.run_id, segment), spec.step
    )
    try:
        summary = inherited_summary(storage, project, spec.run_id, segment, spec.step)
        run = _continue_in(
            storage,
            project,
            spec.run_id,
            (new_segment, seq),
            spec.step,
            summary,
            state,
            config,
            given,
            extras,
        )
    except BaseException:
        storage.remove(seg_path)
        raise
    return run


def _new_segment(
    storage: Storage,
    project: str,
    run_id: str,
    state: StateDoc,
    kind: str,
    parent: tuple[str, str, int],
    cutoff: int,
) -> tuple[int, int, str]:
    """Take the next writer slot and create the run's next segment (exclusive: of two racing
    rewinds or re-forks, one wins): (writer seq, segment number, its manifest's path)."""
    seq = claim_writer(storage, project, run_id, state, "rewind" if kind == "rewind" else "refork")
    number = max(segment_numbers(storage, project, run_id), default=int(state.segment)) + 1
    path = storage.paths.meta(project, run_id, f"segment-{number}.json")
    doc = SegmentDoc(
        run_id=run_id,
        segment=number,
        project=project,
        created_at=time.time(),
        kind=kind,
        parent_project=parent[0],
        parent_run_id=parent[1],
        parent_segment=parent[2],
        cutoff=cutoff,
        previous_segment=int(state.segment),
        previous_parts=state.parts,
    )
    if not storage.create_exclusive(path, doc.encode()):
        raise RunlakeError(
            f"run {run_id!r} was rewound or re-forked by another process at the same time; that one won"
        )
    return seq, number, path


def _continue_in(
    storage: Storage,
    project: str,
    run_id: str,
    node: tuple[int, int],
    cutoff: int,
    summary: dict[str, Any],
    state: StateDoc,
    config: dict[str, Any],
    given: RunMeta,
    extras: StartOptions,
) -> Run:
    """The open Run of an existing run in its new segment (`node`: segment, writer seq) after
    a rewind or re-fork at `cutoff`: its attributes and config carried on, its summary the
    inherited one; define_metric aggregates start again (the archived steps no longer count)."""
    identity = read_identity(storage, project, run_id)
    meta = _existing_meta(identity, state, given)
    segment, seq = node
    run = Run(
        writer=Writer(storage, project, run_id, segment, seq, local_dir=extras.local_dir),
        name=meta.name,
        start_step=cutoff + 1,
        config={**(state.config or {}), **config},
        summary_auto=summary,
        summary_user={},
        runtime_offset=0.0,
        inherit=None,
        **_run_options(meta, replace(extras, entity=extras.entity or identity.entity), state),
    )
    run.flush()
    return run


def refork(
    storage: Storage,
    project: str,
    run_id: str,
    spec: StepSpec,
    config: dict[str, Any],
    given: RunMeta,
    extras: StartOptions,
) -> Run:
    """Run `run_id` continues from step N of another run (of itself: use resume_from): a new
    segment whose parent is that run's current segment at N. Its own later steps are archived;
    `lineage()` shows every such switch."""
    state = read_state(storage, project, run_id)
    _refuse_deleted(state, run_id, "resumed")
    _refuse_live(storage, project, run_id, state, "re-fork")
    source_project = require_project(storage, spec.run_id)
    live = registry.get(storage.key, spec.run_id)
    if live is not None:
        live.flush_if_dirty()
    source_state = read_state(storage, source_project, spec.run_id)
    _refuse_deleted(source_state, spec.run_id, "forked")
    source_segment, last = _source_last_step(storage, source_project, spec.run_id, source_state)
    _check_point(spec.run_id, spec.step, last, "fork")
    seq, new_segment, seg_path = _new_segment(
        storage, project, run_id, state, "fork", (source_project, spec.run_id, source_segment), spec.step
    )
    try:
        summary = inherited_summary(storage, source_project, spec.run_id, source_segment, spec.step)
        json_keys = sorted(set(state.json_keys or []) | set(source_state.json_keys or []))
        run = _continue_in(
            storage,
            project,
            run_id,
            (new_segment, seq),
            spec.step,
            summary,
            state,
            config,
            given,
            replace(extras, json_keys=json_keys),
        )
    except BaseException:
        storage.remove(seg_path)
        raise
    return run


def resume(
    storage: Storage,
    project: str,
    run_id: str,
    config: dict[str, Any],
    given: RunMeta,
    extras: StartOptions,
) -> Run:
    state = read_state(storage, project, run_id)
    _refuse_deleted(state, run_id, "resumed")
    _refuse_live(storage, project, run_id, state, "resume")
    seq = claim_writer(storage, project, run_id, state, "resume")
    local_dir = extras.local_dir
    writer = Writer(storage, project, run_id, int(state.segment), seq, local_dir=local_dir)
    waiting = writer.catch_up()  # a dead writer's spilled parts: uploaded now, or counted
    segment, last = _source_last_step(storage, project, run_id, state)
    if waiting is not None and segment == writer.segment:
        last = waiting if last is None else max(last, waiting)
    identity = read_identity(storage, project, run_id)
    doc = read_segment(storage, project, run_id, segment)
    meta = _existing_meta(identity, state, given)
    options = replace(extras, metric_state=state.metric_state, entity=extras.entity or identity.entity)
    run = Run(
        writer=writer
        if segment == writer.segment
        else Writer(storage, project, run_id, segment, seq, local_dir=local_dir),
        name=meta.name,
        start_step=0 if last is None else last + 1,
        config={**(state.config or {}), **config},
        summary_auto=dict(state.summary_auto or {}),
        summary_user=dict(state.summary_user or {}),
        runtime_offset=float(state.runtime or 0.0),
        inherit=_inherit(storage, doc) if state.inherited_pending else None,
        # the segment's part files so far (a dead writer's spilled ones it did not count are
        # found by readers too: only fewer than counted is a loss)
        parts_written=int(state.parts or 0) if int(state.segment) == segment else 0,
        **_run_options(meta, options, state),
    )
    run.flush()
    return run
