"""#23 import safety: names from input files never become paths, a bad record skips itself (never
the whole import), damage is always said, negative steps are listed, links are not followed.
Inputs are made with each source's own library (wandb's protobuf records, tensorboardX, mlflow)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib

import pytest

import runlake

pytest.importorskip("wandb")


def _wandb_file(path, project: str, rows: list[dict], run_id: str = "r1") -> None:
    """A .wandb file (W&B's log framing, wandb's own Record protobuf) with a run record and
    one history record per row ({"_step": ..., key: value_json})."""
    from wandb.proto import wandb_internal_pb2 as pb

    records = []
    run = pb.Record()
    run.run.run_id = run_id
    run.run.project = project
    run.run.start_time.seconds = 1_700_000_000
    records.append(run.SerializeToString())
    for row in rows:
        rec = pb.Record()
        for key, value_json in row.items():
            item = rec.history.item.add()
            item.key = key
            item.value_json = value_json
        records.append(rec.SerializeToString())
    exit_ = pb.Record()
    exit_.exit.exit_code = 0
    records.append(exit_.SerializeToString())
    out = bytearray(b":W&B" + struct.pack("<HB", 0xBEE1, 0))
    for body in records:
        left = 32 * 1024 - len(out) % (32 * 1024)
        assert left > 7 + len(body), "test records fit one block"
        out += struct.pack("<IHB", zlib.crc32(body, zlib.crc32(bytes([1]))), len(body), 1) + body
    path.write_bytes(bytes(out))


def test_a_project_named_like_a_path_never_leaves_the_root(tmp_path):
    """#23.3: `../../..` once made the import remove a directory outside the root."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    root = tmp_path / "a" / "b" / "root"
    source = tmp_path / "src"
    source.mkdir()
    names = ["../../..", "team/proj", "a=b", "br[1]", "x" * 300, "..", ".", ""]
    for i, name in enumerate(names):
        _wandb_file(source / f"run-{i}.wandb", name, [{"_step": "0", "loss": "1.5"}], run_id=f"r{i}")
    lake = runlake.Lake(str(root))
    report = lake.import_runs("wandb", str(source))
    assert (victim / "keep.txt").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["a", "src", "victim"]
    assert set(report.runs["status"]) == {"imported"}
    runs = lake.runs()
    assert runs.height == len(names)
    for row in runs.iter_rows(named=True):
        runlake.store.names.check_name(row["project"], "project")  # every one a safe name
        assert lake.history(row["run_id"])["loss"].to_list() == [1.5]  # and readable
    projects = set(runs["project"])
    assert "team-proj" not in projects or len(projects) == len(names)  # distinct names stay distinct
    meta = {json.loads(m).get("source_project") for m in runs["metadata"]}
    assert "../../.." in meta and "team/proj" in meta
    lake.close()


