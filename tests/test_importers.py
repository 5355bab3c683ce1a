"""runlake import (#12): inputs made by the real libraries (wandb offline, mlflow on sqlite,
tensorboardX event files, a neptune-exporter-shaped Parquet from its documented schema),
imported, and every point and the metadata compared with what was logged."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import runlake
from runlake.errors import RunlakeError

HERE = os.path.dirname(__file__)


def _points(lake, run_id, segment=None, keys=None):
    """{step: {key: value}} of a run's effective history (or one segment's), no system keys."""
    frame = lake.history(run_id, keys, segment=segment)
    out = {}
    for row in frame.iter_rows(named=True):
        values = {k: v for k, v in row.items() if not k.startswith("_") and v is not None}
        if values:
            out[row["_step"]] = values
    return out


# ---- W&B ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("wandb")
    script = os.path.join(HERE, "scripts", "wandb_offline_runs.py")
    subprocess.run([sys.executable, script, str(out)], check=True, timeout=600, cwd=str(out))
    return out


@pytest.mark.slow
def test_wandb_offline_runs_forks_and_rewinds_come_in_exact(wandb_dir, tmp_path):
    lake = runlake.Lake(tmp_path / "root")
    fork_id = json.loads((wandb_dir / "expected.json").read_text())["fork_id"]
    report = lake.import_runs("wandb", str(wandb_dir / "wandb"))
    assert sorted(report.runs["run_id"]) == sorted(["base1", fork_id, "failed1"])  # latest-run counted once
    assert set(report.runs["status"]) == {"imported"}
    runs = {r["run_id"]: r for r in lake.runs().iter_rows(named=True)}
    base = runs["base1"]
    assert (base["name"], base["notes"], base["tags"], base["group"], base["job_type"]) == (
        "the base",
        "n1",
        ["t1", "t2"],
        "g",
        "train",
    )
    assert (base["source"], base["source_id"], base["project"], base["state"]) == (
        "wandb",
        "base1",
        "imp",
        "finished",
    )
    assert json.loads(base["config"]) == {"lr": 0.1, "nested": {"a": 1}}
    # the summary is W&B's own, as the latest attempt left it (a rewind's: no hand-set "best")
    assert json.loads(base["summary"])["loss"] == 208.0 and "best" not in json.loads(base["summary"])
    # the first attempt, archived by the rewind at 6: every point as logged
    first = _points(lake, "base1", segment=0)
    assert sorted(first) == list(range(10))
    for step in range(10):
        assert first[step]["loss"] == 1.0 / (step + 1) and first[step]["train.acc"] == step / 10
        assert first[step]["label"] == f"s{step}"
    assert json.loads(first[3]["per_class"]) == [0.1, 0.2]
    hist = json.loads(first[3]["hist"])
    assert hist["_type"] == "histogram" and hist["values"] == [10, 10, 10, 10, 10]
    # the rewind: steps 0..6 of the first attempt, then 7, 8
    effective = _points(lake, "base1", keys=["loss"])
    assert effective == {
        **{s: {"loss": 1.0 / (s + 1)} for s in range(7)},
        7: {"loss": 207.0},
        8: {"loss": 208.0},
    }
    # the fork: base1 up to 4, then its own steps
    assert runs[fork_id]["parent_run_id"] == "base1" and runs[fork_id]["fork_step"] == 4
    forked = _points(lake, fork_id, keys=["loss"])
    assert forked == {
        **{s: {"loss": 1.0 / (s + 1)} for s in range(5)},
        **{s: {"loss": 100.0 + s} for s in range(5, 8)},
    }
    lineage = lake.lineage(fork_id)
    assert lineage["run_id"].to_list() == [fork_id, "base1"] and lineage["segment"].to_list() == [0, 0]
    failed = runs["failed1"]
    assert (failed["state"], failed["exit_code"]) == ("failed", 2)
    assert json.loads(failed["summary"]) == {"x": 1.0, "note": "failed on purpose"}
    # again: nothing new
    again = lake.import_runs("wandb", str(wandb_dir / "wandb"))
    assert set(again.runs["status"]) == {"unchanged"} and again.points == 0
    assert lake.runs().height == 3


@pytest.mark.slow
def test_wandb_single_file_and_damaged_files(wandb_dir, tmp_path):
    files = sorted(wandb_dir.glob("wandb/offline-run-*failed1*/*.wandb"))
    lake = runlake.Lake(tmp_path / "root")
    assert lake.import_runs("wandb", str(files[0])).runs["run_id"].to_list() == ["failed1"]
    # a torn copy of the base run (cut in the middle) and a foreign file
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    source = sorted(wandb_dir.glob("wandb/offline-run-*base1/*.wandb"))[0].read_bytes()
    (damaged / "run-torn.wandb").write_bytes(source[: len(source) * 2 // 3])
    (damaged / "run-foreign.wandb").write_bytes(b"not a wandb file at all")
    report = runlake.Lake(tmp_path / "root2").import_runs("wandb", str(damaged))
    assert report.runs["run_id"].to_list() == ["base1"] and report.runs["points"][0] > 0
    assert any("foreign" in s.where and "does not start with ':W&B'" in s.reason for s in report.skipped)


def test_wandb_foreign_directory_is_one_clear_error(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(RunlakeError, match=r"holds no W&B run files \(\.wandb\)"):
        runlake.Lake(tmp_path / "root").import_runs("wandb", str(tmp_path))
    with pytest.raises(RunlakeError, match="does not exist"):
        runlake.Lake(tmp_path / "root").import_runs("wandb", str(tmp_path / "missing"))


# ---- MLflow -----------------------------------------------------------------------------------
def _mlflow_db(path, extra_steps=0):
    code = f"""
