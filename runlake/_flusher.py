"""One background thread per process that flushes every open run off the training thread.

It fires every flush interval even when the training loop is idle (a long evaluation), and
early when a run's buffer reaches its size trigger, so a SIGKILL loses at most one interval.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from ._state import flush_interval

if TYPE_CHECKING:
    from ._run import Run

_runs: dict[int, Run] = {}
_lock = threading.Lock()
_event = threading.Event()
_thread: threading.Thread | None = None
_thread_pid: int | None = None


def flush_rows() -> int:
    """Buffered rows that trigger an early flush ($RUNLAKE_FLUSH_ROWS, default 10,000)."""
    raw = os.environ.get("RUNLAKE_FLUSH_ROWS")
    if not raw:
        return 10_000
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"$RUNLAKE_FLUSH_ROWS must be a whole number, got {raw!r}") from None
    return max(1, value)


def register(run: Run) -> None:
    global _thread, _thread_pid
    with _lock:
        _runs[id(run)] = run
        if _thread is None or _thread_pid != os.getpid() or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="runlake-flusher", daemon=True)
            _thread_pid = os.getpid()
            _thread.start()


def unregister(run: Run) -> None:
    with _lock:
        _runs.pop(id(run), None)


def wake() -> None:
    _event.set()


def _loop() -> None:
    interval = flush_interval()
    last_beat = time.monotonic()
    while True:
        woke = _event.wait(timeout=interval)
        _event.clear()
        now = time.monotonic()
        beat = now - last_beat >= interval * 0.9
        if beat:
            last_beat = now
        with _lock:
            runs = list(_runs.values())
        for run in runs:
            if run._finished:
                continue
            if beat or (woke and run._packed):
                try:
                    # between beats, write only batches the training thread already packed
                    run.flush(rows=beat)
                except Exception as exc:  # the thread must survive anything
                    print(f"runlake: flusher: run {run.id!r}: {exc}", file=sys.stderr)
