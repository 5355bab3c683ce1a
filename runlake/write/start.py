"""`init()`: its arguments (W&B's names and defaults) checked before anything is written, then
one of `nodes.py`'s ways to make the run's node: create, fork, rewind, re-fork or resume."""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidSpecError, RunlakeError, RunNotFoundError
from ..store import settings as app_settings
from ..store.manifests import (
    find_project,
)
from ..store.names import check_name, new_run_id
from ..store.storage import Storage
from . import flusher, nodes, registry, shared, tensorboard_sync
from . import trial as sweep_trial
from .config import filter_keys
from .disabled import DisabledRun
from .nodes import StartOptions
from .options import (
    ResumeFile,
    check_config,
    check_tags,
    config_defaults,
    metadata,
    moment,
    reinit_mode,
    settings_dict,
)
from .run import Run, RunMeta
from .streams import open_streams, stream_options

_RESUME_MODES = ("allow", "must", "never", "auto")


def init(
    storage: Storage,
    project: str | None = None,
    *,
    entity: str | None = None,
    dir: str | os.PathLike[str] | None = None,  # noqa: A002 - wandb's name
    id: str | None = None,  # noqa: A002 - wandb's name
    name: str | None = None,
    notes: str | None = None,
    tags: Sequence[str] | None = None,
    config: Any = None,
    config_exclude_keys: Sequence[str] | None = None,
    config_include_keys: Sequence[str] | None = None,
    allow_val_change: bool | None = None,
    group: str | None = None,
    job_type: str | None = None,
    mode: str | None = None,
    force: bool | None = None,
    reinit: bool | str | None = None,
    resume: bool | str | None = None,
    resume_from: Any = None,
    fork_from: Any = None,
    save_code: bool | None = None,
    tensorboard: bool | None = None,
    sync_tensorboard: bool | None = None,
    monitor_gym: bool | None = None,
    settings: Any = None,
    anonymous: Any = None,
) -> Run:
    """Start a run: every `wandb.init` argument is taken (README, "Coming from W&B").

    fork_from="<id>?_step=N" starts a new run from step N of another; resume_from rewinds a run
    to step N; resume ("allow", "must", "never", "auto"/True, False) continues a run where it
    stopped. mode="disabled" returns a run that writes nothing. reinit says what happens to
    runs this process still has open (runlake's default: "create_new", they stay open).
    """
    given_settings = settings_dict(settings)
    mode = mode or given_settings.get("mode")
    reinit = reinit if reinit is not None else given_settings.get("reinit")
    dir = dir or given_settings.get("root_dir") or given_settings.get("dir")  # noqa: A001
    local_dir = os.fspath(dir) if dir is not None else None
    if local_dir is not None and not isinstance(local_dir, str):
        raise TypeError(f"dir must be a path, got {type(dir).__name__}")
    run_mode = app_settings.mode(mode)
    reinit_how = reinit_mode(reinit)
    trial = sweep_trial.take()  # inside a sweep agent: this run is its trial
    if trial is not None:
        project, id = trial.project, id or trial.run_id  # noqa: A001 - the sweep's project, as W&B
    if project is None:
        project = os.environ.get("RUNLAKE_PROJECT") or os.environ.get("WANDB_PROJECT") or "demo"
    check_name(project, "project name")
    if id is not None:
        check_name(id, "run id")
    if resume is False:
        resume = None
    elif resume is True:
        resume = "auto"
    fork = moment(fork_from, "fork_from")
    rewind = moment(resume_from, "resume_from")
    given = [
        n for n, v in (("fork_from", fork), ("resume_from", rewind), ("resume", resume)) if v is not None
    ]
    # fork_from with id= and resume="allow"/"must": run `id` continues as a fork of another run
    # at that step (population-based training's exploit), in a new segment of its own
    refork = fork is not None and id is not None and resume in ("allow", "must") and rewind is None
    if len(given) > 1 and not refork:
        raise InvalidSpecError(
            f"{' and '.join(given)} cannot be combined: fork_from starts a new run from a step of "
            "another, resume_from rewinds a run to a step, resume continues a run where it stopped"
        )
    streams = stream_options(given_settings)  # checked before anything is written
    config_dict = filter_keys(
        {**config_defaults(), **check_config(config)}, config_include_keys, config_exclude_keys
    )
    if trial is not None:
        config_dict = {**config_dict, **trial.params}  # the sweep's values win, as in W&B
    meta = RunMeta(name=name, tags=check_tags(tags), notes=notes, group=group, job_type=job_type)
    for label, value in (
        ("name", name),
        ("notes", notes),
        ("group", group),
        ("job_type", job_type),
        ("entity", entity),
    ):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{label} must be a str, got {type(value).__name__}")
    if fork is not None and id == fork.run_id:
        raise InvalidSpecError(
            f"id={id!r} is the run being forked: a fork is a new run with its own id; "
            f'to rewind run {id!r} itself, use resume_from="{fork.run_id}?_step={fork.step}"'
        )
    if rewind is not None and id is not None and id != rewind.run_id:
        raise InvalidSpecError(
            f"resume_from={resume_from!r} rewinds run {rewind.run_id!r}, but id={id!r}: "
            "leave id out or pass the same id (to branch into a new run, use fork_from)"
        )
    if resume is not None:
        if resume not in _RESUME_MODES:
            raise InvalidSpecError(
                f"resume must be one of {', '.join(map(repr, _RESUME_MODES))}, True or False, got {resume!r}"
            )
        if id is None and resume != "auto":
            raise InvalidSpecError(f"resume={resume!r} needs the id= of the run to continue")

    previous = registry.current()
    if previous is not None:
        if reinit_how == "return_previous":
            assert isinstance(previous, Run)
            return previous
        if reinit_how == "finish_previous":
            registry.finish_all()
    extras = StartOptions(
        metadata={
            **metadata(given_settings, run_mode, locals()),
            **({"sweep_id": trial.sweep_id, "sweep_trial": trial.number} if trial is not None else {}),
        },
        entity=entity,
        allow_val_change=bool(allow_val_change),
        local_dir=local_dir,
    )
    if run_mode == "disabled":
        run: Run = DisabledRun(
            project, id or new_run_id(), meta, config_dict, bool(allow_val_change), local_dir, entity
        )
        registry.add(run)
        return run

    x_label = given_settings.get("x_label") or None
    if run_mode == "shared" and not given_settings.get(
        "x_primary", given_settings.get("x_primary_node", True)
    ):
        if id is None:
            raise InvalidSpecError(
                "shared mode: a process that is not the primary needs the run's id= (the same in every process)"
            )
        if x_label is None:
            raise InvalidSpecError(
                "shared mode: a process that is not the primary needs settings x_label (its name in the run)"
            )
        run = shared.attach(storage, id, x_label, config_dict, extras)
        registry.add(run)
        flusher.register(run)
        run._syncer.streams = open_streams(run, streams)
        return run
    if run_mode == "shared" and id is not None and resume is None and fork is None and rewind is None:
        resume = "allow"  # the primary: creates the shared run, or continues it
    resume_file = None
    if resume == "auto":
        resume_file = ResumeFile(local_dir, storage.url, project)
        if id is None:
            id = resume_file.read()  # noqa: A001 - the run this directory left unfinished
        resume = "allow" if id is not None else None
    if refork and id is not None and (owner := find_project(storage, id)) is not None:
        assert fork is not None
        run = nodes.refork(storage, owner, id, fork, config_dict, meta, extras)
    elif refork and resume == "must":
        raise RunNotFoundError(f"resume='must' but run {id!r} does not exist in root {storage.url!r}")
    elif fork is not None:
        run = nodes.fork(storage, project, id, meta, config_dict, fork, extras)
    elif rewind is not None:
        run = nodes.rewind(storage, rewind, config_dict, meta, extras)
    elif resume is not None:
        assert id is not None
        existing = find_project(storage, id)
        if existing is None and resume == "must":
            raise RunNotFoundError(f"resume='must' but run {id!r} does not exist in root {storage.url!r}")
        if existing is not None and resume == "never":
            raise RunlakeError(f"resume='never' but run {id!r} already exists (in project {existing!r})")
        if existing is not None:
            run = nodes.resume(storage, existing, id, config_dict, meta, extras)
        else:
            run = nodes.create(storage, project, id, meta, config_dict, None, 0, extras=extras)
    else:
        if id is not None and (existing := find_project(storage, id)) is not None:
            raise RunlakeError(
                f"run {id!r} already exists (in project {existing!r}): pass resume='allow' to "
                f'continue it, resume_from="{id}?_step=N" to rewind it, or another id'
            )
        run = nodes.create(storage, project, id or new_run_id(), meta, config_dict, None, 0, extras=extras)
    if resume_file is not None:
        resume_file.write(run.id)
        run._resume_file = resume_file
    registry.add(run)
    flusher.register(run)
    run._syncer.streams = open_streams(run, streams)  # console lines and system metrics
    run.sweep_id = trial.sweep_id if trial is not None else None
    if sync_tensorboard or tensorboard:
        tensorboard_sync.patch()  # SummaryWriters log into this run too
    return run


def signature(*extra: inspect.Parameter, leading: inspect.Parameter | None = None) -> inspect.Signature:
    """init()'s arguments without `storage` (after `leading`, e.g. a method's self), plus
    `extra` keyword-only ones: the one list of run arguments, shown by `runlake.init` and
    `Lake.init`, which forward to init()."""
    sig = inspect.signature(init)
    own = [p for n, p in sig.parameters.items() if n != "storage"]
    return sig.replace(parameters=[*([leading] if leading else []), *own, *extra])
