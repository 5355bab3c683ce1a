"""16 writer processes create runs, fork each other's live runs and log, while 2 readers query
throughout: every run and every row is there at the end, and no reader ever errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

import runlake

pytestmark = pytest.mark.slow

WRITERS, RUNS, STEPS = 16, 3, 200

WRITER = textwrap.dedent(
    """
    import json, os, random, sys, time
    import polars as pl
    import runlake
    root, wid = sys.argv[1], int(sys.argv[2])
    runs, steps, barrier, writers = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
    rng = random.Random(wid)

    def value(r, i):
        return float(wid * 1_000_000 + r * 10_000 + i)

    def live_source():
        # another writer's run 0: live until every writer has forked one (the barriers say so,
        # not a heartbeat, which a starved process may miss), so a fork point always exists
        live = runlake.runs("many", root=root).filter(
            pl.col("run_id").str.ends_with("r0") & ~pl.col("run_id").str.starts_with(f"w{wid:02d}")
            & pl.col("last_step").is_not_null()
        )
        if not live.height:
            return None
        pick = live.row(rng.randrange(live.height), named=True)
        return f"{pick['run_id']}?_step={pick['last_step']}"

    # run 0 stays live until every writer has forked someone else's live run
    first = runlake.init("many", root=root, id=f"w{wid:02d}r0")
    for i in range(steps // 2):
        first.log({"x": value(0, i), "w": float(wid)})
    first.flush()
    open(os.path.join(barrier, str(wid)), "w").close()
    deadline = time.time() + 300
    while len([n for n in os.listdir(barrier) if n.isdigit()]) < writers and time.time() < deadline:
        time.sleep(0.05)
    made = []
    for r in range(1, runs):
        spec = live_source() if r == 1 or rng.random() < 0.5 else None
        run = runlake.init("many", root=root, id=f"w{wid:02d}r{r}", fork_from=spec)
        if r == 1:
            open(os.path.join(barrier, f"forked-{wid}"), "w").close()
        start = run.step
        for i in range(steps):
            run.log({"x": value(r, i), "w": float(wid)})
        run.finish()
        made.append({"id": run.id, "parent": spec and [spec.split("?")[0], int(spec.split("=")[1])], "start": start})
    # every run 0 stays live until every writer has forked one
    while len(os.listdir(barrier)) < 2 * writers and time.time() < deadline:
        time.sleep(0.05)
    for i in range(steps // 2, steps):
        first.log({"x": value(0, i), "w": float(wid)})
    first.finish()
    made.insert(0, {"id": first.id, "parent": None, "start": 0})
    for m in made:
        print(json.dumps(m), flush=True)
    """
)

READER = textwrap.dedent(
    """
    import os, sys, time
    import runlake
    root, stop = sys.argv[1], sys.argv[2]
    reads = errors = 0
    con = runlake.connect(root)  # held open the whole time, like a notebook
    while not os.path.exists(stop):
        try:
            table = runlake.runs(root=root)
            for run_id in table["run_id"].to_list()[:8]:
                runlake.history(run_id, ["x"], root=root)
            runlake.sql("SELECT count(*) FROM history", root=root)
            reads += 1
        except Exception as exc:
            errors += 1
            print("ERROR", type(exc).__name__, exc, file=sys.stderr, flush=True)
        time.sleep(0.05)
    con.close()
    print(reads, errors, flush=True)
    """
)


def _run_population(root: str, tmp_path) -> float:
    env = {**os.environ, "RUNLAKE_FLUSH_INTERVAL": "0.2", "PYTHONUNBUFFERED": "1"}
    stop = str(tmp_path / "stop")
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, root, stop],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    started = time.time()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, root, str(w), str(RUNS), str(STEPS), str(barrier), str(WRITERS)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WRITERS)
    ]
    made = []
    try:
        for proc in writers:
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err
            made += [json.loads(line) for line in out.splitlines()]
        elapsed = time.time() - started
    finally:  # never leave a process behind, whatever failed
        open(stop, "w").close()
        for proc in writers:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc in readers:
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        assert proc.returncode == 0, err
        reads, errors = map(int, out.split())
        assert errors == 0, err
        assert reads >= 1

    assert len(made) == WRITERS * RUNS
    table = runlake.runs("many", root=root)
    assert sorted(table["run_id"].to_list()) == sorted(m["id"] for m in made)
    assert set(table["state"].to_list()) == {"finished"}
    forks = [m for m in made if m["parent"]]
    assert len(forks) >= WRITERS, "every writer forks another writer's live run once"
    for m in made:
        frame = runlake.history(m["id"], ["x"], root=root)
        wid, r = int(m["id"][1:3]), int(m["id"][4:])
        own = frame.filter(frame["_step"] >= m["start"])["x"].to_list()
        assert own == [float(wid * 1_000_000 + r * 10_000 + i) for i in range(STEPS)], m["id"]
        inherited = m["parent"][1] + 1 if m["parent"] else 0
        assert frame.height == inherited + STEPS, m["id"]
        assert frame["_step"].to_list() == list(range(inherited + STEPS))
    return elapsed


def test_sixteen_writers_two_readers_local(local_root, tmp_path):
    elapsed = _run_population(local_root, tmp_path)
    print(f"16 writers on a local root: {elapsed:.1f} s")


def test_sixteen_writers_two_readers_s3(s3_root, tmp_path):
    elapsed = _run_population(s3_root, tmp_path)
    print(f"16 writers on the S3 server: {elapsed:.1f} s")
