"""The benchmark scenarios. Each returns (results dict, table rows)."""

from __future__ import annotations

import gc
import importlib.util
import math
import multiprocessing as mp
import os
import random
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import runlake
from runlake.store import parquet as _parquet

from . import workspace as workspace_bench

Rows = list[tuple[str, str, str]]


def _median_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _bytes(path: str, sub: str = "history") -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(os.path.join(path, sub)):
        total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    return total


def _data_bytes(path: str) -> int:
    """History rows on storage: nodes' own parts plus packs (after compaction)."""
    return _bytes(path, "history") + _bytes(path, "packs")


def _all_bytes(path: str) -> int:
    return _data_bytes(path) + _bytes(path, "runs")


# ---- 1. ingest ---------------------------------------------------------------------------
def _ingest_child(root: str, steps: int, queue: Any) -> None:
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(steps, 10)), axis=0)
    rows = [{f"m{j}": float(walk[i, j]) for j in range(10)} for i in range(steps)]
    run = runlake.init("bench", root=root)
    log = run.log
    t0 = time.perf_counter()
    for row in rows:
        log(row)
    t_calls = time.perf_counter() - t0
    run.finish()
    total = time.perf_counter() - t0
    queue.put(
        {
            "points_per_s": steps * 10 / total,
            "us_per_call": t_calls / steps * 1e6,
            "seconds": total,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def ingest(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    steps = 20_000 if quick else 100_000
    outs = []
    ctx = mp.get_context("spawn")
    for i in range(3):
        queue = ctx.Queue()
        proc = ctx.Process(target=_ingest_child, args=(f"{path}/{i}", steps, queue))
        proc.start()
        outs.append(queue.get())
        proc.join()
    med = {k: statistics.median(o[k] for o in outs) for k in outs[0]}
    return med, [
        (
            "ingest",
            f"{steps:,} steps x 10 floats, run.log + finish",
            f"{med['points_per_s'] / 1e6:.2f} M points/s, {med['us_per_call']:.2f} us/call, "
            f"peak RSS {med['peak_rss_mb']:.0f} MB",
        )
    ]


# ---- 2. fork -----------------------------------------------------------------------------
def fork(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    out, rows = {}, []
    for points in (1_000, 1_000_000 if quick else 10_000_000):
        root = f"{path}/{points}"
        run = runlake.init("bench", root=root)
        row = {f"m{j}": float(j) for j in range(10)}
        for _ in range(points // 10):
            run.log(row)
        run.finish()
        last = points // 10 - 1
        times, written = [], []
        for _ in range(15):
            gc.collect()  # not the parent's logging garbage: only the fork is timed
            before = _all_bytes(root)
            t0 = time.perf_counter()
            child = runlake.init("bench", root=root, fork_from=f"{run.id}?_step={last}")
            times.append(time.perf_counter() - t0)
            written.append(_all_bytes(root) - before)
            child.finish()
        out[points] = {"ms": statistics.median(times) * 1e3, "bytes_written": statistics.median(written)}
        rows.append(
            (
                "fork",
                f"parent of {points:,} points",
                f"{out[points]['ms']:.2f} ms, {out[points]['bytes_written']:.0f} B written",
            )
        )
    small, big = out[1_000]["ms"], out[max(out)]["ms"]
    out["ratio_big_small"] = big / small
    rows.append(("fork", "big / small parent", f"{big / small:.2f}x"))
    return out, rows


# ---- 3. deep lineage ---------------------------------------------------------------------
def deep(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    out, rows = {}, []
    for depth in (1, 10, 100) if quick else (1, 10, 100, 1000):
        root = f"{path}/{depth}"
        steps = 1000
        run = runlake.init("bench", root=root)
        for i in range(steps):
            run.log({"loss": float(i), "acc": 1.0, "lr": 0.1})
        run.finish()
        for d in range(1, depth):
            cut = d * steps - 1
            run = runlake.init("bench", root=root, fork_from=f"{run.id}?_step={cut}")
            for i in range(steps):
                run.log({"loss": float(cut + i), "acc": 1.0, "lr": 0.1})
            run.finish()
        leaf = run.id
        out[depth] = {}
        for phase in ("as written", "compacted"):
            if phase == "compacted":
                runlake.compact(root, progress=False)
            one = _median_ms(lambda leaf=leaf, root=root: runlake.history(leaf, ["loss"], root=root))
            every = _median_ms(lambda leaf=leaf, root=root: runlake.history(leaf, root=root), repeat=3)
            out[depth][phase] = {"one_key_ms": one, "all_keys_ms": every}
            rows.append(
                (
                    "deep lineage",
                    f"depth {depth}, leaf history, {phase}",
                    f"one key {one:.1f} ms, all keys {every:.1f} ms",
                )
            )
    return out, rows


# ---- 4. population-based training (and the copy-on-fork baseline) -----------------------
def _pbt(root: str, population: int, generations: int, steps: int, copy_on_fork: bool) -> dict[str, Any]:
    rng = random.Random(0)
    t0 = time.perf_counter()
    members = [runlake.init("pbt", root=root, config={"lr": rng.random()}) for _ in range(population)]
    score = {m.id: 0.0 for m in members}
    generation_of = {m.id: 0 for m in members}
    for gen in range(generations):
        for m in members:
            value = score[m.id]
            for _ in range(steps):
                value += rng.gauss(0.01, 0.1)
                m.log({"score": value, "loss": 1.0 / (1.0 + abs(value))})
            score[m.id] = value
        if gen == generations - 1:
            break
        ranked = sorted(members, key=lambda m: score[m.id])
        quarter = population // 4
        for loser in ranked[:quarter]:
            winner = rng.choice(ranked[-quarter:])
            loser.finish()
            members.remove(loser)
            if copy_on_fork:
                winner.flush()
                child = runlake.init("pbt", root=root, config={"lr": rng.random()})
                inherited = runlake.history(winner.id, root=root)
                for row in inherited.drop("_timestamp", "_runtime").iter_rows(named=True):
                    step = row.pop("_step")
                    child.log({k: v for k, v in row.items() if v is not None}, step=step)
            else:
                child = runlake.init(
                    "pbt",
                    root=root,
                    fork_from=f"{winner.id}?_step={winner.step - 1}",
                    config={"lr": rng.random()},
                )
            members.append(child)
            score[child.id] = score[winner.id]
            generation_of[child.id] = gen + 1
    finals = [m.id for m in members]
    for m in members:
        m.finish()
    build = time.perf_counter() - t0
    return {
        "build_s": build,
        "bytes": _all_bytes(root),
        "finals": finals,
        "runs": len(score),
        "generation_of": generation_of,
    }


def pbt(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    population, generations, steps = (32, 10, 100) if quick else (32, 50, 200)
    zero = _pbt(f"{path}/zero", population, generations, steps, copy_on_fork=False)
    root = f"{path}/zero"
    final_sql = """
        SELECT run_id, arg_max(value, step) AS final_loss FROM history WHERE key = 'loss' GROUP BY run_id
    """
    best_sql = """
        SELECT g.generation, arg_max(h.run_id, h.value) AS best_run
        FROM (SELECT run_id, arg_max(value, step) AS value FROM history WHERE key = 'score' GROUP BY run_id) AS h
        JOIN gens AS g USING (run_id) GROUP BY g.generation ORDER BY g.generation
    """
    gens = pl.DataFrame(
        {"run_id": list(zero["generation_of"]), "generation": list(zero["generation_of"].values())}
    )
    queries: dict[str, dict[str, float]] = {}
    for phase in ("as written", "compacted"):
        if phase == "compacted":
            runlake.compact(root, progress=False)
        member = statistics.median(
            _median_ms(lambda rid=rid: runlake.history(rid, ["loss"], root=root), repeat=3)
            for rid in zero["finals"][:8]
        )
        finals_ms = _median_ms(lambda: runlake.sql(final_sql, root=root), repeat=3)
        con = runlake.connect(root)
        con.register("gens", gens.to_arrow())
        best_ms = _median_ms(lambda con=con: con.sql(best_sql).fetchall(), repeat=3)
        con.close()
        queries[phase] = {
            "member_history_one_key_ms": member,
            "final_value_every_run_ms": finals_ms,
            "best_per_generation_ms": best_ms,
        }
    copy = _pbt(f"{path}/copy", population, generations, steps, copy_on_fork=True)
    out = {
        "population": population,
        "generations": generations,
        "steps": steps,
        "runs": zero["runs"],
        "build_s": zero["build_s"],
        "bytes": zero["bytes"],
        **queries["compacted"],
        "as_written": queries["as written"],
        "copy_on_fork": {"build_s": copy["build_s"], "bytes": copy["bytes"]},
        "storage_ratio": copy["bytes"] / zero["bytes"],
        "build_ratio": copy["build_s"] / zero["build_s"],
    }
    rows = [
        (
            "pbt",
            f"{population} x {generations} gens x {steps} steps ({zero['runs']} runs)",
            f"build {zero['build_s']:.1f} s, {zero['bytes'] / 1e6:.1f} MB",
        ),
        *(
            row
            for phase, q in queries.items()
            for row in (
                (
                    "pbt",
                    f"final member history, one key, {phase}",
                    f"{q['member_history_one_key_ms']:.1f} ms (median of members)",
                ),
                (
                    "pbt",
                    f"final value of every run (SQL), {phase}",
                    f"{q['final_value_every_run_ms']:.1f} ms",
                ),
                ("pbt", f"best run per generation (SQL), {phase}", f"{q['best_per_generation_ms']:.1f} ms"),
            )
        ),
        (
            "pbt",
            "copy-on-fork baseline",
            f"build {copy['build_s']:.1f} s, {copy['bytes'] / 1e6:.1f} MB: "
            f"zero-copy is {out['storage_ratio']:.1f}x smaller, {out['build_ratio']:.1f}x faster",
        ),
    ]
    return out, rows


# ---- cold reads of a big root ----------------------------------------------------------------
def cold(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    """`runlake runs` and a one-run `runlake history` in a new process on a root of many runs,
    with no catalog cache (cold) and with the cache the first call saved (warm)."""
    import shutil
    import subprocess
    import sys

    count = 2_000 if quick else 20_000
    lake = runlake.Lake(path)
    for i in range(count):
        run = lake.init("big", id=f"r{i:05d}")
        run.log({"a": float(i)})
        run.finish()
    lake.close()
    cli = [sys.executable, "-m", "runlake.cli", "--root", path]

    def timed(*args: str) -> float:
        started = time.perf_counter()
        subprocess.run([*cli, *args], check=True, capture_output=True)
        return time.perf_counter() - started

    out: dict[str, Any] = {"runs": count}
    for name, args in (("runs", ("runs",)), ("history", ("history", f"r{count // 2:05d}"))):
        shutil.rmtree(os.path.join(path, "_catalog"), ignore_errors=True)
        out[name] = {"cold_s": timed(*args), "warm_s": statistics.median(timed(*args) for _ in range(3))}
    rows = [
        (
            "cold reads",
            f"{count:,} runs: `runlake runs`",
            f"cold {out['runs']['cold_s']:.2f} s, warm {out['runs']['warm_s']:.2f} s",
        ),
        (
            "cold reads",
            f"{count:,} runs: `runlake history` of one run",
            f"cold {out['history']['cold_s']:.2f} s, warm {out['history']['warm_s']:.2f} s",
        ),
    ]
    return out, rows


# ---- 5. many runs ------------------------------------------------------------------------
def many(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    n_runs, steps = (200, 500) if quick else (2000, 2500)
    rng = np.random.default_rng(1)
    root = path
    ids = []
    for _ in range(n_runs):
        run = runlake.init("many", root=root)
        walk = np.cumsum(rng.normal(size=(steps, 10)), axis=0).tolist()
        for row in walk:
            run.log({f"k{j}": row[j] for j in range(10)})
        run.finish()
        ids.append(run.id)
    points = n_runs * steps * 10
    out: dict[str, Any] = {"runs": n_runs, "points": points}
    rows: Rows = []
    for phase in ("before", "after"):
        if phase == "after":
            t0 = time.perf_counter()
            runlake.compact(root, progress=False)
            out["compact_s"] = time.perf_counter() - t0
        one_key = _median_ms(
            lambda: runlake.sql("SELECT run_id, step, value FROM history WHERE key = 'k0'", root=root), 3
        )
        one_run = _median_ms(lambda: runlake.history(ids[len(ids) // 2], root=root), 3)
        scan = _median_ms(lambda: runlake.sql("SELECT count(*), sum(value) FROM raw_history", root=root), 3)
        total_points = points + n_runs * steps * 2  # with _timestamp and _runtime
        out[phase] = {
            "one_key_all_runs_ms": one_key,
            "one_run_ms": one_run,
            "full_scan_ms": scan,
            "full_scan_points_per_s": total_points / (scan / 1e3),
        }
        rows.append(
            (
                "many runs",
                f"{n_runs} runs x 10 keys x {steps} steps, {phase} compaction",
                f"one key/all runs {one_key:.0f} ms, one run {one_run:.0f} ms, "
                f"full scan {total_points / (scan / 1e3) / 1e6:.0f} M points/s",
            )
        )
    return out, rows


# ---- 6. storage --------------------------------------------------------------------------
def storage(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    steps = 20_000 if quick else 100_000
    rng = np.random.default_rng(2)
    out, rows = {}, []
    for name, data in (
        ("float64 random walk", np.cumsum(rng.normal(size=(steps, 10)), axis=0)),
        (
            "float32-origin",
            np.cumsum(rng.normal(size=(steps, 10)), axis=0).astype(np.float32).astype(np.float64),
        ),
    ):
        root = f"{path}/{name.replace(' ', '_')}"
        run = runlake.init("bench", root=root)
        for row in data.tolist():
            run.log({f"m{j}": row[j] for j in range(10)})
        run.finish()
        runlake.compact(root, progress=False)
        total = _data_bytes(root)
        packs = [
            os.path.join(d, f) for d, _, fs in os.walk(f"{root}/packs") for f in fs if f.endswith(".parquet")
        ]
        table = pa.concat_tables([pq.read_table(p) for p in packs])
        user = table.filter(pc.invert(pc.is_in(table.column("key"), pa.array(["_timestamp", "_runtime"]))))
        user_only = len(_parquet.encode_pack(user))
        out[name] = {
            "bytes_per_point": total / (steps * 10),
            "metric_bytes_per_point": user_only / (steps * 10),
        }
        rows.append(
            (
                "storage",
                name,
                f"{total / (steps * 10):.2f} B/point with _timestamp/_runtime, "
                f"{user_only / (steps * 10):.2f} B/point for the metrics alone",
            )
        )
    return out, rows


# ---- 7. concurrency ----------------------------------------------------------------------
def _creator(root: str, seed_id: str, count: int, start_at: float, queue: Any) -> None:
    import runlake as _warm  # noqa: F401 - imports before the clock starts

    while time.time() < start_at:  # every process starts creating at once
        time.sleep(0.001)
    latencies = []
    for i in range(count):
        t0 = time.perf_counter()
        if i % 2:
            run = runlake.init("conc", root=root, fork_from=f"{seed_id}?_step=9")
        else:
            run = runlake.init("conc", root=root)
        latencies.append(time.perf_counter() - t0)
        run.finish()
    queue.put({"latencies": latencies, "end": time.time()})


def concurrency(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    procs_n, per = (16, 20) if quick else (16, 100)
    seed = runlake.init("conc", root=path)
    for i in range(10):
        seed.log({"x": float(i)})
    seed.finish()
    ctx = mp.get_context("spawn")  # forking a process with runlake's threads running is unsafe
    queue = ctx.Queue()
    start_at = time.time() + 8.0  # time for 16 interpreters to start and import
    procs = [ctx.Process(target=_creator, args=(path, seed.id, per, start_at, queue)) for _ in range(procs_n)]
    for p in procs:
        p.start()
    latencies, ends = [], []
    for _ in procs:
        got = queue.get()
        latencies += got["latencies"]
        ends.append(got["end"])
    for p in procs:
        p.join()
    wall = max(ends) - start_at
    t1 = time.perf_counter()
    deadline = time.time() + 120
    while runlake.runs("conc", root=path).height < procs_n * per + 1:
        if time.time() > deadline:
            raise RuntimeError("a reader never saw every created run")
        time.sleep(0.01)
    visible = time.perf_counter() - t1
    lat = np.asarray(latencies) * 1e3
    out = {
        "creates": len(latencies),
        "creates_per_s": len(latencies) / wall,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "reader_sees_all_s": visible,
    }
    return out, [
        (
            "concurrency",
            f"{procs_n} processes x {per} creates (half forks)",
            f"{out['creates_per_s']:.0f} creates/s, p50 {out['p50_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms, "
            f"a reader sees all in {visible:.2f} s",
        )
    ]


# ---- peers -------------------------------------------------------------------------------
def _runlake_side(path: str, steps: int, read_steps: int, fork_points: int) -> dict[str, float]:
    """runlake on the peers' workloads, measured in the same run."""
    rows = [{f"m{j}": float(i * j) for j in range(10)} for i in range(steps)]
    run = runlake.init("peers", root=path)
    t0 = time.perf_counter()
    for row in rows:
        run.log(row)
    run.finish()
    ingest = steps * 10 / (time.perf_counter() - t0)
    one = runlake.init("peers", root=path)
    for i in range(read_steps):
        one.log({"m1": float(i)})
    one.finish()
    read_ms = _median_ms(lambda: runlake.history(one.id, ["m1"], root=path))
    parent = runlake.init("peers", root=path)
    for i in range(fork_points // 10):
        parent.log({f"m{j}": float(i) for j in range(10)})
    parent.finish()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        runlake.init("peers", root=path, fork_from=f"{parent.id}?_step={fork_points // 10 - 1}").finish()
        times.append(time.perf_counter() - t0)
    return {"ingest_points_per_s": ingest, "read_ms": read_ms, "fork_ms": statistics.median(times) * 1e3}


def _mlflow_side(path: str, steps: int, read_steps: int, copy_points: int) -> dict[str, float]:
    import mlflow
    from mlflow.entities import Metric

    mlflow.set_tracking_uri(f"sqlite:///{path}/mlflow.db")
    client = mlflow.tracking.MlflowClient()
    exp = client.create_experiment("bench")
    now = int(time.time() * 1000)
    run = client.create_run(exp)
    t0 = time.perf_counter()
    for i in range(steps):  # one log_batch per step, as a training loop would
        client.log_batch(run.info.run_id, metrics=[Metric(f"m{j}", float(i * j), now, i) for j in range(10)])
    ingest = steps * 10 / (time.perf_counter() - t0)
    one = client.create_run(exp)
    for lo in range(0, read_steps, 1000):  # set up fast: 1,000 points per call
        client.log_batch(
            one.info.run_id,
            metrics=[Metric("m1", float(i), now, i) for i in range(lo, min(lo + 1000, read_steps))],
        )
    t0 = time.perf_counter()
    got = client.get_metric_history(one.info.run_id, "m1")
    read_s = time.perf_counter() - t0
    assert len(got) == read_steps
    # a fork in MLflow: a new run and a copy of the parent's history (read, then write back)
    child = client.create_run(exp)
    t0 = time.perf_counter()
    points = client.get_metric_history(one.info.run_id, "m1")[:copy_points]
    for lo in range(0, len(points), 1000):
        client.log_batch(child.info.run_id, metrics=points[lo : lo + 1000])
    copy_s = time.perf_counter() - t0
    return {"ingest_points_per_s": ingest, "read_ms": read_s * 1e3, "copy_points_per_s": len(points) / copy_s}


def peers(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    """MLflow (sqlite) and W&B offline next to runlake, on the same workloads in the same run."""
    out: dict[str, Any] = {}
    rows: Rows = []
    steps = 2_000 if quick else 10_000
    read_steps = 20_000 if quick else 100_000
    fork_points = 1_000_000 if quick else 10_000_000
    ours = _runlake_side(f"{path}/runlake", steps, read_steps, fork_points)
    out["runlake"] = ours
    if importlib.util.find_spec("mlflow") is None:
        out["mlflow"] = "skipped: not installed (pip install 'runlake[bench]')"
        rows.append(("peers", "MLflow (sqlite)", out["mlflow"]))
    else:
        os.makedirs(f"{path}/mlflow", exist_ok=True)
        theirs = _mlflow_side(f"{path}/mlflow", steps, read_steps, read_steps)
        fork_s = fork_points / theirs["copy_points_per_s"]  # copying is linear in the points
        ratios = {
            "ingest": ours["ingest_points_per_s"] / theirs["ingest_points_per_s"],
            "read": theirs["read_ms"] / ours["read_ms"],
            "fork": fork_s * 1e3 / ours["fork_ms"],
        }
        out["mlflow"] = {**theirs, "fork_ms_extrapolated": fork_s * 1e3, "runlake_is_x_faster": ratios}
        rows += [
            (
                "peers",
                f"MLflow sqlite ingest, {steps:,} steps x 10 (log_batch per step)",
                f"{theirs['ingest_points_per_s']:,.0f} points/s; runlake {ours['ingest_points_per_s']:,.0f}: "
                f"{ratios['ingest']:,.0f}x",
            ),
            (
                "peers",
                f"MLflow sqlite one-metric read, {read_steps:,} steps",
                f"{theirs['read_ms']:,.0f} ms; runlake {ours['read_ms']:.1f} ms: {ratios['read']:,.0f}x",
            ),
            (
                "peers",
                f"MLflow fork (new run + copy) at {fork_points:,} points",
                f"{fork_s:,.1f} s (copy rate {theirs['copy_points_per_s']:,.0f} points/s x {fork_points:,}); "
                f"runlake {ours['fork_ms']:.2f} ms: {ratios['fork']:,.0f}x",
            ),
        ]
    if importlib.util.find_spec("wandb") is None:
        out["wandb"] = "skipped: not installed (pip install 'runlake[bench]')"
        rows.append(("peers", "W&B offline", out["wandb"]))
    else:
        import wandb

        os.environ["WANDB_MODE"] = "offline"
        os.environ["WANDB_DIR"] = path
        os.environ.setdefault("WANDB_SILENT", "true")
        run = wandb.init(project="bench")
        t0 = time.perf_counter()
        for i in range(steps):
            run.log({f"m{j}": float(i * j) for j in range(10)})
        run.finish()
        ingest = steps * 10 / (time.perf_counter() - t0)
        out["wandb"] = {"points_per_s": ingest, "steps": steps}
        rows.append(
            (
                "peers",
                f"W&B offline ingest, {steps:,} steps x 10",
                f"{ingest:,.0f} points/s; runlake {ours['ingest_points_per_s'] / ingest:,.0f}x faster",
            )
        )
    return out, rows


# ---- importers -------------------------------------------------------------------------
def _make_tensorboard(path: str, steps: int, keys: int) -> None:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(os.path.join(path, "run"), max_queue=10_000, flush_secs=3600)
    for step in range(steps):
        for k in range(keys):
            writer.add_scalar(f"k{k}", float(step * k), step)
    writer.close()


def _make_mlflow(path: str, steps: int, keys: int) -> str:
    import warnings

    from mlflow import MlflowClient
    from mlflow.entities import Metric

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        uri = f"sqlite:///{path}/mlflow.db"
        os.makedirs(path, exist_ok=True)
        client = MlflowClient(uri)
        exp = client.create_experiment("bench")
        run = client.create_run(exp)
        batch: list[Any] = []
        now = int(time.time() * 1000)
        for step in range(steps):
            for k in range(keys):
                batch.append(Metric(f"k{k}", float(step * k), now + step, step))
                if len(batch) == 1000:
                    client.log_batch(run.info.run_id, metrics=batch)
                    batch = []
        if batch:
            client.log_batch(run.info.run_id, metrics=batch)
        client.set_terminated(run.info.run_id)
    return uri


def _make_neptune(path: str, steps: int, keys: int) -> None:
    import datetime
    import decimal

    os.makedirs(os.path.join(path, "proj"), exist_ok=True)
    n = steps * keys
    step = np.repeat(np.arange(steps), keys)
    table = pa.table(
        {
            "project_id": pa.array(["org/proj"] * n),
            "run_id": pa.array(["RUN-1"] * n),
            "attribute_path": pa.array([f"k{k}" for k in range(keys)] * steps),
            "attribute_type": pa.array(["float_series"] * n),
            "step": pa.array([decimal.Decimal(int(s)) for s in step], pa.decimal128(18, 6)),
            "timestamp": pa.array(
                (np.datetime64(datetime.datetime(2026, 1, 1)) + step.astype("timedelta64[s]")).astype(
                    "datetime64[ms]"
                ),
                pa.timestamp("ms", tz="UTC"),
            ),
            "float_value": pa.array(step * 0.5, pa.float64()),
        }
    )
    pq.write_table(table, os.path.join(path, "proj", "RUN-1_part_0.parquet"))


def _make_wandb(path: str, steps: int, keys: int) -> None:
    import subprocess
    import sys

    code = f"""
import os
os.environ["WANDB_MODE"] = "offline"; os.environ["WANDB_SILENT"] = "true"
import wandb
run = wandb.init(project="bench", dir={path!r})
for step in range({steps}):
    run.log({{f"k{{k}}": float(step * k) for k in range({keys})}})
run.finish()
"""
    os.makedirs(path, exist_ok=True)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=3600)


def imports(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    """`runlake import` per source: how fast the source's own library delivers points (its
    read alone), and the whole import (read + landing) in points per second."""
    from runlake.importers import _reader

    keys = 10
    sizes = {"neptune": 100_000, "tensorboard": 50_000, "mlflow": 20_000, "wandb": 20_000}
    if quick:
        sizes = {k: v // 10 for k, v in sizes.items()}
    out: dict[str, Any] = {}
    rows: Rows = []
    for source, steps in sizes.items():
        module = {"neptune": "pyarrow", "tensorboard": "tensorboardX", "mlflow": "mlflow", "wandb": "wandb"}[
            source
        ]
        if importlib.util.find_spec(module) is None:
            rows.append(
                ("import", source, f"skipped: {module} is not installed (pip install 'runlake[import]')")
            )
            continue
        src = os.path.join(path, f"{source}-src")
        target = {"neptune": src, "tensorboard": src, "wandb": os.path.join(src, "wandb")}.get(source, src)
        if source == "mlflow":
            target = _make_mlflow(src, steps, keys)
        else:
            {"neptune": _make_neptune, "tensorboard": _make_tensorboard, "wandb": _make_wandb}[source](
                src, steps, keys
            )
        points = steps * keys
        read_s = math.inf
        for _ in range(2):  # the first read also imports the library
            started = time.perf_counter()
            _reader(source)(target, None, [])
            read_s = min(read_s, time.perf_counter() - started)
        lake = runlake.Lake(os.path.join(path, f"{source}-root"))
        report = lake.import_runs(source, target, progress=False)
        total_s = report.seconds
        assert report.points == points, (source, report.points, points)
        out[source] = {"points": points, "read_s": read_s, "import_s": total_s}
        rows.append(
            (
                "import",
                f"{source}: {steps:,} steps x {keys} keys",
                f"source read {points / read_s / 1e6:.2f} M points/s; import {points / total_s / 1e6:.2f} M points/s "
                f"(landing alone {points / max(total_s - read_s, 1e-9) / 1e6:.2f} M points/s)",
            )
        )
    return out, rows


# ---- Spark beside DuckDB -----------------------------------------------------------------
def spark(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    """The PBT root on Spark (local[2]) and on DuckDB side by side: one member's history, the
    final value of every run, the full effective history count; and exporting the catalog of
    a 10,000-run root."""
    if importlib.util.find_spec("pyspark") is None:
        return {}, [("spark", "skipped", "pyspark is not installed (pip install 'runlake[spark]')")]
    import warnings

    import runlake.spark

    population, generations, steps = (16, 5, 50) if quick else (32, 20, 100)
    root = f"{path}/pbt"
    built = _pbt(root, population, generations, steps, copy_on_fork=False)
    runlake.compact(root, progress=False)  # packs, and the export
    member = built["finals"][0]
    queries = {
        "one member's history (one key)": f"SELECT step, value FROM history WHERE run_id = '{member}' AND key = 'loss'",
        "final value of every run": "SELECT run_id, max_by(value, step) FROM history WHERE key = 'loss' GROUP BY run_id",
        "effective history count": "SELECT count(*) FROM history",
    }
    duck = {}
    con = runlake.connect(root)
    for name, query in queries.items():
        duck[name] = _median_ms(lambda q=query: con.sql(q.replace("max_by", "arg_max")).fetchall(), repeat=3)
    con.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pyspark.sql import SparkSession

        started = time.perf_counter()
        session = (
            SparkSession.builder.master("local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .getOrCreate()
        )
        session_s = time.perf_counter() - started
        started = time.perf_counter()
        runlake.spark.register(session, root, check_stale=False)
        register_s = time.perf_counter() - started
        sparked = {
            name: _median_ms(lambda q=query: session.sql(q).collect(), repeat=3)
            for name, query in queries.items()
        }
        session.stop()
    count = 1_000 if quick else 10_000
    many_root = f"{path}/many"
    lake = runlake.Lake(many_root)
    for i in range(count):
        run = lake.init("many", id=f"r{i:05d}")
        run.log({"a": float(i)})
        run.finish()
    lake.runs()  # the catalog is current: the export's own cost is what is timed
    started = time.perf_counter()
    lake.export_catalog()
    export_s = time.perf_counter() - started
    lake.close()
    out = {
        "runs": built["runs"],
        "duckdb_ms": duck,
        "spark_ms": sparked,
        "session_s": session_s,
        "register_s": register_s,
        "export_runs": count,
        "export_s": export_s,
    }
    rows: Rows = [
        (
            "spark",
            f"PBT root ({built['runs']} runs): session start, register",
            f"{session_s:.1f} s, {register_s:.1f} s",
        )
    ]
    rows += [("spark", name, f"Spark {sparked[name]:.0f} ms, DuckDB {duck[name]:.1f} ms") for name in queries]
    rows.append(("spark", f"catalog export, {count:,} runs", f"{export_s:.2f} s"))
    return out, rows


# ---- the web app's endpoints ----------------------------------------------------------------
def ui(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    """What `runlake ui` serves, timed at its endpoints: one key's chart data of a run of 10
    keys x 1M steps, the run page (its metadata and every chart), a page of the runs table of
    10,000 runs, the population of a 400-run PBT project; and, with Playwright and Chromium,
    the run page's first paint in a browser."""
    from runlake.ui import api
    from runlake.ui.population import population

    steps = 100_000 if quick else 1_000_000
    runs_count = 1_000 if quick else 10_000
    root = f"{path}/root"
    lake = runlake.Lake(root)
    big = lake.init("big", id="big")
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(steps, 10)), axis=0)
    for row in walk:
        big.log({f"k{j}": float(v) for j, v in enumerate(row)})
    big.finish()
    for i in range(runs_count):
        r = lake.init("many", id=f"r{i:05d}")
        r.log({"loss": float(i)})
        r.finish()
    pop_ids = []
    for i in range(400):
        parent = pop_ids[rng.integers(len(pop_ids))] if pop_ids and i >= 40 else None
        r = lake.init("pbt", id=f"p{i:03d}", fork_from=f"{parent}?_step=9" if parent else None)
        for s in range(10):
            r.log({"score": float(i + s)})
        r.finish()
        pop_ids.append(r.id)
    lake.runs()
    lake.reader.refresh_every = 1.0  # as the server reads (see runlake/ui/server.py)

    def fresh() -> None:
        lake.charts.clear()

    fresh()
    started = time.perf_counter()
    api.series(lake, "big", "k0", buckets=1000)
    process_first_ms = (time.perf_counter() - started) * 1000
    firsts = []  # the first read of each other key: nothing of it cached
    for j in range(1, 10):
        started = time.perf_counter()
        api.series(lake, "big", f"k{j}", buckets=1000)
        firsts.append((time.perf_counter() - started) * 1000)

    def page() -> None:  # what the run page asks: its metadata (starting the prefetch), 10 charts
        fresh()
        api.run(lake, "big")
        for j in range(10):
            api.series(lake, "big", f"k{j}", buckets=600)

    out: dict[str, Any] = {
        "chart_one_key_process_first_ms": process_first_ms,
        "chart_one_key_cold_ms": statistics.median(firsts),
        "chart_one_key_ms": _median_ms(lambda: api.series(lake, "big", "k3", buckets=1000)),
        "chart_zoom_ms": _median_ms(
            lambda: (fresh(), api.series(lake, "big", "k3", buckets=1000, lo=steps * 0.4, hi=steps * 0.41))
        ),
        "run_page_ms": _median_ms(page, repeat=3),
        "runs_table_page_ms": _median_ms(
            lambda: api.runs(lake, project="many", offset=5000 if not quick else 500, limit=50)
        ),
        "runs_table_sorted_filtered_ms": _median_ms(
            lambda: api.runs(lake, q="r07", sort="last_step", limit=50)
        ),
        "population_ms": _median_ms(lambda: population(lake, "pbt", "score")),
    }
    lake.close()
    rows: Rows = [
        (
            "ui",
            f"chart data, one key of 10 x {steps:,} steps (1,000 buckets)",
            f"first read {out['chart_one_key_cold_ms']:.0f} ms (median of 9 keys; the process's first "
            f"{out['chart_one_key_process_first_ms']:.0f} ms), then {out['chart_one_key_ms']:.0f} ms",
        ),
        ("ui", "chart data, zoomed to 1%, nothing cached", f"{out['chart_zoom_ms']:.0f} ms"),
        ("ui", "run page data, nothing cached: metadata + 10 charts", f"{out['run_page_ms']:.0f} ms"),
        ("ui", f"runs table, a page of {runs_count:,} runs", f"{out['runs_table_page_ms']:.0f} ms"),
        ("ui", "runs table, text filter + sort", f"{out['runs_table_sorted_filtered_ms']:.0f} ms"),
        ("ui", "population view, 400-run PBT project", f"{out['population_ms']:.0f} ms"),
    ]
    chromium = workspace_bench.chromium()
    if chromium is not None:
        from playwright.sync_api import sync_playwright

        with workspace_bench.serve(root) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            # Playwright's waits evaluate strings, which the app's own CSP forbids: bypassed here
            page = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True).new_page()
            # as a user arrives: the runs table first, then the run, its charts never read
            page.goto(base + "#/runs")
            page.wait_for_selector("#runs-table tbody tr", timeout=120_000)
            paints = []
            for _ in range(4):
                started = time.perf_counter()
                page.goto(base + "#/run/big")
                page.wait_for_function(
                    "document.querySelectorAll('.chart-body[data-points]').length === 10", timeout=120_000
                )
                paints.append((time.perf_counter() - started) * 1000)
                page.goto("about:blank")
            browser.close()
        out["run_page_first_paint_ms"] = paints[0]
        out["run_page_again_ms"] = statistics.median(paints[1:])
        rows.append(
            (
                "ui",
                "run page in Chromium, until its 10 charts are drawn",
                f"first visit {paints[0]:.0f} ms, again {out['run_page_again_ms']:.0f} ms",
            )
        )
    return out, rows


def sql(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    """What user SQL costs since it runs in its sandbox (#23): a query on an unchanged catalog,
    a query right after a run changed the catalog (the sandbox is made again), and a history
    query (its files' checksums checked once per process)."""
    runs_count = 1_000 if quick else 10_000
    root = f"{path}/root"
    lake = runlake.Lake(root)
    for i in range(runs_count):
        r = lake.init("many", id=f"r{i:05d}")
        for s in range(5):
            r.log({"loss": float(i + s)})
        r.finish()
    lake.runs()
    count = "SELECT count(*) FROM runs WHERE project = 'many'"
    steady = _median_ms(lambda: lake.sql(count), repeat=9)
    changed = []
    for i in range(7):
        r = lake.init("extra", id=f"x{i}")
        r.log({"loss": 1.0})
        r.finish()
        t0 = time.perf_counter()
        lake.sql(count)
        changed.append((time.perf_counter() - t0) * 1e3)
    history = _median_ms(
        lambda: lake.sql("SELECT count(*), avg(value) FROM history WHERE run_id = 'r00042' AND key = 'loss'"),
        repeat=9,
    )
    lake.close()
    out = {
        "runs": runs_count,
        "query_ms": steady,
        "query_after_change_ms": statistics.median(changed),
        "history_query_ms": history,
    }
    rows: Rows = [
        ("sql", f"count over runs, {runs_count:,} runs, catalog unchanged", f"{steady:.1f} ms"),
        ("sql", "the same right after a run changed the catalog", f"{out['query_after_change_ms']:.1f} ms"),
        ("sql", "one run's history, one key", f"{history:.1f} ms"),
    ]
    return out, rows