import mlflow
mlflow.set_tracking_uri("sqlite:///{path}")
mlflow.set_experiment("exp a")
with mlflow.start_run(run_name="parent", tags={{"team": "x"}}) as parent:
    mlflow.log_params({{"lr": 0.1, "opt": "adam"}})
    mlflow.set_tag("mlflow.note.content", "a note")
    for s in range(6 + {extra_steps}):
        mlflow.log_metric("loss", 1 / (s + 1), step=s)
    for s in range(0, 12, 3):
        mlflow.log_metric("val/acc", s / 12, step=s)
    with mlflow.start_run(run_name="child", nested=True):
        mlflow.log_metric("x", 2.0, step=0)
print(parent.info.run_id)
"""
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=300
    ).stdout.split()[-1]


@pytest.mark.slow
def test_mlflow_runs_merge_by_step_and_grow_on_reimport(tmp_path):
    db = tmp_path / "mlflow.db"
    parent_id = _mlflow_db(db)
    lake = runlake.Lake(tmp_path / "root")
    report = lake.import_runs("mlflow", f"sqlite:///{db}")
    assert report.runs.height == 2 and set(report.runs["status"]) == {"imported"}
    runs = {r["name"]: r for r in lake.runs().iter_rows(named=True)}
    parent = runs["parent"]
    assert parent["run_id"] == parent_id and parent["source"] == "mlflow" and parent["project"] == "exp-a"
    assert json.loads(parent["config"]) == {"lr": "0.1", "opt": "adam"} and parent["tags"] == ["team=x"]
    assert parent["notes"] == "a note" and parent["state"] == "finished"
    assert json.loads(runs["child"]["metadata"])["parent_run_id"] == parent_id  # a link, not a fork
    assert runs["child"]["parent_run_id"] is None
    expected = {s: {"loss": 1 / (s + 1)} for s in range(6)}
    for s in range(0, 12, 3):
        expected.setdefault(s, {})["val/acc"] = s / 12
    assert _points(lake, parent_id) == expected
    stamps = lake.history(parent_id)["_timestamp"].to_list()
    assert all(abs(t - parent["created_at"].timestamp()) < 3600 for t in stamps)
    # the source grows (the same run logs more): only the new steps come in
    code = f"""
import mlflow
mlflow.set_tracking_uri("sqlite:///{db}")
with mlflow.start_run(run_id="{parent_id}"):
    for s in range(6, 15):
        mlflow.log_metric("loss", 1 / (s + 1), step=s)
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    again = lake.import_runs("mlflow", f"sqlite:///{db}", experiment="exp a")
    grown = again.runs.filter(again.runs["run_id"] == parent_id).row(0, named=True)
    assert (
        grown["status"] == "grown" and grown["points"] == 9
    )  # loss at steps 6..14 (6 and 9 already had val/acc)
    assert _points(lake, parent_id, keys=["loss"]) == {s: {"loss": 1 / (s + 1)} for s in range(15)}
    with pytest.raises(RunlakeError, match="no MLflow experiment named 'nope'"):
        lake.import_runs("mlflow", f"sqlite:///{db}", experiment="nope")
    with pytest.raises(RunlakeError, match="does not exist"):
        lake.import_runs("mlflow", f"sqlite:///{tmp_path}/missing.db")


