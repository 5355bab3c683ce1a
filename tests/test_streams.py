"""#30: system metrics and console output, per process, that follow forks and rewinds.

Training scripts run as real processes (tests/scripts/streams/train_with_output.py, `import
wandb` meaning runlake); waits are on conditions with generous deadlines, never on sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
from servers import wait_for
from shim import env_as_wandb

import runlake
from runlake.write.system_stats import Probe

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "streams", "train_with_output.py")


def _once_there(fn):
    """fn()'s value, None while the run does not exist yet (its process is starting)."""
    try:
        return fn()
    except runlake.RunNotFoundError:
        return None


def _start(root: str, run_id: str, *args: str, **popen) -> subprocess.Popen[str]:
    env = env_as_wandb(root, RUN_ID=run_id)
    return subprocess.Popen([sys.executable, SCRIPT, *args], env=env, text=True, **popen)


@pytest.mark.slow
def test_system_metrics_are_sampled_on_their_own_timeline(tmp_path):
    root = str(tmp_path / "root")
    flag = tmp_path / "done"
    proc = _start(root, "sys", "3", "--done-flag", str(flag), stdout=subprocess.DEVNULL)
    try:
        lake = runlake.Lake(root)
        wait_for(lambda: _once_there(lambda: lake.system_metrics("sys").height), "a stored sample")
    finally:
        flag.touch()
        assert proc.wait(timeout=600) == 0
    lake.refresh(force=True)
    metrics = lake.system_metrics("sys")
    keys = set(metrics["key"])
    assert {
        "system.cpu",
        "system.memory_percent",
        "system.proc.memory.rssMB",
        "system.proc.cpu.threads",
    } <= keys
    assert metrics["value"].is_finite().all()
    history = lake.history("sys")
    assert not [c for c in history.columns if c.startswith("system.")]  # never in history()
    steps = history["_step"].to_list()
    assert steps == list(range(len(steps)))  # samples never advanced _step
    assert metrics["step"].min() >= 0 and metrics["step"].max() <= steps[-1] + 1
    assert lake.sql("SELECT count(*) AS n FROM system_metrics WHERE run_id = 'sys'")["n"][0] == metrics.height
    wide = runlake.Api(root=root).run("sys").history(stream="system", pandas=False)
    assert wide and {"_timestamp", "_runtime", "system.cpu"} <= set(wide[0])


