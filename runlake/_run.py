"""A run being logged: W&B's step/commit bookkeeping over an in-memory columnar buffer.

`log()` only validates and appends; encoding and writing happen in the background flusher
(`_flusher.py`), on a size or time trigger, so a call costs a few microseconds.
"""

from __future__ import annotations

import json
import operator
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from . import _flusher, _spill

if TYPE_CHECKING:
    import pyarrow as pa
from ._parquet import blocks_to_table, encode, pack_rows
from ._state import writer_identity
from ._storage import PART_RE, Storage
from ._values import Row, flatten
from .errors import RunlakeError, StepOrderWarning

# A converted batch: first step, last step, its long table, the last value of every key.
Packed = tuple[int, int, "pa.Table", dict[str, float | str]]
# Committed rows: their steps, timestamps and rows.
Batch = tuple[list[int], list[float], list[Row]]
_NO_ROWS: Batch = ([], [], [])


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


_now = time.time


def _notify(message: str, stacklevel: int = 3) -> None:
    """A RuntimeWarning; never raises, even where warnings are errors (the flusher thread)."""
    try:
        warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)
    except Exception:
        import sys

        print(f"runlake: warning: {message}", file=sys.stderr)


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
    return value


class Run:
    """What `runlake.init()` returns. Use `log()`, then `finish()` (or a `with` block)."""

    def __init__(
        self,
        *,
        storage: Storage,
        project: str,
        run_id: str,
        name: str | None,
        segment: int,
        start_step: int,
        config: Mapping[str, Any],
        summary_auto: dict[str, Any],
        summary_user: dict[str, Any],
        runtime_offset: float,
        writer_seq: int,
        inherited_pending: bool,
    ) -> None:
        self._storage = storage
        self.project = project
        self.id = run_id
        self._history_prefix = f"history/project={project}/run_id={run_id}"
        self._runs_prefix = f"runs/{project}/{run_id}"
        self.name = name
        self._segment = segment
        self._step = start_step
        self.config = Config(self, config)
        self.summary = Summary(self)
        self._summary_auto = dict(summary_auto)  # from flushed rows (and inherited ones)
        self._summary_user = dict(summary_user)
        self._summary_deleted: set[str] = set()
        self._inherited_pending = inherited_pending  # a fork's inherited summary, read lazily
        self._started = time.time()
        self._runtime_offset = runtime_offset
        self._writer_seq = writer_seq
        self._identity = writer_identity()
        self._lock = threading.Lock()  # the buffer (training thread vs flusher)
        self._flush_lock = threading.Lock()  # one flush at a time
        # Committed rows as three parallel lists (step, timestamp, row): ints, floats and
        # float-only dicts are not tracked by the garbage collector, where a tuple per row
        # was, and its collections cost ~0.7 us per log call (measured).
        self._buf_steps: list[int] = []
        self._buf_times: list[float] = []
        self._buf: list[Row] = []
        self._buf_text = False  # may a row in _buf hold text? (all-float batches take a fast path)
        self._pending_text = False
        # Full batches, converted to an Arrow table by the training thread when they fill up
        # (~6 ms per 10k rows): the flusher thread then only encodes (in Arrow's own buffers)
        # and writes, which runs almost without the GIL. Converting there starved it: every
        # time numpy or pyarrow let go of the GIL, taking it back from a busy training loop
        # cost up to the 5 ms switch interval (180 ms for one batch, measured).
        self._packed: list[Packed] = []
        self._packing = False
        self._in_flight: tuple[list[Packed], Batch] = ([], _NO_ROWS)
        self._pending: Row | None = None
        self._finished = False
        self._state = "running"
        self._exit_code: int | None = None
        self._meta_dirty = True
        self._watermark: int | None = None
        self._runtime_last = runtime_offset
        self._flush_rows = _flusher.flush_rows()
        self._spilled = bool(_spill.pending(storage, self._history_prefix))

    # ---- W&B's logging semantics -------------------------------------------------------
    @property
    def step(self) -> int:
        """The step the next committed row gets."""
        return self._step

    def log(self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None) -> None:
        """Log metrics at the current step (W&B semantics: see the README)."""
        if self._finished:
            raise RunlakeError(f"run {self.id!r} is finished: log to a new run, or resume it")
        row, text = flatten(data)  # raises before anything is kept
        if step is None and self._pending is None and (commit is None or commit is True):
            # the common call: one committed row (same effect as the general path below)
            with self._lock:
                self._buf_steps.append(self._step)
                self._buf_times.append(_now())
                buf = self._buf
                buf.append(row)
                if text:
                    self._buf_text = True
                size = len(buf)
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
        with self._lock:
            self._buf_steps.append(self._step)
            self._buf_times.append(_now())
            self._buf.append(row)
            if self._pending_text:
                self._buf_text = True
            size = len(self._buf)
        self._pending_text = False
        self._step += 1
        if size >= self._flush_rows:
            self._pack()

    def _pack(self) -> None:
        """Hand a full buffer to the flusher as an Arrow table (runs on the training thread)."""
        with self._lock:
            batch = self._take_rows()
            text, self._buf_text = self._buf_text, False
            self._packing = bool(batch[2])  # a flush now must not write later rows before these
        if not batch[2]:  # a flush took them first
            return
        try:
            piece = self._to_table(batch, text)
        except BaseException:
            with self._lock:
                self._put_back(batch)
                self._buf_text = self._buf_text or text
                self._packing = False
            raise
        with self._lock:
            self._packed.append(piece)
            self._packing = False
        _flusher.wake()

    def _take_rows(self) -> Batch:
        """The buffered rows, leaving the buffer empty (hold self._lock)."""
        batch = (self._buf_steps, self._buf_times, self._buf)
        self._buf_steps, self._buf_times, self._buf = [], [], []
        return batch

    def _put_back(self, batch: Batch) -> None:
        """Rows taken that could not be written: back before any logged since (hold self._lock)."""
        self._buf_steps[:0] = batch[0]
        self._buf_times[:0] = batch[1]
        self._buf[:0] = batch[2]

    def _to_table(self, batch: Batch, text: bool) -> Packed:
        steps, times, rows = batch
        blocks = pack_rows(steps, times, rows, self._started - self._runtime_offset, text)
        table, last = blocks_to_table(blocks)
        return steps[0], steps[-1], table, last

    # ---- finishing -----------------------------------------------------------------------
    def finish(self, exit_code: int = 0) -> None:
        """Commit what is pending, flush everything, mark the run finished (or failed). Idempotent."""
        if self._finished:
            return
        if self._pending is not None:
            self._commit()
        self._finished = True
        self._exit_code = int(exit_code)
        self._state = "finished" if exit_code == 0 else "failed"
        _flusher.unregister(self)
        from . import _registry

        try:
            if self._inherited_pending:
                self._load_inherited_summary()
            self.flush(final=True)
        finally:  # a finish that raised is still over: never left as the current run
            _registry.forget(self)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)

    def __repr__(self) -> str:
        return f"<runlake.Run {self.id} project={self.project!r} step={self._step} {self._state}>"

    # ---- summary -------------------------------------------------------------------------
    def _load_inherited_summary(self) -> None:
        from ._read import node_last_values

        parent = self._storage.read_json(
            self._storage.meta_path(self.project, self.id, f"segment-{self._segment}.json")
        )
        if parent and parent.get("parent_run_id"):
            inherited = node_last_values(
                self._storage,
                parent["parent_project"],
                parent["parent_run_id"],
                int(parent["parent_segment"]),
                int(parent["cutoff"]),
            )
            with self._lock:
                self._summary_auto = {**inherited, **self._summary_auto}
        self._inherited_pending = False

    def _summary_snapshot(self) -> dict[str, Any]:
        if self._inherited_pending:
            self._load_inherited_summary()
        with self._lock:
            merged = dict(self._summary_auto)
            flying_packed, flying_rows = self._in_flight
            packed = flying_packed + self._packed
            rows = flying_rows[2] + self._buf
        for _, _, _, last in packed:
            merged.update(last)
        for row in rows:
            merged.update(row)
        merged.pop("_timestamp", None)
        merged.pop("_runtime", None)
        merged.update(self._summary_user)
        for key in self._summary_deleted:
            if key not in self._summary_user:
                merged.pop(key, None)
        return merged

    # ---- flushing (runs in the flusher thread, and in finish / before a fork) ----------
    def flush(self, final: bool = False, rows: bool = True) -> None:
        """Write buffered rows as one part, then the state manifest (the durable watermark).

        Storage errors are retried with backoff; if storage stays down, the part and state go
        to the local spill directory (memory stays bounded) and are uploaded by a later flush,
        `finish()` or `runlake sync`.
        """
        with self._flush_lock:
            with self._lock:
                packed, self._packed = self._packed, []
                batch: Batch = _NO_ROWS
                text = False
                # rows=False: only what the training thread packed (no conversion on this
                # thread); while it packs older rows, newer rows must wait for the next flush
                if rows and not self._packing:
                    batch = self._take_rows()
                    text, self._buf_text = self._buf_text, False
                self._in_flight = (packed, batch)
            if packed or batch[2]:
                try:
                    pieces = list(packed)
                    if batch[2]:
                        pieces.append(self._to_table(batch, text))
                    # one part per batch (each sorted by (key, step)), oldest first
                    encoded = [
                        (first, final_step, encode(table), last) for first, final_step, table, last in pieces
                    ]
                except BaseException:
                    with self._lock:  # keep them: nothing logged is dropped
                        self._packed[:0] = packed
                        self._put_back(batch)
                        self._buf_text = self._buf_text or text
                        self._in_flight = ([], _NO_ROWS)
                    raise
                for first, final_step, data, last in encoded:
                    # one name per part: a retried upload rewrites it, never duplicates it
                    self._store(
                        self._storage.part_path(self.project, self.id, self._segment, first, final_step), data
                    )
                    last = dict(last)
                    self._runtime_last = float(last.pop("_runtime", 0.0))
                    last.pop("_timestamp", None)
                    with self._lock:
                        self._summary_auto.update(last)
                    self._watermark = final_step
                with self._lock:
                    self._in_flight = ([], _NO_ROWS)
            self._write_state()
            if final and self._spilled:
                self._report_unsynced()

    def _store(self, target: str, data: bytes) -> None:
        """Upload one file (after any backlog of this run), or keep it in the spill directory."""
        if self._spilled:
            _, waiting = _spill.upload(self._storage, self._history_prefix)
            if not waiting:
                _, waiting = _spill.upload(self._storage, self._runs_prefix)
            if waiting:
                _spill.put(self._storage, target, data)
                return
            self._spilled = False
            _notify(f"run {self.id!r}: storage is back; spilled parts were uploaded")
        try:
            self._storage.write_with_retry(target, data)
        except Exception as exc:  # storage down: spill, keep logging
            _spill.put(self._storage, target, data)
            self._spilled = True
            _notify(
                f"run {self.id!r}: storage {self._storage.url} failed after retries ({exc}); "
                f"logging goes on and parts wait in {_spill.spill_root(self._storage)} until it is back"
            )

    def _report_unsynced(self) -> None:
        waiting = _spill.pending(self._storage, self._history_prefix) + _spill.pending(
            self._storage, self._runs_prefix
        )
        if not waiting:
            return
        parts = [t for _, t in waiting if "/history/" in t]
        matches = [PART_RE.fullmatch(t.rsplit("/", 1)[-1]) for t in parts]
        steps = [(int(m[2]), int(m[3])) for m in matches if m]
        span = f" holding steps {min(a for a, _ in steps)}..{max(b for _, b in steps)}" if steps else ""
        _notify(
            f"run {self.id!r} finished, but {len(parts)} part(s){span} and its state are not uploaded yet: "
            f"they are kept in {_spill.spill_root(self._storage)}; run `runlake sync` when storage is back",
            stacklevel=4,
        )

    def _write_state(self) -> None:
        auto = {k: v for k, v in self._summary_auto.items() if k not in self._summary_deleted}
        summary = {**auto, **self._summary_user}
        doc = {
            "run_id": self.id,
            "segment": self._segment,
            "state": self._state,
            "heartbeat": time.time(),
            **self._identity,
            "writer_seq": self._writer_seq,
            "watermark": self._watermark,
            "runtime": self._runtime_last,
            "finished_at": time.time() if self._finished else None,
            "exit_code": self._exit_code,
            "config": jsonable(dict(self.config)),
            "summary": jsonable(summary),
            "summary_auto": jsonable(auto),
            "summary_user": jsonable(self._summary_user),
            "inherited_pending": self._inherited_pending,
        }
        self._store(
            self._storage.meta_path(self.project, self.id, "state.json"),
            json.dumps(doc, allow_nan=True).encode(),
        )
        self._meta_dirty = False