# ---- TensorBoard ------------------------------------------------------------------------------
def test_tensorboard_scalars_complete_and_purge_step_is_a_rewind(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboardX import SummaryWriter

    logdir = tmp_path / "logs"
    writer = SummaryWriter(str(logdir / "run_a"))
    for step in range(1500):  # more than TensorBoard's default reservoir keeps (1000)
        writer.add_scalar("loss", 1 / (step + 1), step)
        if step % 10 == 0:
            writer.add_scalar("acc/train", step / 1500, step)
    writer.close()
    writer = SummaryWriter(str(logdir / "run_a"), purge_step=1200, filename_suffix=".restart")
    for step in range(1200, 1600):
        writer.add_scalar("loss", 5.0 + step, step)
    writer.close()
    writer = SummaryWriter(str(logdir / "nested" / "run_b"))
    writer.add_scalar("x", 3.0, 7)
    writer.close()
    lake = runlake.Lake(tmp_path / "root")
    report = lake.import_runs("tensorboard", str(logdir))
    runs = {r["name"]: r for r in lake.runs().iter_rows(named=True)}
    assert set(runs) == {"run_a", "nested/run_b"} and runs["run_a"]["source"] == "tensorboard"
    run_a = runs["run_a"]["run_id"]
    # the effective history is what TensorBoard shows, every point (no sampling)
    accumulator = EventAccumulator(str(logdir / "run_a"), size_guidance={"scalars": 0})
    accumulator.Reload()
    for tag in ("loss", "acc/train"):
        want = {e.step: e.value for e in accumulator.Scalars(tag)}
        got = {s: v[tag] for s, v in _points(lake, run_a, keys=[tag]).items()}
        assert got == pytest.approx(want) and len(got) == len(want)
    # the superseded attempt is archived, whole
    archived = _points(lake, run_a, segment=0, keys=["loss"])
    assert len(archived) == 1500 and archived[1300]["loss"] == pytest.approx(1 / 1301)
    assert lake.lineage(run_a)["cutoff"].to_list()[0] == 1199
    assert report.runs.filter(report.runs["run_id"] == run_a)["segments"][0] == 2
    # more events later: only they come in
    writer = SummaryWriter(str(logdir / "nested" / "run_b"), filename_suffix=".more")
    writer.add_scalar("x", 4.0, 8)
    writer.close()
    again = lake.import_runs("tensorboard", str(logdir))
    assert dict(again.runs.select("run_id", "status").rows())[runs["nested/run_b"]["run_id"]] == "grown"
    assert _points(lake, runs["nested/run_b"]["run_id"]) == {7: {"x": 3.0}, 8: {"x": 4.0}}
    with pytest.raises(RunlakeError, match="no TensorBoard event files"):
        lake.import_runs("tensorboard", str(tmp_path / "root"))


# ---- Neptune ----------------------------------------------------------------------------------
SCHEMA = pa.schema(
    [
        ("project_id", pa.string()),
        ("run_id", pa.string()),
        ("attribute_path", pa.string()),
        ("attribute_type", pa.string()),
        ("step", pa.decimal128(18, 6)),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("int_value", pa.int64()),
        ("float_value", pa.float64()),
        ("string_value", pa.string()),
        ("bool_value", pa.bool_()),
        ("datetime_value", pa.timestamp("ms", tz="UTC")),
        ("string_set_value", pa.list_(pa.string())),
        ("file_value", pa.struct([("path", pa.string())])),
        (
            "histogram_value",
            pa.struct(
                [("type", pa.string()), ("edges", pa.list_(pa.float64())), ("values", pa.list_(pa.float64()))]
            ),
        ),
    ]
)


def _row(run_id, path, kind, step=None, **values):
    base = dict.fromkeys(SCHEMA.names)
    when = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
        seconds=float(step or 0)
    )
    base.update(
        project_id="org/proj",
        run_id=run_id,
        attribute_path=path,
        attribute_type=kind,
        step=Decimal(str(step)) if step is not None else None,
        timestamp=when if step is not None else None,
    )
    base.update(values)
    return base