@pytest.mark.slow
def test_no_system_metrics_when_disabled_and_no_console_when_off(tmp_path):
    root = str(tmp_path / "root")
    for run_id, flag in (("quiet", "--quiet-stats"), ("mute", "--no-console")):
        proc = _start(root, run_id, "2", flag, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0 and "epoch 1 loss" in out  # the terminal shows it either way
    lake = runlake.Lake(root)
    assert lake.system_metrics("quiet").height == 0 and lake.console("quiet").height > 0
    assert lake.console("mute").height == 0


@pytest.mark.slow
def test_console_lines_in_order_with_their_step_and_stream_through_a_pipe(tmp_path):
    """stdout is a block-buffered pipe here: lines still carry the step the run was at when the
    program wrote them (captured at write(), not when the pipe is flushed)."""
    root = str(tmp_path / "root")
    proc = _start(root, "con", "3", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "epoch 2 loss" in out and "epoch 0: 25%" in out and "learning rate" in err  # still teed
    lines = runlake.Lake(root).console("con")
    got = list(zip(lines["content"], lines["step"], lines["stream"], strict=True))
    assert got[0] == ("training for 3 epochs", 0, "stdout")
    body = [(c, s, st) for c, s, st in got[1:] if not c.startswith("warning")]
    loss = [c for c, _, _ in body if " loss " in c]
    assert [(c, s) for c, s, _ in body if c.endswith("%")] == [
        (f"epoch {e}: 100%", e) for e in range(3)
    ]  # bars: last state
    assert [s for c, s, _ in body if " loss " in c] == [1, 2, 3] and len(loss) == 3  # printed after log()
    (warning,) = [
        (s, st, lvl) for (c, s, st), lvl in zip(got, lines["level"], strict=True) if c.startswith("warning")
    ]
    assert warning == (2, "stderr", "error")
    assert got[-1][0] == "done" and lines["line"].to_list() == list(range(len(got)))


_KILLED = """
import os, signal, sys, time
import runlake
root, run_id = sys.argv[1], sys.argv[2]
run = runlake.init("p", id=run_id, root=root, settings={"x_disable_stats": True})
for i in range(50):
    print(f"before {i}")
run.log({"x": 1.0})
reader = runlake.Lake(root)
deadline = time.time() + 300
while reader.console(run_id).height < 50 and time.time() < deadline:  # a flush stored them
    time.sleep(0.05)
    reader.refresh(force=True)
print("after the flush")
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_a_sigkill_loses_only_what_was_printed_since_the_last_flush(tmp_path):
    root = str(tmp_path / "root")
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED, root, "killed"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    lake = runlake.Lake(root)
    lines = lake.console("killed")["content"].to_list()
    assert lines[:50] == [f"before {i}" for i in range(50)]
    assert lake.run("killed").state == "crashed"


def _sample(run, probe: Probe) -> None:
    run._syncer.streams.sample(probe)  # what the sampler thread does every interval


def test_a_rewind_archives_the_abandoned_attempts_lines_and_a_fork_inherits_none(tmp_path, capsys):
    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    probe = Probe()
    run = lake.init("p", id="rw", settings={"x_stats_sampling_interval": 3600})
    for s in range(10):
        run.log({"x": float(s)})
        print(f"line {s}")  # printed at step s + 1
        _sample(run, probe)
    run.finish()
    again = lake.init("p", resume_from="rw?_step=5", settings={"x_stats_sampling_interval": 3600})
    print("after the rewind")
    _sample(again, probe)
    again.log({"x": 50.0})
    again.finish()
    child = lake.init("p", id="child", fork_from="rw?_step=3", settings={"x_stats_sampling_interval": 3600})
    print("the child's own line")
    child.log({"x": 9.0})
    child.finish()
    capsys.readouterr()
    assert lake.console("rw")["content"].to_list() == [*(f"line {s}" for s in range(5)), "after the rewind"]
    raw = lake.console("rw", raw=True)["content"].to_list()
    assert raw == [*(f"line {s}" for s in range(10)), "after the rewind"]  # raw keeps everything
    assert lake.console("child")["content"].to_list() == ["the child's own line"]
    system = lake.system_metrics("rw")
    assert sorted(set(system["step"])) == [1, 2, 3, 4, 5, 6] and set(system["segment"]) == {0, 1}
    assert sorted(set(lake.system_metrics("rw", raw=True)["step"])) == list(range(1, 11))
    assert lake.system_metrics("child").height == 0
    assert (
        lake.sql("SELECT content FROM console WHERE run_id = 'rw' ORDER BY time")["content"][-1]
        == "after the rewind"
    )


def test_the_api_reads_console_logs_output_log_and_system_history(tmp_path, capsys):
    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    run = lake.init("p", id="api", settings={"x_stats_sampling_interval": 3600})
    print("hello")
    run.log({"x": 1.0})
    print("oops", file=sys.stderr)
    _sample(run, Probe())
    run.finish()
    capsys.readouterr()
    api_run = runlake.Api(root=root).run("api")
    lines = list(api_run.console_logs())
    assert [(line.number, line.level, line.label, line.content) for line in lines] == [
        (0, "", "", "hello"),
        (1, "error", "", "oops"),
    ]
    assert lines[0].timestamp is not None and lines[0].timestamp.tzinfo is not None
    assert [line.content for line in api_run.console_logs(last=1)] == ["oops"]
    handle = api_run.file("output.log").download(root=str(tmp_path / "dl"))
    assert handle.read() == "hello\nERROR oops\n"
    handle.close()
    with pytest.raises(ValueError, match="already exists"):
        api_run.file("output.log").download(root=str(tmp_path / "dl"))
    assert [f.name for f in api_run.files()] == ["output.log"]
    with pytest.raises(FileNotFoundError):
        api_run.file("model.pt")
    system = api_run.history(stream="system", pandas=False)
    assert len(system) == 1 and system[0]["system.memory_percent"] > 0
    assert api_run.system_metrics["system.memory_percent"] == system[0]["system.memory_percent"]
    with pytest.raises(ValueError, match="stream"):
        api_run.history(stream="events")


def test_bad_stream_settings_are_refused_before_anything_is_written(tmp_path):
    root = tmp_path / "root"
    with pytest.raises(runlake.RunlakeError, match="console"):
        runlake.init("p", root=str(root), settings={"console": "loud"})
    with pytest.raises(runlake.RunlakeError, match="x_stats_sampling_interval"):
        runlake.init("p", root=str(root), settings={"x_stats_sampling_interval": 0})
    with pytest.raises(runlake.RunlakeError, match="x_label"):
        runlake.init("p", root=str(root), settings={"x_label": "../evil"})
    assert not root.exists()


@pytest.mark.slow
def test_runlake_logs_follows_a_live_run_and_greps(tmp_path):
    root = str(tmp_path / "root")
    flag = tmp_path / "done"
    train = _start(root, "live", "2", "--done-flag", str(flag), stdout=subprocess.DEVNULL)
    lake = runlake.Lake(root)
    wait_for(
        lambda: lake.refresh(force=True) or (lake.runs().height and lake.console("live").height),
        "its first lines",
    )
    env = {**os.environ}
    follow = subprocess.Popen(
        [sys.executable, "-m", "runlake.cli", "--root", root, "logs", "live", "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(line.rstrip("\n") for line in follow.stdout))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_for(lambda: "still training" in seen, "runlake logs -f to print a live line")
    finally:
        flag.touch()
    assert train.wait(timeout=600) == 0
    code = follow.wait(timeout=600)
    reader.join()
    errors = follow.stderr.read()  # type: ignore[union-attr]
    follow.stdout.close()  # type: ignore[union-attr]
    follow.stderr.close()  # type: ignore[union-attr]
    assert code == 0, errors
    assert seen[0] == "training for 2 epochs" and seen[-1] == "done"
    grep = subprocess.run(
        [sys.executable, "-m", "runlake.cli", "--root", root, "logs", "live", "--grep", r"loss \d"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert grep.stdout.splitlines()[:2] == [c for c in seen if " loss " in c][:2]
    bad = subprocess.run(
        [sys.executable, "-m", "runlake.cli", "--root", root, "logs", "live", "--grep", "("],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "regular expression" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_three_processes_in_shared_mode_lose_nothing(tmp_path):
    """W&B's shared mode: a primary and two more ranks log into one run at once; every rank's
    metrics, console lines and parts are there, each labelled, and the run reads whole."""
    root = str(tmp_path / "root")
    script = os.path.join(os.path.dirname(__file__), "scripts", "streams", "ddp_rank.py")
    env = env_as_wandb(root)
    procs = [
        subprocess.Popen(
            [sys.executable, script, "job", str(rank), "40"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (1, 2, 0)  # the others start first: they wait for the primary to create the run
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    lake = runlake.Lake(root)
    history = lake.history("job")
    assert history["_step"].to_list() == list(range(40))
    for rank in range(3):
        assert history[f"rank_{rank}/step_seen"].to_list() == [float(s) for s in range(40)]
    console = lake.console("job")
    assert sorted(set(console["label"])) == ["rank_0", "rank_1", "rank_2"]
    for rank in range(3):
        mine = console.filter(console["label"] == f"rank_{rank}")["content"].to_list()
        assert [line.split(" loss")[0] for line in mine] == [f"rank {rank} step {s}" for s in range(40)]
    assert lake.runs()["state"].to_list() == ["finished"] and lake.doctor().height == 0
    names = os.listdir(os.path.join(root, "history", "project=ddp", "run_id=job", "segment=0"))
    assert {n.split("@")[1] for n in names if "@" in n} == {"rank_1.parquet", "rank_2.parquet"}
    with pytest.raises(runlake.RunlakeError, match="x_label"):
        runlake.init("ddp", id="job", root=root, settings={"mode": "shared", "x_primary": False})
    with pytest.raises(runlake.RunlakeError, match="id="):
        runlake.init("ddp", root=root, settings={"mode": "shared", "x_primary": False, "x_label": "r9"})


@pytest.mark.slow
def test_a_wandb_runs_console_and_system_metrics_are_imported(tmp_path):
    """`runlake import wandb` brings W&B's console output (output_raw records) and its system
    metrics (stats records) along, each line with the step the run was at."""
    pytest.importorskip("wandb")
    import json as jsonlib

    from runlake.importers.wandb import _pb
    from runlake.importers.wandb_log import chunks

    script = os.path.join(os.path.dirname(__file__), "scripts", "streams", "wandb_offline_output.py")
    env = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline"}
    subprocess.run(
        [sys.executable, script], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=600
    )
    (wandb_file,) = [
        os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "wandb") for f in fs if f.endswith(".wandb")
    ]
    pb, _ = _pb()
    stats = 0
    for raw in chunks(wandb_file):  # what the file holds, counted with wandb's own classes
        record = pb.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "stats":
            stats += sum(isinstance(jsonlib.loads(i.value_json), int | float) for i in record.stats.item)
    lake = runlake.Lake(str(tmp_path / "root"))
    lake.import_runs("wandb", str(tmp_path / "wandb"), progress=False)
    (run_id,) = lake.runs()["run_id"].to_list()
    lines = lake.console(run_id)
    got = list(zip(lines["content"], lines["step"], lines["stream"], strict=True))
    assert got == [*((f"epoch {i}", i + 1, "stdout") for i in range(5)), ("bad thing", 5, "stderr")]
    system = lake.system_metrics(run_id)
    assert system.height == stats and all(k.startswith("system.") for k in system["key"])
    assert not [c for c in lake.history(run_id).columns if c.startswith("system")]


def test_nvidia_gpus_are_sampled_under_wandbs_names_and_a_failing_probe_leaves_its_keys_out(monkeypatch):
    """No GPU here: nvidia-ml-py's module is stood in for with the calls it answers."""
    import types

    from runlake.write import system_stats

    class Util:
        gpu, memory = 87, 40

    class Mem:
        used, total = 3 * 2**30, 12 * 2**30

    def no_power(handle):
        raise RuntimeError("not supported on this board")

    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: f"gpu{i}",
        nvmlDeviceGetUtilizationRates=lambda h: Util,
        nvmlDeviceGetMemoryInfo=lambda h: Mem,
        NVML_TEMPERATURE_GPU=0,
        nvmlDeviceGetTemperature=lambda h, kind: 61,
        nvmlDeviceGetPowerUsage=no_power,
        nvmlDeviceGetEnforcedPowerLimit=lambda h: 300_000,
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    sample = system_stats._nvidia()()
    assert sample["system.gpu.0.gpu"] == 87.0 and sample["system.gpu.1.memory"] == 40.0
    assert sample["system.gpu.1.memoryAllocated"] == 25.0 and sample["system.gpu.0.temp"] == 61.0
    assert not [k for k in sample if "power" in k.lower()]  # the probe that failed: left out
    monkeypatch.setattr(fake, "nvmlDeviceGetCount", lambda: 0)
    assert system_stats._nvidia() is None  # no device: no GPU keys at all
