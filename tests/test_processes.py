"""Across real processes: fork in another process, SIGKILL, concurrent writers with a reader."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import polars as pl
import pytest

import runlake

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"RUNLAKE_FLUSH_INTERVAL": "0.2", "RUNLAKE_HEARTBEAT_TIMEOUT": "3", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def _spawn(code: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(code: str, timeout: float = 120, **env: str) -> str:
    proc = _spawn(code, **env)
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def _wait_line(proc: subprocess.Popen[str], expected: str, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith(expected):
            return line.strip()
        if not line and proc.poll() is not None:
            raise AssertionError(f"child exited early: {proc.stderr.read() if proc.stderr else ''}")
    raise AssertionError(f"no {expected!r} line within {timeout}s")


def test_log_in_one_process_fork_in_a_second_read_in_a_third(local_root):
    run_id = _run(
        f"""
        import runlake
        run = runlake.init("p", root={local_root!r})
        for i in range(1000):
            run.log({{"loss": float(i)}})
        run.finish()
        print(run.id)
        """
    ).strip()
    fork_id = _run(
        f"""
        import runlake
        fork = runlake.init("p", root={local_root!r}, fork_from="{run_id}?_step=499")
        for i in range(10):
            fork.log({{"loss": -1.0}})
        fork.finish()
        print(fork.id)
        """
    ).strip()
    out = _run(
        f"""
        import runlake
        h = runlake.history("{fork_id}", ["loss"], root={local_root!r})
        print(h.height, h["_step"].max(), h["loss"][499], h["loss"][500])
        """
    )
    assert out.split() == ["510", "509", "499.0", "-1.0"]


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def shared_root(request, tmp_path) -> str:
    """A root that several processes share: a local path, or the S3 server (options via env)."""
    return str(tmp_path / "lake") if request.param == "local" else request.getfixturevalue("s3_root")


def _idle_logger(root: str, run_id: str, steps: int) -> subprocess.Popen[str]:
    """A child that logs `steps` rows of x, says 'logged', then idles without finishing:
    only the background flusher can make its rows durable."""
    proc = _spawn(
        f"""
        import time, runlake
        run = runlake.init("p", root={root!r}, id={run_id!r})
        for i in range({steps}):
            run.log({{"x": float(i)}})
        print("logged", flush=True)
        time.sleep(600)
        """
    )
    try:
        _wait_line(proc, "logged")
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc


def _flushed(root: str, last_step: int, timeout: float = 120) -> None:
    """Wait until another process's background flusher has made `last_step` durable (its
    state says so): a condition, not a sleep, so busy cores only make it slower."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        steps = runlake.runs(root=root)["last_step"].to_list()
        if steps == [last_step]:
            return
        time.sleep(0.1)
    raise AssertionError(f"the flusher did not make step {last_step} durable within {timeout}s: {steps}")


def test_sigkilled_logger_reads_crashed_and_loses_nothing_flushed(shared_root):
    local_root = shared_root
    proc = _idle_logger(local_root, "victim", 3000)
    _flushed(local_root, 2999)  # the flusher's doing: the process only logged
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    table = runlake.runs(root=local_root)
    assert table["state"].to_list() == ["crashed"]
    assert table["last_step"].to_list() == [2999]
    assert runlake.history("victim", root=local_root)["x"].to_list() == [float(i) for i in range(3000)]
    again = runlake.init(root=local_root, id="victim", resume="allow")
    assert again.step == 3000
    again.log({"x": 3000.0})
    again.finish()
    assert runlake.runs(root=local_root)["state"].to_list() == ["finished"]
    assert len(runlake.history("victim", root=local_root)) == 3001


def test_interpreter_exit_flushes_and_finishes(local_root):
    _run(
        f"""
        import runlake
        run = runlake.init("p", root={local_root!r}, id="exiter")
        for i in range(777):
            run.log({{"x": float(i)}})
        """,
        RUNLAKE_FLUSH_INTERVAL="60",
    )
    assert runlake.runs(root=local_root)["state"].to_list() == ["finished"]
    assert len(runlake.history("exiter", root=local_root)) == 777


