"""A run's two streams beside its history: system metrics and console lines. Each has its own
timeline (wall time; the run's step when a row was made is kept but never advanced), lives in
its own files (`streams/project=<p>/run_id=<id>/segment=<k>/<stream>-<t0>-<label>-<id>.parquet`,
never under `history/`), and is stored by the run's flush, before its state, like metric rows:
batched, bounded in memory (a full buffer wakes the flusher), spilled when storage is down.

Rows belong to the segment being written, so a rewind leaves the abandoned attempt's rows after
the rewind point with the old segment (readers leave them out, `raw` access keeps them), and a
fork starts with none of its parent's (they were another process's)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pyarrow as pa

from ..store import settings as app_settings
from ..store.names import check_name
from ..store.parquet import CONSOLE_SCHEMA, SYSTEM_SCHEMA, encode_any
from . import flusher
from .console import CAPTURE
from .system_stats import Probe

MAX_ROWS = 10_000  # rows of one stream held before the flusher is woken to store them


class Streams:
    """One run's console and system rows, from this process (its `label`)."""

    def __init__(
        self,
        run: Any,
        *,
        console: bool,
        stats: bool,
        interval: float,
        label: str = "",
        first_line: int = 0,
    ) -> None:
        self.run = run
        self.label = label
        self._lock = threading.Lock()
        self._console: list[tuple[Any, ...]] = []
        self._system: list[tuple[Any, ...]] = []
        self._line = first_line
        self.due = False  # a buffer is full: the flusher stores it now
        self._stop = threading.Event()
        self._capturing = console
        self._started = time.time()
        if console:
            CAPTURE.add(self._on_line)
        self.interval = interval
        self.next_sample = time.monotonic() + interval
        if stats:
            SAMPLER.add(self)

    # ---- collecting (off the training path: print()s and a background thread) ------------------
    def _on_line(self, stream: str, content: str, at: float) -> None:
        with self._lock:
            self._console.append((self._line, at, self.run._step, stream, content, self.label))
            self._line += 1
            full = len(self._console) >= MAX_ROWS
        if full and not self.due:
            self.due = True
            flusher.wake()

    def sample(self, probe: Probe, values: dict[str, float] | None = None) -> None:
        """One sample into this run's rows (`values`: taken already, for several runs at once)."""
        values = probe.sample() if values is None else values
        at = time.time()
        runtime = at - self._started + getattr(self.run, "_runtime_offset", 0.0)
        step = self.run._step
        with self._lock:
            if self._stop.is_set():
                return  # the run is finishing: its last rows are being stored
            self._system.extend((at, runtime, step, k, float(v), self.label) for k, v in values.items())
            full = len(self._system) >= MAX_ROWS
        if full and not self.due:
            self.due = True
            flusher.wake()

    # ---- storing (the run's flush) ---------------------------------------------------------------
    def store(self, writer: Any) -> bool:
        """Store what was collected as one file per stream; True if anything was stored. Rows
        that could not be stored (storage and spill directory both refusing) go back."""
        with self._lock:
            console, self._console = self._console, []
            system, self._system = self._system, []
            self.due = False
        stored = False
        for stream, rows, schema in (("console", console, CONSOLE_SCHEMA), ("system", system, SYSTEM_SCHEMA)):
            if not rows:
                continue
            table = pa.Table.from_pylist(
                [dict(zip(schema.names, r, strict=True)) for r in rows], schema=schema
            )
            path = writer.storage.paths.stream_part(
                writer.project,
                writer.run_id,
                writer.segment,
                stream,
                self.label,
                int(rows[0][1 if stream == "console" else 0] * 1e9),
            )
            try:
                writer.store(path, encode_any(table))
            except BaseException:
                with self._lock:  # nothing printed is dropped: it waits for the next flush
                    if stream == "console":
                        self._console[:0] = rows
                    else:
                        self._system[:0] = rows
                raise
            stored = True
        return stored

    def close(self) -> None:
        """Stop sampling and capturing (a last line without its newline is kept)."""
        self._stop.set()
        SAMPLER.remove(self)
        if self._capturing:
            self._capturing = False
            CAPTURE.remove(self._on_line)


class _Sampler:
    """The process's one sampling thread: one probe (psutil's counters, GPUs), sampled for each
    open run when its interval comes round. It starts with the first run that samples and ends
    with the last; the probe is made a little after the start, not while init() returns and the
    training loop begins (a short run pays nothing for it)."""

    SETTLE = 2.0

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.streams: dict[int, Streams] = {}
        self.thread: threading.Thread | None = None
        self.pid = os.getpid()
        self.probe: Probe | None = None

    def add(self, streams: Streams) -> None:
        with self.lock:
            if self.pid != os.getpid():  # a fork()ed child: its own thread and probe
                self.pid, self.thread, self.probe, self.streams = os.getpid(), None, None, {}
            self.streams[id(streams)] = streams
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="runlake-system-metrics", daemon=True)
                self.thread.start()
            self.lock.notify()

    def remove(self, streams: Streams) -> None:
        with self.lock:
            self.streams.pop(id(streams), None)
            self.lock.notify()

    def _loop(self) -> None:
        with self.lock:
            self.lock.wait_for(lambda: not self.streams, timeout=self.SETTLE)
        while True:
            with self.lock:
                if not self.streams:
                    self.thread = None
                    return
                now = time.monotonic()
                due = [s for s in self.streams.values() if s.next_sample <= now]
                wake = min(s.next_sample for s in self.streams.values())
            if due:
                try:
                    if self.probe is None:
                        self.probe = Probe()
                    values = self.probe.sample()
                except Exception:  # noqa: BLE001 - psutil missing or refused: no system metrics
                    with self.lock:
                        self.streams.clear()
                        self.thread = None
                    return
                for stream in due:
                    stream.sample(self.probe, values)
                    stream.next_sample = now + stream.interval
                continue
            with self.lock:
                self.lock.wait(timeout=max(0.01, wake - time.monotonic()))


SAMPLER = _Sampler()


def stream_options(given: dict[str, Any]) -> dict[str, Any] | None:
    """The streams `init(settings=...)` asks for (both on by default, as W&B's), checked before
    anything is written: console capture unless `console="off"`, system metrics unless
    `x_disable_stats`, every `x_stats_sampling_interval` seconds; rows carry `x_label`."""
    console = app_settings.console(given.get("console"))
    stats = not app_settings.stats_disabled(given.get("x_disable_stats"))
    interval = app_settings.stats_interval(given.get("x_stats_sampling_interval"))
    label = given.get("x_label") or ""
    if label:
        check_name(label, "x_label")
    if not console and not stats:
        return None
    return {"console": console, "stats": stats, "interval": interval, "label": label}


def open_streams(run: Any, options: dict[str, Any] | None) -> Streams | None:
    return None if options is None else Streams(run, **options)
