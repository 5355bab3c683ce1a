"""The `streams` scenario (#30): what console capture and system metrics cost the training
loop, and how fast a console reads back.

- the ingest benchmark (`run.log` of 10 floats a step, then `finish()`, in a fresh process)
  with both streams on (the default: console captured, system metrics every 15 s) and both off
  (`WANDB_CONSOLE=off`, `WANDB_X_DISABLE_STATS=true`), interleaved on/off, 5 pairs: the median
  log() call and points per second of each, and their ratio;
- the same with a print() every 100 steps (what a training script does), on and off;
- a console of 100,000 lines read back (`Lake.console`) by a new reader.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import time
from typing import Any

import runlake

from .scenarios import _ingest_child

Rows = list[tuple[str, str, str]]
OFF = {"WANDB_CONSOLE": "off", "WANDB_X_DISABLE_STATS": "true"}


def _child(root: str, steps: int, queue: Any, env: dict[str, str], prints: bool) -> None:
    os.environ.update(env)
    if not prints:
        _ingest_child(root, steps, queue)
        return
    import io
    import sys

    sys.stdout = io.StringIO()  # the terminal is not what is measured
    run = runlake.init("bench", root=root)
    t0 = time.perf_counter()
    for i in range(steps):
        run.log({f"m{j}": float(i + j) for j in range(10)})
        if i % 100 == 0:
            print(f"step {i} loss {1.0 / (i + 1):.4f}")
    t_calls = time.perf_counter() - t0
    run.finish()
    queue.put({"us_per_call": t_calls / steps * 1e6, "points_per_s": steps * 10 / (time.perf_counter() - t0)})


def _measure(path: str, steps: int, env: dict[str, str], prints: bool) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(path, steps, queue, env, prints))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def streams(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    steps = 20_000 if quick else 100_000
    out: dict[str, Any] = {}
    rows: Rows = []
    for prints in (False, True):
        on, off = [], []
        for i in range(5):  # interleaved: the machine's noise falls on both sides alike
            on.append(_measure(f"{path}/on-{prints}-{i}", steps, {}, prints))
            off.append(_measure(f"{path}/off-{prints}-{i}", steps, OFF, prints))
        med = {
            side: {k: statistics.median(r[k] for r in runs) for k in ("us_per_call", "points_per_s")}
            for side, runs in (("on", on), ("off", off))
        }
        ratio = med["on"]["points_per_s"] / med["off"]["points_per_s"]
        case = "with a print() every 100 steps" if prints else "log() only"
        out[case] = {**med, "throughput_on_over_off": ratio}
        rows.append(
            (
                "streams",
                f"ingest {steps:,} steps x 10 floats, {case}",
                f"on {med['on']['us_per_call']:.2f} us/call {med['on']['points_per_s'] / 1e6:.2f} M points/s, "
                f"off {med['off']['us_per_call']:.2f} us/call {med['off']['points_per_s'] / 1e6:.2f} M points/s "
                f"(on/off throughput {ratio:.3f})",
            )
        )
    # a console of 100,000 lines, read back by a new reader
    root = f"{path}/console"
    import io
    import sys

    saved = sys.stdout
    sys.stdout = io.StringIO()
    try:
        run = runlake.init("bench", id="chatty", root=root, settings={"x_disable_stats": True})
        for i in range(100_000):
            print(f"line {i}: loss {1.0 / (i + 1):.6f}")
            if i % 1000 == 0:
                run.log({"loss": 1.0 / (i + 1)})
        run.finish()
    finally:
        sys.stdout = saved
    times = []
    for _ in range(3):
        lake = runlake.Lake(root)
        t0 = time.perf_counter()
        lines = lake.console("chatty")
        times.append(time.perf_counter() - t0)
        lake.close()
    assert lines.height == 100_000
    out["console_100k_read_s"] = statistics.median(times)
    rows.append(
        (
            "streams",
            "a 100,000-line console read back (new reader)",
            f"{out['console_100k_read_s'] * 1e3:.0f} ms",
        )
    )
    return out, rows
