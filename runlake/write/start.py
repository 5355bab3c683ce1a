"""Starting a run: create, fork, rewind or resume (what `init()` does). Validates everything before writing."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ForkPointError, InvalidSpecError, RunlakeError, RunNotFoundError
from ..read.reader import inherited_summary
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
from ..store.names import StepSpec, check_name, new_run_id, parse_step_spec
from ..store.storage import Storage
from . import flusher, registry
from .run import Run, jsonable
from .writer import Writer

_RESUME_MODES = ("allow", "must", "never")


def init(
    storage: Storage,
    project: str = "demo",
    *,
    id: str | None = None,  # noqa: A002 - wandb's name
    name: str | None = None,
    config: Mapping[str, Any] | argparse.Namespace | None = None,
    tags: Sequence[str] | None = None,
    notes: str | None = None,
    fork_from: str | None = None,
    resume_from: str | None = None,
    resume: str | None = None,
) -> Run:
    """Start a run (W&B-compatible). See the README for fork_from / resume_from / resume."""
    check_name(project, "project name")
    if id is not None:
        check_name(id, "run id")
    given = [
        n
        for n, v in (("fork_from", fork_from), ("resume_from", resume_from), ("resume", resume))
        if v is not None
    ]
    if len(given) > 1:
        raise InvalidSpecError(
            f"{' and '.join(given)} cannot be combined: fork_from starts a new run from a step of "
            "another, resume_from rewinds a run to a step, resume continues a run where it stopped"
        )
    config_dict = _check_config(config)
    tag_list = _check_tags(tags)
    for label, value in (("name", name), ("notes", notes)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{label} must be a str, got {type(value).__name__}")
    fork = parse_step_spec(fork_from, "fork_from") if fork_from is not None else None
    rewind = parse_step_spec(resume_from, "resume_from") if resume_from is not None else None
    if fork is not None and id == fork.run_id:
        raise InvalidSpecError(
            f"id={id!r} is the run being forked: a fork is a new run with its own id; "
            f'to rewind run {id!r} itself, use resume_from="{fork_from}"'
        )
    if rewind is not None and id is not None and id != rewind.run_id:
        raise InvalidSpecError(
            f"resume_from={resume_from!r} rewinds run {rewind.run_id!r}, but id={id!r}: "
            "leave id out or pass the same id (to branch into a new run, use fork_from)"
        )
    if resume is not None:
        if resume not in _RESUME_MODES:
            raise InvalidSpecError(
                f"resume must be one of {', '.join(map(repr, _RESUME_MODES))}, got {resume!r}"
            )
        if id is None:
            raise InvalidSpecError(f"resume={resume!r} needs the id= of the run to continue")

    if fork is not None:
        run = _fork(storage, project, id, name, config_dict, tag_list, notes, fork)
    elif rewind is not None:
        run = _rewind(storage, rewind, config_dict)
    elif resume is not None:
        assert id is not None
        existing = find_project(storage, id)
        if existing is None and resume == "must":
            raise RunNotFoundError(f"resume='must' but run {id!r} does not exist in root {storage.url!r}")
        if existing is not None and resume == "never":
            raise RunlakeError(f"resume='never' but run {id!r} already exists (in project {existing!r})")
        if existing is not None:
            run = _resume(storage, existing, id, config_dict)
        else:
            run = _create(storage, project, id, name, config_dict, tag_list, notes, None, 0)
    else:
        if id is not None and (existing := find_project(storage, id)) is not None:
            raise RunlakeError(
                f"run {id!r} already exists (in project {existing!r}): pass resume='allow' to "
                f'continue it, resume_from="{id}?_step=N" to rewind it, or another id'
            )
        run = _create(storage, project, id or new_run_id(), name, config_dict, tag_list, notes, None, 0)
    registry.add(run)
    flusher.register(run)
    return run


def signature(*extra: inspect.Parameter, leading: inspect.Parameter | None = None) -> inspect.Signature:
    """init()'s arguments without `storage` (after `leading`, e.g. a method's self), plus
    `extra` keyword-only ones: the one list of run arguments, shown by `runlake.init` and
    `Lake.init`, which forward to init()."""
    sig = inspect.signature(init)
    own = [p for n, p in sig.parameters.items() if n != "storage"]
    return sig.replace(parameters=[*([leading] if leading else []), *own, *extra])


def _check_config(config: object) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, argparse.Namespace):
        config = vars(config)
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict (or argparse.Namespace), got {type(config).__name__}")
    out = {}
    for key, value in config.items():
        if not isinstance(key, str):
            raise TypeError(f"config keys must be str, got {type(key).__name__} {key!r}")
        out[key] = value
    json.dumps(jsonable(out), allow_nan=True)
    return out


def _check_tags(tags: object) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str) or not isinstance(tags, Sequence | set | frozenset):
        raise TypeError(f"tags must be a list of str, got {type(tags).__name__}")
    out = []
    for tag in tags:
        if not isinstance(tag, str):
            raise TypeError(f"tags must be str, got {type(tag).__name__} {tag!r}")
        out.append(tag)
    return out


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


def _fork(
    storage: Storage,
    project: str,
    run_id: str | None,
    name: str | None,
    config: dict[str, Any],
    tags: list[str],
    notes: str | None,
    spec: StepSpec,
) -> Run:
    source_project = require_project(storage, spec.run_id)
    live = registry.get(storage.key, spec.run_id)
    if live is not None:
        live.flush_if_dirty()  # so any step it has logged can be a fork point
    state = read_state(storage, source_project, spec.run_id)
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
    return _create(
        storage, project, run_id or new_run_id(), name, config, tags, notes, parent, spec.step + 1, inherited
    )


def _create(
    storage: Storage,
    project: str,
    run_id: str,
    name: str | None,
    config: dict[str, Any],
    tags: list[str],
    notes: str | None,
    parent: SegmentDoc | None,
    start_step: int,
    inherited: dict[str, Any] | None = None,
) -> Run:
    root_existed = storage.exists(storage.root)
    now = time.time()
    claim = WriterClaim(seq=0, what="create", at=now, **writer_identity())
    _claim_id(storage, project, run_id, claim)
    if not storage.create_exclusive(storage.paths.meta(project, run_id, "writer-0.json"), claim.encode()):
        storage.remove(storage.paths.id_claim(run_id))
        raise RunlakeError(f"run {run_id!r} already exists in project {project!r}: pick another id")
    try:
        identity = RunIdentity(
            run_id=run_id, project=project, name=name or run_id, notes=notes, tags=tags, created_at=now
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
            writer=Writer(storage, project, run_id, 0),
            name=name or run_id,
            start_step=start_step,
            config=config,
            summary_auto=inherited or {},
            summary_user={},
            runtime_offset=0.0,
            inherit=_inherit(storage, segment) if inherited is None else None,
        )
        run.flush()
    except BaseException:
        run_dir = storage.paths.run_dir(project, run_id)
        storage.remove_tree(run_dir)
        claim_path = storage.paths.id_claim(run_id)
        storage.remove(claim_path)
        stop = os.path.dirname(storage.root) if not root_existed else storage.root
        storage.remove_empty_dirs(os.path.dirname(claim_path), stop)
        storage.remove_empty_dirs(os.path.dirname(run_dir), stop)
        raise
    return run


def _claim_id(storage: Storage, project: str, run_id: str, claim: WriterClaim) -> None:
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


def _rewind(storage: Storage, spec: StepSpec, config: dict[str, Any]) -> Run:
    project = require_project(storage, spec.run_id)
    state = read_state(storage, project, spec.run_id)
    _refuse_live(storage, project, spec.run_id, state, "rewind")
    segment, last = _source_last_step(storage, project, spec.run_id, state)
    _check_point(spec.run_id, spec.step, last, "rewind")
    seq = claim_writer(storage, project, spec.run_id, state, "rewind")
    new_segment = max(segment_numbers(storage, project, spec.run_id), default=segment) + 1
    seg_path = storage.paths.meta(project, spec.run_id, f"segment-{new_segment}.json")
    doc = SegmentDoc(
        run_id=spec.run_id,
        segment=new_segment,
        project=project,
        created_at=time.time(),
        kind="rewind",
        parent_project=project,
        parent_run_id=spec.run_id,
        parent_segment=segment,
        cutoff=spec.step,
    )
    if not storage.create_exclusive(seg_path, doc.encode()):
        raise RunlakeError(
            f"run {spec.run_id!r} was rewound by another process at the same time; that one won"
        )
    try:
        identity = read_identity(storage, project, spec.run_id)
        summary = inherited_summary(storage, project, spec.run_id, segment, spec.step)
        run = Run(
            writer=Writer(storage, project, spec.run_id, new_segment, seq),
            name=identity.name,
            start_step=spec.step + 1,
            config={**(state.config or {}), **config},
            summary_auto=summary,
            summary_user={},
            runtime_offset=0.0,
            inherit=None,
        )
        run.flush()
    except BaseException:
        storage.remove(seg_path)
        raise
    return run


def _resume(storage: Storage, project: str, run_id: str, config: dict[str, Any]) -> Run:
    state = read_state(storage, project, run_id)
    _refuse_live(storage, project, run_id, state, "resume")
    seq = claim_writer(storage, project, run_id, state, "resume")
    writer = Writer(storage, project, run_id, int(state.segment), seq)
    waiting = writer.catch_up()  # a dead writer's spilled parts: uploaded now, or counted
    segment, last = _source_last_step(storage, project, run_id, state)
    if waiting is not None and segment == writer.segment:
        last = waiting if last is None else max(last, waiting)
    identity = read_identity(storage, project, run_id)
    doc = read_segment(storage, project, run_id, segment)
    run = Run(
        writer=writer if segment == writer.segment else Writer(storage, project, run_id, segment, seq),
        name=identity.name,
        start_step=0 if last is None else last + 1,
        config={**(state.config or {}), **config},
        summary_auto=dict(state.summary_auto or {}),
        summary_user=dict(state.summary_user or {}),
        runtime_offset=float(state.runtime or 0.0),
        inherit=_inherit(storage, doc) if state.inherited_pending else None,
    )
    run.flush()
    return run
