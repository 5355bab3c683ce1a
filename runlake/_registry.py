"""The runs open in this process: the module-level current run, and flushing at exit."""

from __future__ import annotations

import atexit
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._run import Run
    from ._storage import Storage

_open: dict[tuple[Any, str], Run] = {}
_lock = threading.Lock()
_current: list[Run] = []
_failed_exit = False


def add(run: Run) -> None:
    with _lock:
        _open[(run._storage.key, run.id)] = run
        _current.append(run)
    _sync_module_run()


def forget(run: Run) -> None:
    with _lock:
        _open.pop((run._storage.key, run.id), None)
        if run in _current:
            _current.remove(run)
    _sync_module_run()


def get(storage: Storage, run_id: str) -> Run | None:
    with _lock:
        return _open.get((storage.key, run_id))


def open_runs(storage: Storage) -> list[Run]:
    with _lock:
        return [r for (key, _), r in _open.items() if key == storage.key]


def current() -> Run | None:
    with _lock:
        return _current[-1] if _current else None


def _sync_module_run() -> None:
    module = sys.modules.get("runlake")
    if module is not None:
        module.run = current()  # type: ignore[attr-defined]


def _excepthook(exc_type: Any, exc: Any, tb: Any) -> None:
    global _failed_exit
    _failed_exit = True
    _previous_hook(exc_type, exc, tb)


_previous_hook = sys.excepthook
sys.excepthook = _excepthook


@atexit.register
def _finish_all() -> None:
    """Interpreter exit flushes and finishes every open run (failed after an uncaught error)."""
    with _lock:
        runs = list(_open.values())
    for run in runs:
        try:
            run.finish(exit_code=1 if _failed_exit else 0)
        except Exception as exc:  # noqa: BLE001 - report, and keep finishing the others
            print(f"runlake: could not finish run {run.id!r} at exit: {exc}", file=sys.stderr)
