"""One background thread per process that flushes every open run off the training thread.

It fires every flush interval even when the training loop is idle (a long evaluation), and
early when a run's buffer reaches its size trigger, so a SIGKILL loses at most one interval.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Protocol

from ..store import settings


class Flushable(Protocol):
    id: str

    @property
    def finished(self) -> bool: ...

    @property
    def has_packed(self) -> bool: ...

    def flush(self, final: bool = False, rows: bool = True) -> None: ...


class _Flusher:
    """The thread and the runs it serves (one per process, restarted after a fork())."""

    def __init__(self) -> None:
        self.runs: dict[int, Flushable] = {}
        self.lock = threading.Lock()
        self.event = threading.Event()
        self.thread: threading.Thread | None = None
        self.pid: int | None = None

    def register(self, run: Flushable) -> None:
        with self.lock:
            self.runs[id(run)] = run
            if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="runlake-flusher", daemon=True)
                self.pid = os.getpid()
                self.thread.start()

    def unregister(self, run: Flushable) -> None:
        with self.lock:
            self.runs.pop(id(run), None)

    def _loop(self) -> None:
        interval = settings.flush_interval()
        last_beat = time.monotonic()
        while True:
            woke = self.event.wait(timeout=interval)
            self.event.clear()
            now = time.monotonic()
            beat = now - last_beat >= interval * 0.9
            if beat:
                last_beat = now
            with self.lock:
                runs = list(self.runs.values())
            for run in runs:
                if run.finished:
                    continue
                if beat or (woke and run.has_packed):
                    try:
                        # between beats, write only batches the training thread already packed
                        run.flush(rows=beat)
                    except Exception as exc:  # the thread must survive anything
                        print(f"runlake: flusher: run {run.id!r}: {exc}", file=sys.stderr)


_flusher = _Flusher()
register = _flusher.register
unregister = _flusher.unregister
wake = _flusher.event.set
