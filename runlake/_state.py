"""Run liveness: who writes a run, and when a `running` run is really `crashed`."""

from __future__ import annotations

import os
import socket
import time
from typing import Any


def flush_interval() -> float:
    """Seconds between background flushes (and heartbeats); $RUNLAKE_FLUSH_INTERVAL, default 5."""
    return _env_float("RUNLAKE_FLUSH_INTERVAL", 5.0, minimum=0.01)


def heartbeat_timeout() -> float:
    """A running run whose heartbeat is older than this reads `crashed` ($RUNLAKE_HEARTBEAT_TIMEOUT)."""
    return _env_float("RUNLAKE_HEARTBEAT_TIMEOUT", max(30.0, 6 * flush_interval()), minimum=0.05)


def _env_float(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"${name} must be a number of seconds, got {raw!r}") from None
    if not value >= minimum:
        raise ValueError(f"${name} must be at least {minimum}, got {raw!r}")
    return value


HOST = socket.gethostname()


def process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (Linux), to tell a live writer from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name may contain spaces: fields restart after the last ')'
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):  # a killed process not yet reaped is gone all the same
        return None
    return fields[19].decode()


def writer_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": HOST, "pid": pid, "pid_start": process_start(pid)}


def writer_alive(state: dict[str, Any], now: float | None = None) -> bool:
    """Is the process that wrote this `running` state still there?"""
    now = time.time() if now is None else now
    heartbeat = state.get("heartbeat") or 0.0
    if now - heartbeat > heartbeat_timeout():
        return False
    if state.get("host") == HOST and state.get("pid"):
        pid = int(state["pid"])
        if pid == os.getpid():
            return True
        start = process_start(pid)
        if start is None:
            return not os.path.isdir("/proc")  # no /proc: trust the heartbeat alone
        return start == state.get("pid_start")
    return True


def derive_state(state: dict[str, Any], now: float | None = None) -> str:
    raw = str(state.get("state") or "running")
    if raw == "running" and not writer_alive(state, now):
        return "crashed"
    return raw
