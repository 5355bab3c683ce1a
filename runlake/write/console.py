"""Console capture (`settings.console`: "auto"/"wrap", as W&B; "off"): `sys.stdout` and
`sys.stderr` are wrapped so every write still reaches the terminal (teed) and each line is
handed, as it is completed, to the runs open in this process, with the time and the step the
run was at. A line is cut at "\\n"; "\\r" starts the line over, so a progress bar is kept in
its last state, as W&B keeps it. Nothing here ever raises into the program's own write."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

MAX_LINE = 64 * 1024  # longer lines are cut (a runaway write without a newline stays bounded)

Sink = Callable[[str, str, float], None]  # (stream, line, time)


class _Tee:
    """A text stream that writes to the original and hands completed lines to the capture."""

    def __init__(self, original: TextIO, name: str, capture: Capture) -> None:
        self._original = original
        self._name = name
        self._capture = capture
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        written = self._original.write(text)
        try:
            self._feed(text)
        except Exception:  # noqa: BLE001 - capture must never break a print
            pass
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def _feed(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            return
        done: list[str] = []
        with self._lock:
            partial = self._partial
            for piece in text.split("\n")[:-1] if "\n" in text else []:
                done.append(last_state(partial + piece))
                partial = ""
            tail = text.rsplit("\n", 1)[-1] if "\n" in text else text
            partial = last_state(partial + tail, keep_open=True)[-MAX_LINE:]
            self._partial = partial
        now = time.time()
        for line in done:
            self._capture.emit(self._name, line[:MAX_LINE], now)

    def flush_partial(self) -> None:
        """A last line without its newline (at the end of the run) is a line too."""
        with self._lock:
            partial, self._partial = last_state(self._partial), ""
        if partial:
            self._capture.emit(self._name, partial, time.time())

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, flush, buffer, ...
        return getattr(self._original, name)


def last_state(text: str, keep_open: bool = False) -> str:
    """What a terminal shows of a line written with carriage returns: the last text drawn
    after a "\r". While the line is open, a trailing "\r" is kept: the next write redraws it."""
    if "\r" not in text:
        return text
    pieces = text.split("\r")
    last = next((p for p in reversed(pieces) if p), "")
    return last + "\r" if keep_open and pieces[-1] == "" else last


class Capture:
    """The process's one capture: installed while a run that captures is open."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.sinks: list[Sink] = []
        self.lock = threading.Lock()
        self.tees: dict[str, _Tee] = {}

    def emit(self, stream: str, line: str, at: float) -> None:
        if os.getpid() != self.pid:  # a fork()ed child (a data-loader worker): not the run's process
            return
        for sink in list(self.sinks):
            try:
                sink(stream, line, at)
            except Exception:  # noqa: BLE001 - one run's trouble is not the program's
                pass

    def add(self, sink: Sink) -> None:
        with self.lock:
            if not self.sinks:
                self.pid = os.getpid()
            self.sinks.append(sink)
            for name in ("stdout", "stderr"):
                current = getattr(sys, name)
                if not isinstance(current, _Tee) and current is not None:
                    tee = _Tee(current, name, self)
                    self.tees[name] = tee
                    setattr(sys, name, tee)

    def remove(self, sink: Sink) -> None:
        with self.lock:
            if sink in self.sinks:
                self.sinks.remove(sink)
            if self.sinks:
                return
            for name, tee in list(self.tees.items()):
                tee.flush_partial()
                if getattr(sys, name) is tee:  # only ours: someone may have wrapped it since
                    setattr(sys, name, tee._original)
                del self.tees[name]

    def flush_partial(self) -> None:
        for tee in list(self.tees.values()):
            tee.flush_partial()


CAPTURE = Capture()