def test_one_bad_record_skips_that_record_not_the_import(tmp_path):
    """#23.6: a `_step` of Infinity or 2**64, a value that is not JSON: that record is listed."""
    source = tmp_path / "src"
    source.mkdir()
    rows = [
        {"_step": "0", "loss": "1.0"},
        {"_step": "Infinity", "loss": "2.0"},
        {"_step": str(2**64), "loss": "3.0"},
        {"_step": "3", "loss": "{not json"},
        {"_step": "NaN", "loss": "4.0"},
        {"_step": "5", "loss": "5.0"},
    ]
    _wandb_file(source / "bad.wandb", "p", rows, run_id="bad")
    _wandb_file(source / "good.wandb", "p", [{"_step": "0", "loss": "7.0"}], run_id="good")
    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    report = lake.import_runs("wandb", str(source))
    assert sorted(report.runs["run_id"]) == ["bad", "good"]
    assert lake.history("bad")["loss"].to_list() == [1.0, 5.0]
    assert lake.history("good")["loss"].to_list() == [7.0]
    reasons = [s.reason for s in report.skipped]
    assert len([r for r in reasons if "record" in r and "skipped" in r]) == 4, reasons
    assert all(s.where.endswith("bad.wandb") for s in report.skipped)
    lake.close()
    # the command says so in its exit status
    again = subprocess.run(
        [sys.executable, "-m", "runlake.cli", "--root", str(tmp_path / "r2"), "import", "wandb", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 3, again.stderr
    assert "skipped" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.slow
def test_negative_steps_are_listed_and_the_run_stays_readable(tmp_path):
    """#23.5: MLflow allows step -1; a part named for it was never listed by a read."""
    mlflow = pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("neg")
        with mlflow.start_run(run_name="r") as run:
            for step in (-1, 0, 1, 2):
                mlflow.log_metric("loss", float(step + 10), step=step)
        mlflow.set_tracking_uri("")
    lake = runlake.Lake(str(tmp_path / "root"))
    report = lake.import_runs("mlflow", uri)
    run_id = run.info.run_id
    assert lake.history(run_id, ["loss"])["loss"].to_list() == [10.0, 11.0, 12.0]
    assert any("below 0" in s.reason and "'loss'" in s.reason for s in report.skipped)
    assert lake.doctor().height == 0
    lake.close()


@pytest.mark.slow
def test_tensorboard_damage_is_said_and_links_are_not_followed(tmp_path):
    """#23.6 and #23.10: a flipped byte once imported half a file in silence; `latest -> run_2`
    imported run_2 twice and a link to `..` the whole tree again."""
    tbx = pytest.importorskip("tensorboardX")
    logdir = tmp_path / "logs"
    for name in ("run_1", "run_2"):
        writer = tbx.SummaryWriter(str(logdir / name))
        for step in range(200):
            writer.add_scalar("loss", float(step), step)
        writer.close()
    os.symlink(logdir / "run_2", logdir / "latest")
    os.symlink(logdir, logdir / "run_1" / "up")
    lake = runlake.Lake(str(tmp_path / "root"))
    report = lake.import_runs("tensorboard", str(logdir))
    assert sorted(report.runs["source_id"].to_list()) == sorted(set(report.runs["source_id"].to_list()))
    assert report.runs.height == 2 and report.skipped == []
    # one flipped byte in the middle of run_2's file
    (event,) = [p for p in (logdir / "run_2").iterdir() if "tfevents" in p.name]
    data = bytearray(event.read_bytes())
    data[len(data) // 2] ^= 0x10
    event.write_bytes(bytes(data))
    report = runlake.Lake(str(tmp_path / "root2")).import_runs("tensorboard", str(logdir))
    damaged = [s for s in report.skipped if s.where == str(event)]
    assert damaged and "damaged" in damaged[0].reason, report.skipped


@pytest.mark.slow
def test_mlflow_file_store_with_a_damaged_run_imports_the_others(tmp_path, monkeypatch):
    """#23.10: one bad line in one run's metric file failed the whole search."""
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = tmp_path / "mlruns"
    import warnings

    ids = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.set_tracking_uri(store.as_uri())
        mlflow.set_experiment("e")
        for i in range(3):
            with mlflow.start_run(run_name=f"r{i}") as run:
                for step in range(5):
                    mlflow.log_metric("loss", float(step), step=step)
            ids.append(run.info.run_id)
        mlflow.set_tracking_uri("")
    (metric,) = list(store.glob(f"*/{ids[1]}/metrics/loss"))
    metric.write_text(metric.read_text() + "this is not a metric line\n")
    lake = runlake.Lake(str(tmp_path / "root"))
    report = lake.import_runs("mlflow", str(store))
    imported = set(report.runs["run_id"])
    assert {ids[0], ids[2]} <= imported
    assert any(ids[1] in s.where for s in report.skipped), report.skipped
    for run_id in (ids[0], ids[2]):
        assert lake.history(run_id, ["loss"])["loss"].to_list() == [0.0, 1.0, 2.0, 3.0, 4.0]
    lake.close()


def test_a_wandb_directory_is_imported_one_run_at_a_time(tmp_path, monkeypatch):
    """#23.10: `runlake import wandb DIR` held every run in memory before landing any (4 runs of
    250k steps: 1.3 GB). Each run is now read just before it lands and let go after."""
    import gc
    import weakref

    from runlake.importers import wandb as wandb_importer

    source = tmp_path / "src"
    source.mkdir()
    for i in range(4):
        rows = [{"_step": str(s), "loss": str(float(s * i))} for s in range(50)]
        _wandb_file(source / f"run-{i}.wandb", "p", rows, run_id=f"r{i}")
    alive: list[weakref.ref] = []
    held: list[int] = []
    load = wandb_importer._load

    def counting(*args, **kwargs):
        gc.collect()
        held.append(sum(ref() is not None for ref in alive))  # runs still held when the next is read
        run = load(*args, **kwargs)
        alive.append(weakref.ref(run))
        return run

    monkeypatch.setattr(wandb_importer, "_load", counting)
    lake = runlake.Lake(str(tmp_path / "root"))
    report = lake.import_runs("wandb", str(source))
    assert report.runs.height == 4 and held == [0, 0, 0, 0]
    for i in range(4):
        assert lake.history(f"r{i}")["loss"].to_list() == [float(s * i) for s in range(50)]
    lake.close()
