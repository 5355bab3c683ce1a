"""A run being logged: W&B's step/commit bookkeeping, config and summary, over a Buffer.

`log()` only validates and appends; packing happens on a size trigger and encoding and
writing in the background flusher (`flusher.py`), so a call costs a few microseconds.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import RunlakeError, StepOrderWarning
from ..store import settings
from ..store.layout import MAX_STEP
from ..store.liveness import writer_identity
from ..store.manifests import StateDoc
from . import flusher, registry
from .alerts import run_alert
from .buffer import Buffer
from .config import Config, Summary, jsonable
from .media import Media, file_name
from .metrics import Metric, Metrics, define
from .options import check_tags
from .run_artifacts import RunArtifacts
from .syncer import Syncer
from .values import Extra, Row, flatten
from .writer import Writer, notify

__all__ = ["Run", "RunMeta", "jsonable"]

_now = time.time


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"exit_code must be an int, got {type(code).__name__} {code!r}")
    return code


def _check_step(step: Any) -> int:
    if type(step) is int:
        value = step
    else:
        if isinstance(step, bool):
            raise TypeError(f"step must be an int, got bool {step!r}")
        try:
            value = operator.index(step)
        except TypeError:
            raise TypeError(f"step must be an int, got {type(step).__name__} {step!r}") from None
    if value < 0:
        raise ValueError(f"step must be >= 0, got {value}")
    if value >= MAX_STEP:
        raise ValueError(f"step must be below 2**63 - 1 (the largest storable step), got {value}")
    return value


@dataclass
class RunMeta:
    """Who a run is, beyond its id: W&B's run attributes, mutable while it runs."""

    name: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    group: str | None = None
    job_type: str | None = None


