"""The runs open in this process: the current run (as `wandb.run`), and finishing them at exit.

The interpreter hooks (an excepthook that remembers an uncaught error, and an atexit handler
that finishes every open run) are installed by the first `init()`, never at import.
"""

from __future__ import annotations

import atexit
import sys
import threading
from typing import Any, Protocol


class OpenRun(Protocol):
    id: str

    @property
    def storage_key(self) -> Any: ...

    def finish(self, exit_code: int | None = None) -> None: ...

    def flush_if_dirty(self) -> None: ...


_open: dict[tuple[Any, str], OpenRun] = {}
_lock = threading.Lock()
_current: list[OpenRun] = []
_hooks: dict[str, Any] = {}  # what install_hooks replaced, and whether an uncaught error happened


def add(run: OpenRun) -> None:
    install_hooks()
    with _lock:
        _open[(run.storage_key, run.id)] = run
        _current.append(run)
    _sync_module_run()


def forget(run: OpenRun) -> None:
    with _lock:
        _open.pop((run.storage_key, run.id), None)
        if run in _current:
            _current.remove(run)
    _sync_module_run()


def get(storage_key: Any, run_id: str) -> OpenRun | None:
    with _lock:
        return _open.get((storage_key, run_id))


def open_runs(storage_key: Any) -> list[OpenRun]:
    with _lock:
        return [r for (key, _), r in _open.items() if key == storage_key]


def current() -> OpenRun | None:
    with _lock:
        return _current[-1] if _current else None


def flush_open(storage_key: Any) -> None:
    """Make what this process's open runs of a root logged visible to a read of that root."""
    for run in open_runs(storage_key):
        run.flush_if_dirty()


def _sync_module_run() -> None:
    module = sys.modules.get("runlake")
    if module is not None:
        module.run = current()  # type: ignore[attr-defined]


def finish_all(exit_code: int = 0) -> None:
    """Finish every run this process has open (init(reinit="finish_previous"), and at exit)."""
    with _lock:
        runs = list(_open.values())
    for run in runs:
        try:
            run.finish(exit_code=exit_code)
        except Exception as exc:  # noqa: BLE001 - report, and keep finishing the others
            print(f"runlake: could not finish run {run.id!r}: {exc}", file=sys.stderr)


def install_hooks() -> None:
    """Once per process: remember how the process ends (an uncaught error, KeyboardInterrupt,
    sys.exit(n)) so open runs end with that exit code, and finish them at exit."""
    with _lock:
        if "previous" in _hooks:
            return
        _hooks["previous"] = sys.excepthook
        _hooks["exit"] = sys.exit
        _hooks["code"] = 0
    sys.excepthook = _excepthook
    sys.exit = _exit  # type: ignore[assignment]
    atexit.register(_at_exit)


def _excepthook(exc_type: Any, exc: Any, tb: Any) -> None:
    _hooks["code"] = 255 if exc_type is not None and issubclass(exc_type, KeyboardInterrupt) else 1
    _hooks["previous"](exc_type, exc, tb)


def _exit(code: Any = None) -> None:
    """sys.exit, remembering the code (a SystemExit raised to the top never reaches excepthook)."""
    _hooks["code"] = exit_code_of(SystemExit(code))
    _hooks["exit"](code)


def exit_code_of(exc: BaseException) -> int:
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) and not isinstance(code, bool) else 1
    return 255 if isinstance(exc, KeyboardInterrupt) else 1


def _at_exit() -> None:
    """Interpreter exit flushes and finishes every open run, with the process's exit code."""
    finish_all(int(_hooks.get("code") or 0))
