"""Is a writer alive? One answer for runs, writer claims and the compaction lock.

A holder is identified by host, pid and the pid's kernel start time (a reused pid is a
different process) and vouched for by a time it last wrote (a heartbeat).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from . import settings

HOST = socket.gethostname()


def _pid_namespace() -> str:
    """This process's PID namespace (containers sharing a hostname have different ones)."""
    try:
        return os.readlink("/proc/self/ns/pid").rsplit("[", 1)[-1].rstrip("]")
    except OSError:
        return ""


PID_NS = _pid_namespace()


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
    """Who is writing: host, pid, and the pid's start time @ its PID namespace (`pid_start`)."""
    pid = os.getpid()
    start = process_start(pid)
    return {"host": HOST, "pid": pid, "pid_start": f"{start}@{PID_NS}" if start and PID_NS else start}


def holder_alive(
    doc: dict[str, Any], beat: float | None, stale_after: float, now: float | None = None
) -> bool:
    """Is the process that wrote `doc` (host, pid, pid_start) still there?

    On this host and in this PID namespace the pid answers, whatever the beat's age: a stalled
    or starved writer (Ctrl-Z, a long GC pause, two busy cores) is alive, and taking its run
    over would split it. Elsewhere (another host, or a container sharing this hostname), a beat
    older than `stale_after` seconds means gone.
    """
    now = time.time() if now is None else now
    start, _, namespace = str(doc.get("pid_start") or "").partition("@")
    # a pid is only meaningful in its own PID namespace (older writers did not record one)
    same_namespace = namespace in ("", PID_NS)
    if doc.get("host") == HOST and doc.get("pid") and same_namespace and os.path.isdir("/proc"):
        pid = int(doc["pid"])
        if pid == os.getpid():
            return True
        return process_start(pid) == start
    return now - (beat or 0.0) <= stale_after


def writer_alive(state: dict[str, Any], now: float | None = None, written_at: float | None = None) -> bool:
    """Is the process that wrote this `running` state still there?

    `written_at` is when the state was written by a clock the reader trusts (the file's time on
    storage, or when a reader first saw it): a heartbeat never counts as later than that, so a
    writer whose clock runs ahead cannot keep its run "running" for as long as it is ahead.
    """
    beat = state.get("heartbeat")
    if written_at is not None and (beat is None or written_at < beat):
        beat = written_at
    return holder_alive(state, beat, settings.heartbeat_timeout(), now)


def derive_state(state: dict[str, Any], now: float | None = None, written_at: float | None = None) -> str:
    """The state a reader reports: a `running` run whose writer is gone reads `crashed`, or
    `preempted` if it called mark_preempting() (so does one that then failed)."""
    raw = str(state.get("state") or "running")
    if raw == "running" and not writer_alive(state, now, written_at):
        return "preempted" if state.get("preempting") else "crashed"
    if raw == "failed" and state.get("preempting"):
        return "preempted"
    return raw