def test_neptune_exporter_parquet_with_a_fork(tmp_path):
    project = tmp_path / "export" / "org_proj"
    project.mkdir(parents=True)
    created = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    parent = [
        _row("PROJ-1", "sys/name", "string", string_value="exp-1"),
        _row("PROJ-1", "sys/tags", "string_set", string_set_value=["a", "b"]),
        _row("PROJ-1", "sys/creation_time", "datetime", datetime_value=created),
        _row("PROJ-1", "parameters/lr", "float", float_value=0.01),
        _row("PROJ-1", "parameters/layers", "int", int_value=3),
    ]
    parent += [_row("PROJ-1", "train/loss", "float_series", s, float_value=1 / (s + 1)) for s in range(20)]
    parent += [_row("PROJ-1", "log", "string_series", s, string_value=f"epoch {s}") for s in range(0, 20, 5)]
    parent += [
        _row(
            "PROJ-1",
            "weights",
            "histogram_series",
            10,
            histogram_value={"type": "COUNTING", "edges": [0.0, 1.0, 2.0], "values": [3.0, 4.0]},
        )
    ]
    child = [
        _row("PROJ-2", "sys/name", "string", string_value="exp-1-fork"),
        _row("PROJ-2", "sys/forking/parent", "string", string_value="PROJ-1"),
        _row("PROJ-2", "sys/forking/step", "float", float_value=9.0),
        _row("PROJ-2", "sys/creation_time", "datetime", datetime_value=created + datetime.timedelta(hours=1)),
    ]
    child += [_row("PROJ-2", "train/loss", "float_series", s, float_value=50.0 + s) for s in range(10, 15)]
    half = [_row("PROJ-3", "sys/name", "string", string_value="halves")]
    half += [_row("PROJ-3", "m", "float_series", s / 2, float_value=s) for s in range(4)]
    for run_id, rows in (("PROJ-1", parent), ("PROJ-2", child), ("PROJ-3", half)):
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        pq.write_table(table.slice(0, len(rows) // 2), project / f"{run_id}_part_0.parquet")
        pq.write_table(table.slice(len(rows) // 2), project / f"{run_id}_part_1.parquet")
    (project / "PROJ-9_part_1.parquet").write_bytes(b"incomplete: no part 0")  # not a complete run
    lake = runlake.Lake(tmp_path / "root")
    report = lake.import_runs("neptune", str(tmp_path / "export"))
    assert sorted(report.runs["run_id"]) == ["PROJ-1", "PROJ-2", "PROJ-3"]
    runs = {r["run_id"]: r for r in lake.runs().iter_rows(named=True)}
    assert runs["PROJ-1"]["name"] == "exp-1" and runs["PROJ-1"]["tags"] == ["a", "b"]
    assert json.loads(runs["PROJ-1"]["config"]) == {"parameters/lr": 0.01, "parameters/layers": 3}
    assert runs["PROJ-1"]["created_at"].timestamp() == created.timestamp()
    points = _points(lake, "PROJ-1")
    assert {s: v["train/loss"] for s, v in points.items()} == {s: 1 / (s + 1) for s in range(20)}
    assert {s: v["log"] for s, v in points.items() if "log" in v} == {
        s: f"epoch {s}" for s in range(0, 20, 5)
    }
    assert json.loads(points[10]["weights"]) == {
        "_type": "histogram",
        "values": [3.0, 4.0],
        "bins": [0.0, 1.0, 2.0],
    }
    assert (runs["PROJ-2"]["parent_run_id"], runs["PROJ-2"]["fork_step"]) == ("PROJ-1", 9)
    fork = {s: v["train/loss"] for s, v in _points(lake, "PROJ-2", keys=["train/loss"]).items()}
    assert fork == {**{s: 1 / (s + 1) for s in range(10)}, **{s: 50.0 + s for s in range(10, 15)}}
    assert json.loads(runs["PROJ-3"]["metadata"])["step_multiplier"] == 10
    assert {s: v["m"] for s, v in _points(lake, "PROJ-3").items()} == {0: 0.0, 5: 1.0, 10: 2.0, 15: 3.0}
    stamps = lake.history("PROJ-1", "train/loss")["_timestamp"].to_list()
    assert stamps[:3] == [created.timestamp() + s for s in range(3)]
    assert lake.import_runs("neptune", str(tmp_path / "export")).points == 0


def test_a_failed_landing_leaves_nothing_and_a_retry_lands_whole(tmp_path, monkeypatch):
    from runlake.importers import lander

    logdir = tmp_path / "logs"
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(logdir / "r"))
    for step in range(100):
        writer.add_scalar("loss", float(step), step)
    writer.close()
    root = tmp_path / "root"
    real = lander._write_points
    monkeypatch.setattr(lander, "PART_POINTS", 60)  # several parts per run

    def broken(storage, project, run_id, segment, points, origin):
        real(storage, project, run_id, segment, points, origin)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(lander, "_write_points", broken)
    with pytest.raises(OSError, match="disk full"):  # storage failing stops the import...
        runlake.Lake(root).import_runs("tensorboard", str(logdir))
    assert runlake.Lake(root).runs().height == 0  # ...and the run is not there, not even in part
    leftovers = [p for p in root.rglob("*") if p.is_file() and "_catalog" not in str(p)]
    assert leftovers == []
    monkeypatch.setattr(lander, "_write_points", real)
    again = runlake.Lake(root).import_runs("tensorboard", str(logdir))
    assert again.runs["status"].to_list() == ["imported"]
    assert len(runlake.Lake(root).history(again.runs["run_id"][0])) == 100