class Run(RunArtifacts):
    """What `runlake.init()` returns. Use `log()`, then `finish()` (or a `with` block)."""

    def __init__(
        self,
        *,
        writer: Writer,
        name: str | None,
        start_step: int,
        config: Mapping[str, Any],
        summary_auto: dict[str, Any],
        summary_user: dict[str, Any],
        runtime_offset: float,
        inherit: Callable[[], dict[str, Any]] | None,
        meta: RunMeta | None = None,
        metrics: list[dict[str, Any]] | None = None,
        metric_state: dict[str, Any] | None = None,
        json_keys: list[str] | None = None,
        allow_val_change: bool = False,
        local_dir: str | None = None,
        resumed: bool = False,
        parts_written: int = 0,
        entity: str | None = None,
    ) -> None:
        self._writer = writer
        self.project = writer.project
        self.id = writer.run_id
        self._meta = meta or RunMeta()
        if self._meta.name is None:
            self._meta.name = name
        self.entity = entity
        self.resumed = resumed
        self._local_dir = local_dir
        self._step = start_step
        self.config = Config(self, config, allow_val_change)
        self.summary = Summary(self)
        self._summary_auto = dict(summary_auto)  # from flushed rows (and inherited ones)
        self._summary_user = dict(summary_user)
        self._summary_deleted: set[str] = set()
        self._metrics = Metrics(metrics, metric_state)
        self._json_keys: set[str] = set(json_keys or ())  # keys whose text values are JSON
        self._inherit = inherit  # a fork's inherited summary, read when first needed
        self._started = time.time()
        self._runtime_offset = runtime_offset
        self._identity = writer_identity()
        self._buffer = Buffer(self._started - runtime_offset)
        self._syncer = Syncer(self)  # the flush protocol: makes rows and state durable
        self._known_keys: set[str] = set()
        self._pending: Row | None = None
        self._pending_text = False
        self._pending_stamp: float | None = None
        self._finished = False
        self._finished_at: float | None = None
        self._fenced: str | None = None  # why another writer owns this run now
        self._state = "running"
        self._exit_code: int | None = None
        self._preempting = False
        self._meta_dirty = True
        self._watermark: int | None = None
        self._parts_written = parts_written  # this segment's part files, earlier writers' too
        self._runtime_last = runtime_offset
        self._flush_rows = settings.flush_rows()
        self._resume_file: Any = None  # resume="auto": cleared when the run finishes cleanly
        self._hooked = False
        self._rehook()

    def _rehook(self) -> None:
        """Does log() have more to do than append (kept as one flag: log() is the hot path)?"""
        self._hooked = bool(self._summary_user or self._summary_deleted or self._metrics.defined)

    # ---- W&B's run attributes ------------------------------------------------------------
    def _meta_property(field_name: str, doc: str) -> property:  # type: ignore[misc]  # noqa: N805
        def get(self: Run) -> Any:
            value = getattr(self._meta, field_name)
            return tuple(value) if field_name == "tags" else value

        def put(self: Run, value: Any) -> None:
            if field_name == "tags":
                value = check_tags(value)
            elif value is not None and not isinstance(value, str):
                raise TypeError(f"run.{field_name} must be a str, got {type(value).__name__}")
            setattr(self._meta, field_name, value)
            self._meta_dirty = True

        return property(get, put, doc=doc)

    name = _meta_property("name", "The run's display name (its id unless set).")
    tags = _meta_property("tags", "The run's tags, a tuple (assign a new sequence to change them).")
    notes = _meta_property("notes", "Free-text notes.")
    group = _meta_property("group", "The group the run belongs to (e.g. one sweep or one experiment).")
    job_type = _meta_property("job_type", "What kind of job the run is (train, eval, ...).")
    del _meta_property

    @property
    def dir(self) -> str:
        """A local directory for the run's own files (created on first use): `init(dir=...)`,
        else $RUNLAKE_DIR, else ~/.cache/runlake, then /runs/<run id>/files."""
        path = os.path.join(settings.local_dir(self._local_dir), "runs", self.id, "files")
        os.makedirs(path, exist_ok=True)
        return path

    @property
    def path(self) -> str:
        return f"{self.project}/{self.id}"

    @property
    def url(self) -> None:
        """W&B's run page URL; a local run has none (see `runlake ui`)."""
        return None

    @property
    def offline(self) -> bool:
        return True

    @property
    def disabled(self) -> bool:
        return False

    @property
    def start_time(self) -> float:
        return self._started

    def define_metric(
        self,
        name: str,
        step_metric: Any = None,
        step_sync: bool | None = None,
        hidden: bool | None = None,
        summary: str | None = None,
        goal: str | None = None,
        overwrite: bool | None = None,
    ) -> Metric:
        """How a metric is summarised and charted (W&B's define_metric): `summary` is one or
        more of min, max, mean, first, last, best (with goal=), none; `step_metric` its x-axis."""
        metric = define(name, step_metric, step_sync, hidden, summary, goal)
        if overwrite is False and name in self._metrics.defined:
            return self._metrics.defined[name]
        with self._buffer.lock:
            self._metrics.add(metric)
        self._meta_dirty = True
        self._rehook()
        return metric

    def mark_preempting(self) -> None:
        """This run is about to be preempted: if its process dies now, it reads `preempted`
        (resumable with resume="allow") rather than `crashed`."""
        self._preempting = True
        self._meta_dirty = True
        self.flush_if_dirty()

    sweep_id: str | None = None  # the sweep this run is a trial of (set by init)
    alert = run_alert  # W&B's run.alert(title, text, level, wait_duration): write/alerts.py

    # ---- what the registry and the flusher see -------------------------------------------
    @property
    def storage_key(self) -> Any:
        return self._writer.storage.key

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def has_packed(self) -> bool:
        return bool(self._buffer.packed) or self._syncer.due

    def flush_if_dirty(self) -> None:
        """Flush when there is something to write (a read of the same root is about to start)."""
        if self._buffer.dirty or self._meta_dirty:
            self.flush()
            return
        # nothing buffered, but a flush (the background flusher's) may have taken the rows and
        # be storing them now: a fork of this run at those steps waits for it to land
        self._syncer.wait()

    # ---- W&B's logging semantics -------------------------------------------------------
    @property
    def step(self) -> int:
        """The step the next committed row gets."""
        return self._step

    def log(self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None) -> None:
        """Log metrics at the current step (W&B semantics: see the README)."""
        if self._finished:
            raise RunlakeError(self._fenced or f"run {self.id!r} is finished: log to a new run, or resume it")
        row, text, extra = flatten(data, self._known_keys)  # raises before anything is kept
        if self._step >= MAX_STEP:
            raise ValueError(f"run {self.id!r} is at step {self._step}: no larger step can be stored")
        if step is None and commit is None and extra is None and self._pending is None and not self._hooked:
            # the common call: one committed row (same effect as the general path below)
            size = self._buffer.append(self._step, _now(), row, text)
            self._step += 1
            if size >= self._flush_rows:
                self._pack()
            return
        self._log(row, text, extra, step, commit)

    def _log(self, row: Row, text: bool, extra: Extra | None, step: Any, commit: Any) -> None:
        """log() beyond its common call: an explicit step or commit, a pending row, JSON or
        media values, a logged _timestamp, summary values set by hand, define_metric."""
        if step is not None:
            step = _check_step(step)
            if step < self._step:
                warnings.warn(
                    StepOrderWarning(
                        f"run {self.id!r}: tried to log to step {step}, below the current step "
                        f"{self._step}; steps must increase, so this data was dropped"
                    ),
                    stacklevel=3,
                )
                return
        if commit is not None and not isinstance(commit, bool):
            raise TypeError(f"commit must be a bool or None, got {type(commit).__name__}")
        if extra is not None:
            self._take_extra(row, extra, self._step if step is None else max(step, self._step))
        if self._hooked:  # summary values set by hand, or define_metric aggregates
            if self._summary_user or self._summary_deleted:
                self._logged_over_summary(row)
            if self._metrics.defined:
                with self._buffer.lock:
                    self._metrics.observe(row)
        if step is not None:
            if commit is None:
                commit = False
            if step > self._step:
                if self._pending is not None:
                    self._commit()
                self._step = step
        elif commit is None:
            commit = True
        if text:
            self._pending_text = True
        if extra is not None and extra.stamp is not None:
            self._pending_stamp = extra.stamp
        if self._pending is None:
            self._pending = row
        else:
            self._pending.update(row)
        if commit:
            self._commit()

    def commit(self) -> None:
        """Commit the row being accumulated (by `log(..., commit=False)` or `log(..., step=N)`),
        if there is one: a trainer's checkpoint covers it, so it must not wait for a later step."""
        if self._finished:
            return
        if self._pending is not None:
            self._commit()

    def _take_extra(self, row: Row, extra: Extra, step: int) -> None:
        """JSON keys are remembered (the summary decodes them); media are written to the root
        now, so a failure is this call's error and the row never points at a missing file."""
        if extra.json_keys:
            with self._buffer.lock:
                self._json_keys.update(extra.json_keys)
        for key, media in extra.media.items():
            row[key] = json.dumps(self._store_media(key, step, media), separators=(",", ":"))

    def _store_media(self, key: str, step: int, media: Media) -> dict[str, Any]:
        storage = self._writer.storage

        def put(kind: str, data: bytes, suffix: str, name: str) -> dict[str, Any]:
            path = storage.paths.media(self.project, self.id, kind, file_name(name, step, data, suffix))
            self._writer.store_media(path, data)
            return {
                "path": storage.paths.relative(path),
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }

        try:
            return media.store(put, key)
        except (TypeError, ValueError) as exc:  # named, and the call logs nothing
            raise ValueError(f"value of {key!r}: the {media.kind} cannot be stored ({exc})") from exc

    def _logged_over_summary(self, row: Row) -> None:
        """Logging a key ends a value set by `summary[key] = ...` (last write wins)."""
        user, deleted = self._summary_user, self._summary_deleted
        for key in row:
            if key in user:
                del user[key]
                self._meta_dirty = True
            deleted.discard(key)
        self._rehook()

    def _commit(self) -> None:
        row = self._pending if self._pending is not None else {}
        self._pending = None
        at = _now() if self._pending_stamp is None else self._pending_stamp
        self._pending_stamp = None
        size = self._buffer.append(self._step, at, row, self._pending_text)
        self._pending_text = False
        self._step += 1
        if size >= self._flush_rows:
            self._pack()

    def _pack(self) -> None:
        """Hand a full buffer to the flusher (see `Syncer.pack`: backpressure included)."""
        self._syncer.pack()

    # ---- finishing -----------------------------------------------------------------------
    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """Commit what is pending, flush everything, mark the run finished (exit code 0) or
        failed (any other). Idempotent.

        If the rows cannot be made durable (storage down and the spill directory unwritable),
        it raises and the run stays open with every row in memory: call it again later.
        """
        if self._finished:
            if self._fenced:
                raise RunlakeError(self._fenced)
            return
        if self._pending is not None:
            self._commit()
        code = _exit_code(exit_code)
        self._exit_code = code
        self._state = "finished" if code == 0 else "failed"
        self._finished_at = time.time()  # the final state says when (it is written before _finished)
        try:
            self._try_inherited_summary()
            self.flush(final=True)
        except BaseException:
            # still open: nothing was lost
            self._state, self._exit_code, self._finished_at = "running", None, None
            raise
        self._finished = True
        flusher.unregister(self)
        registry.forget(self)
        if self._resume_file is not None and code == 0:
            self._resume_file.clear(self.id)

    def _fence(self, why: str) -> None:
        """Another writer owns the run: this one is over (it must not write a byte more)."""
        self._fenced = why
        self._finished = True
        flusher.unregister(self)
        registry.forget(self)
        notify(why, stacklevel=4)

    def _try_inherited_summary(self) -> None:
        """At finish: a summary that cannot be read must not cost the run its rows."""
        try:
            self._load_inherited_summary()
        except Exception as exc:  # noqa: BLE001 - reported, and the rows are written all the same
            notify(
                f"run {self.id!r}: its inherited summary could not be read ({exc}); the run's own "
                "rows and summary are written, the inherited keys are missing from its summary",
                stacklevel=4,
            )

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.finish(exit_code=0 if exc is None else registry.exit_code_of(exc))

    def __repr__(self) -> str:
        return f"<runlake.Run {self.id} project={self.project!r} step={self._step} {self._state}>"

    # ---- summary -------------------------------------------------------------------------
    def _load_inherited_summary(self) -> None:
        if self._inherit is None:
            return
        inherited = self._inherit()
        with self._buffer.lock:
            self._summary_auto = {**inherited, **self._summary_auto}
        self._inherit = None

    def _summary_snapshot(self) -> dict[str, Any]:
        self._load_inherited_summary()
        with self._buffer.lock:
            auto = self._buffer.last_values_locked(self._summary_auto)
            return self._summary_of(auto)

    def _summary_of(self, auto: dict[str, Any]) -> dict[str, Any]:
        """The summary W&B shows, from the last logged values (hold the buffer lock): JSON
        values decoded, define_metric aggregates applied, values set by hand on top."""
        merged = {k: v for k, v in auto.items() if k not in ("_timestamp", "_runtime")}
        for key in self._json_keys.intersection(merged):
            value = merged[key]
            if isinstance(value, str):
                try:
                    merged[key] = json.loads(value)
                except ValueError:
                    pass  # a plain string logged to a key that also held lists
        merged = self._metrics.apply(merged)
        for key in self._summary_deleted:
            merged.pop(key, None)
        merged.update(self._summary_user)
        return merged

    def _set_summary(self, key: str, value: Any) -> None:
        jsonable(value)  # fails here, not at a flush
        with self._buffer.lock:
            self._summary_user[key] = value
            self._summary_deleted.discard(key)
        self._meta_dirty = True
        self._rehook()

    def _delete_summary(self, key: str) -> None:
        with self._buffer.lock:
            nested = key + "."
            for name in [k for k in self._summary_user if k == key or k.startswith(nested)]:
                del self._summary_user[name]
            auto = self._buffer.last_values_locked(self._summary_auto)
            self._summary_deleted.update(k for k in auto if k == key or k.startswith(nested))
        self._meta_dirty = True
        self._rehook()

    # ---- flushing (runs in the flusher thread, and in finish / before a fork or read) -----
    def flush(self, final: bool = False, rows: bool = True) -> None:
        """Write buffered rows as parts, then the state manifest (the durable watermark).

        Storage errors are retried with backoff; if storage stays down, the part and state go
        to the local spill directory (memory stays bounded) and are uploaded by a later flush,
        `finish()` or `runlake sync`.
        """
        self._syncer.flush(final, rows)

    def _stored(self, last_step: int, last: dict[str, float | str]) -> None:
        self._syncer.stored(last_step, last)

    def _state_doc(self) -> StateDoc:
        return self._syncer.state_doc()