def test_uncaught_exception_marks_the_run_failed(local_root):
    proc = _spawn(
        f"""
        import runlake
        run = runlake.init("p", root={local_root!r}, id="crasher")
        run.log({{"x": 1.0}})
        raise SystemError("boom")
        """
    )
    proc.communicate(timeout=180)
    assert proc.returncode != 0
    row = runlake.runs(root=local_root).row(0, named=True)
    assert row["state"] == "failed" and row["last_step"] == 0


def test_fork_a_live_run_of_another_process_up_to_its_watermark(shared_root):
    local_root = shared_root
    proc = _idle_logger(local_root, "livesrc", 100)
    try:
        _flushed(local_root, 99)
        assert runlake.runs(root=local_root)["state"].to_list() == ["running"]
        fork = runlake.init("p", root=local_root, fork_from="livesrc?_step=99")
        fork.finish()
        with pytest.raises(runlake.ForkPointError, match="last step is 99"):
            runlake.init("p", root=local_root, fork_from="livesrc?_step=100")
        with pytest.raises(runlake.RunlakeError, match="still running"):
            runlake.init(root=local_root, resume_from="livesrc?_step=5")
        with pytest.raises(runlake.RunlakeError, match="still running"):
            runlake.init(root=local_root, id="livesrc", resume="allow")
        assert len(runlake.history(fork.id, root=local_root)) == 100
    finally:
        proc.kill()
        proc.communicate()


def test_two_writers_and_an_open_reader(local_root):
    reader = _spawn(
        f"""
        import time, runlake
        con = runlake.connect({local_root!r})  # a notebook keeps this open throughout
        n = 0
        deadline = time.time() + 120
        while time.time() < deadline:
            table = runlake.runs(root={local_root!r})
            for run_id in table["run_id"].to_list():
                runlake.history(run_id, ["x"], root={local_root!r})
            n += 1
            if table.height == 2 and set(table["state"].to_list()) == {{"finished"}}:
                break
            time.sleep(0.05)
        print("reads", n, flush=True)
        time.sleep(0.5)
        """
    )
    writer_code = """
        import sys, runlake
        run = runlake.init("p", root={root!r}, id=sys.argv[1] if len(sys.argv) > 1 else "{rid}")
        for i in range(20000):
            run.log({{"x": float(i), "y": 1.0}})
        run.finish()
    """
    writers = [_spawn(writer_code.format(root=local_root, rid=rid)) for rid in ("writer1", "writer2")]
    for proc in writers:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    out, err = reader.communicate(timeout=180)
    assert reader.returncode == 0, err
    assert int(out.split()[1]) >= 1
    for rid in ("writer1", "writer2"):
        frame = runlake.history(rid, root=local_root)
        assert frame["x"].to_list() == [float(i) for i in range(20000)]


def test_two_processes_rewinding_one_run_at_once_one_wins(shared_root, tmp_path):
    local_root = shared_root
    run = runlake.init("p", root=local_root, id="contested")
    for i in range(10):
        run.log({"x": float(i)})
    run.finish()
    gate = str(tmp_path / "gate")
    code = f"""
        import os, sys, time, runlake
        open({gate!r} + "-ready-" + str(os.getpid()), "w").close()
        while not os.path.exists({gate!r} + "-go"):  # both processes race from the same instant
            time.sleep(0.005)
        try:
            run = runlake.init(root={local_root!r}, resume_from="contested?_step=4")
        except runlake.RunlakeError as exc:
            print("lost", exc, flush=True)
        else:
            print("won", flush=True)
            time.sleep(2)
            run.log({{"x": 100.0}})
            run.finish()
    """
    import glob

    procs = [_spawn(code) for _ in range(2)]
    deadline = time.time() + 60
    while len(glob.glob(gate + "-ready-*")) < 2 and time.time() < deadline:
        time.sleep(0.01)
    open(gate + "-go", "w").close()
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        outs.append(out.split()[0])
    for path in glob.glob(gate + "-*"):
        os.remove(path)
    assert sorted(outs) == ["lost", "won"]
    assert runlake.history("contested", root=local_root)["x"].to_list() == [0.0, 1.0, 2.0, 3.0, 4.0, 100.0]
    assert runlake.runs(root=local_root).filter(pl.col("run_id") == "contested")["segment"].item() == 1
