"""A run being logged: W&B's step/commit bookkeeping, config and summary, over a Buffer.

`log()` only validates and appends; packing happens on a size trigger and encoding and
writing in the background flusher (`flusher.py`), so a call costs a few microseconds.
"""

from __future__ import annotations

import operator
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from ..errors import RunlakeError, StepOrderWarning
from ..store import settings
from ..store.layout import MAX_STEP
from ..store.liveness import writer_identity
from ..store.manifests import BeatDoc, StateDoc
from . import flusher, registry
from .buffer import Buffer
from .values import Row, flatten
from .writer import Writer, notify

_now = time.time
_MAX_QUEUED = 4  # packed batches waiting for the flusher before the oldest are spilled


def jsonable(value: Any) -> Any:
    """Config/summary values as JSON can hold them (numpy/torch scalars become numbers)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    for attr in ("item", "tolist"):
        fn = getattr(value, attr, None)
        if callable(fn):
            try:
                return jsonable(fn())
            except Exception:  # not a scalar/array after all
                pass
    return str(value)


class Config(dict):  # type: ignore[type-arg]
    """The run's config: a dict (attribute access too, as in wandb) persisted with the run."""

    def __init__(self, run: Run | None, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(data or {})
        object.__setattr__(self, "_run", run)

    def _touch(self) -> None:
        run = object.__getattribute__(self, "_run")
        if run is not None:
            run._meta_dirty = True

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._touch()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._touch()

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(*args, **kwargs)
        self._touch()

    def setdefault(self, key: str, default: Any = None) -> Any:
        value = super().setdefault(key, default)
        self._touch()
        return value

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value


class Summary(MutableMapping[str, Any]):
    """Last logged value of every key (effective history), with values you set on top."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def _merged(self) -> dict[str, Any]:
        return self._run._summary_snapshot()

    def __getitem__(self, key: str) -> Any:
        return self._merged()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._run._summary_user[key] = value
        self._run._meta_dirty = True

    def __delitem__(self, key: str) -> None:
        self._run._summary_user.pop(key, None)
        self._run._summary_deleted.add(key)
        self._run._meta_dirty = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._merged())

    def __len__(self) -> int:
        return len(self._merged())

    def __repr__(self) -> str:
        return f"Summary({self._merged()!r})"


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


class Run:
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
    ) -> None:
        self._writer = writer
        self.project = writer.project
        self.id = writer.run_id
        self.name = name
        self._step = start_step
        self.config = Config(self, config)
        self.summary = Summary(self)
        self._summary_auto = dict(summary_auto)  # from flushed rows (and inherited ones)
        self._summary_user = dict(summary_user)
        self._summary_deleted: set[str] = set()
        self._inherit = inherit  # a fork's inherited summary, read when first needed
        self._started = time.time()
        self._runtime_offset = runtime_offset
        self._identity = writer_identity()
        self._buffer = Buffer(self._started - runtime_offset)
        self._flush_lock = threading.Lock()  # one flush at a time
        self._known_keys: set[str] = set()
        self._pending: Row | None = None
        self._pending_text = False
        self._finished = False
        self._fenced: str | None = None  # why another writer owns this run now
        self._state = "running"
        self._exit_code: int | None = None
        self._meta_dirty = True
        self._watermark: int | None = None
        self._runtime_last = runtime_offset
        self._flush_rows = settings.flush_rows()

    # ---- what the registry and the flusher see -------------------------------------------
    @property
    def storage_key(self) -> Any:
        return self._writer.storage.key

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def has_packed(self) -> bool:
        return bool(self._buffer.packed)

    def flush_if_dirty(self) -> None:
        """Flush when there is something to write (a read of the same root is about to start)."""
        if self._buffer.dirty or self._meta_dirty:
            self.flush()

    # ---- W&B's logging semantics -------------------------------------------------------
    @property
    def step(self) -> int:
        """The step the next committed row gets."""
        return self._step

    def log(self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None) -> None:
        """Log metrics at the current step (W&B semantics: see the README)."""
        if self._finished:
            raise RunlakeError(self._fenced or f"run {self.id!r} is finished: log to a new run, or resume it")
        row, text = flatten(data, self._known_keys)  # raises before anything is kept
        if self._step >= MAX_STEP:
            raise ValueError(f"run {self.id!r} is at step {self._step}: no larger step can be stored")
        if step is None and self._pending is None and (commit is None or commit is True):
            # the common call: one committed row (same effect as the general path below)
            size = self._buffer.append(self._step, _now(), row, text)
            self._step += 1
            if size >= self._flush_rows:
                self._pack()
            return
        if text:
            self._pending_text = True
        if step is not None:
            step = _check_step(step)
            if step < self._step:
                warnings.warn(
                    StepOrderWarning(
                        f"run {self.id!r}: tried to log to step {step}, below the current step "
                        f"{self._step}; steps must increase, so this data was dropped"
                    ),
                    stacklevel=2,
                )
                return
            if commit is None:
                commit = False
            if step > self._step:
                if self._pending is not None:
                    self._commit()
                self._step = step
        elif commit is None:
            commit = True
        if commit is not None and not isinstance(commit, bool):
            raise TypeError(f"commit must be a bool or None, got {type(commit).__name__}")
        if self._pending is None:
            self._pending = row
        else:
            self._pending.update(row)
        if commit:
            self._commit()

    def _commit(self) -> None:
        row = self._pending if self._pending is not None else {}
        self._pending = None
        size = self._buffer.append(self._step, _now(), row, self._pending_text)
        self._pending_text = False
        self._step += 1
        if size >= self._flush_rows:
            self._pack()

    def _pack(self) -> None:
        """Hand a full buffer to the flusher as an Arrow table (runs on the training thread).

        Backpressure: if more than a few batches wait (the flusher is stuck on slow or hanging
        storage), the oldest go to the spill directory from here, so memory stays bounded.
        """
        if not self._buffer.pack():
            return
        flusher.wake()
        extra = self._buffer.take_overflow(_MAX_QUEUED)
        if not extra:
            return
        try:
            for first, last_step, data, last in self._writer.encode(extra):
                self._writer.spill_part(first, last_step, data)
                self._stored(last_step, last)
        except BaseException:
            self._buffer.spilled(extra, stored=False)  # nothing is dropped: they wait in memory
            raise
        self._buffer.spilled(extra, stored=True)

    # ---- finishing -----------------------------------------------------------------------
    def finish(self, exit_code: int = 0) -> None:
        """Commit what is pending, flush everything, mark the run finished (or failed). Idempotent.

        If the rows cannot be made durable (storage down and the spill directory unwritable),
        it raises and the run stays open with every row in memory: call it again later.
        """
        if self._finished:
            if self._fenced:
                raise RunlakeError(self._fenced)
            return
        if self._pending is not None:
            self._commit()
        self._exit_code = int(exit_code)
        self._state = "finished" if exit_code == 0 else "failed"
        try:
            self._try_inherited_summary()
            self.flush(final=True)
        except BaseException:
            self._state, self._exit_code = "running", None  # still open: nothing was lost
            raise
        self._finished = True
        flusher.unregister(self)
        registry.forget(self)

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
        self.finish(exit_code=0 if exc_type is None else 1)

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
        merged = self._buffer.last_values(self._summary_auto)
        merged.pop("_timestamp", None)
        merged.pop("_runtime", None)
        merged.update(self._summary_user)
        for key in self._summary_deleted:
            if key not in self._summary_user:
                merged.pop(key, None)
        return merged

    # ---- flushing (runs in the flusher thread, and in finish / before a fork or read) -----
    def flush(self, final: bool = False, rows: bool = True) -> None:
        """Write buffered rows as parts, then the state manifest (the durable watermark).

        Storage errors are retried with backoff; if storage stays down, the part and state go
        to the local spill directory (memory stays bounded) and are uploaded by a later flush,
        `finish()` or `runlake sync`.
        """
        buffer = self._buffer
        with self._flush_lock:
            if self._fenced is None and (why := self._writer.taken_over()) is not None:
                self._fence(why)
            if self._fenced is not None:
                raise RunlakeError(self._fenced)
            packed, batch, text = buffer.take(rows)
            wrote = bool(packed or batch[2])
            if wrote:
                try:
                    pieces = list(packed)
                    if batch[2]:
                        pieces.append(buffer.to_table(batch, text))
                    encoded = self._writer.encode(pieces)
                except BaseException:
                    buffer.give_back(packed, batch, text)  # nothing logged is dropped
                    raise
                for index, (first, last_step, data, last) in enumerate(encoded):
                    try:
                        self._writer.store_part(first, last_step, data)
                    except BaseException:
                        buffer.give_back_packed(pieces[index:])  # not durable anywhere: keep them
                        raise
                    self._stored(last_step, last)
                buffer.landed()
            if wrote or self._meta_dirty or final:
                self._writer.store_state(self._state_doc())
                self._meta_dirty = False
            else:  # only the heartbeat moved: a few bytes, not the whole state and summary
                self._writer.store_beat(
                    BeatDoc(
                        run_id=self.id,
                        heartbeat=time.time(),
                        segment=self._writer.segment,
                        writer_seq=self._writer.seq,
                        **self._identity,
                    )
                )
            if final:
                self._writer.report_unsynced()

    def _stored(self, last_step: int, last: dict[str, float | str]) -> None:
        """A batch is durable (stored, or spilled): its last values join the summary."""
        last = dict(last)
        runtime = float(last.pop("_runtime", 0.0))
        last.pop("_timestamp", None)
        with self._buffer.lock:
            self._summary_auto.update(last)
            if self._watermark is None or last_step > self._watermark:
                self._watermark = last_step
                self._runtime_last = runtime

    def _state_doc(self) -> StateDoc:
        auto = {k: v for k, v in self._summary_auto.items() if k not in self._summary_deleted}
        return StateDoc(
            run_id=self.id,
            segment=self._writer.segment,
            state=self._state,
            heartbeat=time.time(),
            **self._identity,
            writer_seq=self._writer.seq,
            watermark=self._watermark,
            runtime=self._runtime_last,
            finished_at=time.time() if self._finished else None,
            exit_code=self._exit_code,
            config=jsonable(dict(self.config)),
            summary=jsonable({**auto, **self._summary_user}),
            summary_auto=jsonable(auto),
            summary_user=jsonable(self._summary_user),
            inherited_pending=self._inherit is not None,
        )
