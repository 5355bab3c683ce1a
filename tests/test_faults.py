"""Storage faults: retries without duplicates, spilling while storage is down, sync, corrupt parts."""

from __future__ import annotations

import os

import polars as pl
import pytest
from faulty import FlakyFileSystem

import runlake


def _parts(root):
    fs = FlakyFileSystem()
    return [p for p in fs.find(fs._strip_protocol(root)) if p.endswith(".parquet")]


def test_transient_failures_are_retried_without_duplicates(flaky_root):
    run = runlake.init("p", root=flaky_root)
    for i in range(100):
        run.log({"x": float(i)})
    FlakyFileSystem.fail_next = 2
    FlakyFileSystem.ambiguous = True  # the failed attempts did store the object
    run.flush()
    assert FlakyFileSystem.failures == 2
    run.finish()
    assert len(_parts(flaky_root)) == 1
    assert runlake.history(run.id, root=flaky_root)["x"].to_list() == [float(i) for i in range(100)]


def test_storage_down_spills_with_bounded_memory_then_catches_up(flaky_root, tmp_path):
    # (the background flusher may flush too, at any moment: the storage switches happen inside
    # the blocks that expect their warnings, and the spill is judged by its steps, not its files)
    run = runlake.init("p", root=flaky_root)
    with pytest.warns(RuntimeWarning, match="storage .* failed after retries"):
        FlakyFileSystem.down = True
        for i in range(5000):
            run.log({"x": float(i)})
            if i % 500 == 499:
                run.flush()
                assert len(run._buffer.rows) == 0  # memory stays bounded: rows went to the spill directory
    spilled = [
        os.path.join(d, f)
        for d, _, files in os.walk(tmp_path / "spill")
        for f in files
        if f.endswith(".parquet")
    ]
    assert len(spilled) >= 10  # a part per flush at least
    steps = pl.concat([pl.read_parquet(f, columns=["step"]) for f in spilled])["step"].unique().sort()
    assert steps.to_list() == list(range(5000))  # every step waits in the spill directory
    with pytest.warns(RuntimeWarning, match="storage is back"):
        FlakyFileSystem.down = False
        run.log({"x": 5000.0})
        run.flush()
    run.finish()
    assert runlake.history(run.id, root=flaky_root)["x"].to_list() == [float(i) for i in range(5001)]
    assert runlake.runs(root=flaky_root)["state"].to_list() == ["finished"]
    assert not [f for _, _, files in os.walk(tmp_path / "spill") for f in files]


def test_an_outage_that_fails_reads_too_spills_as_one_of_writes_does(flaky_root, tmp_path):
    """A flush reads before it writes (is the run still ours?): storage that cannot be read
    either must not stop the spill, or memory would grow and finish() fail."""
    run = runlake.init("p", root=flaky_root)
    for i in range(500):
        run.log({"x": float(i)})
    with pytest.warns(RuntimeWarning, match="storage .* failed after retries"):
        FlakyFileSystem.down = FlakyFileSystem.reads_down = True
        run.flush()
    assert len(run._buffer.rows) == 0  # spilled
    with pytest.warns(RuntimeWarning, match="storage is back"):
        FlakyFileSystem.down = FlakyFileSystem.reads_down = False
        run.finish()
    assert runlake.history(run.id, root=flaky_root)["x"].to_list() == [float(i) for i in range(500)]


def test_finish_reports_what_is_not_uploaded_and_sync_uploads_it(flaky_root):
    run = runlake.init("p", root=flaky_root)
    for i in range(300):
        run.log({"x": float(i)})
    FlakyFileSystem.down = True
    with pytest.warns(RuntimeWarning) as caught:
        run.finish()
    assert any(
        "not uploaded yet" in str(w.message)
        and "steps 0..299" in str(w.message)
        and "runlake sync" in str(w.message)
        for w in caught
    )
    result = runlake.sync(flaky_root).row(0, named=True)
    assert result["uploaded"] == 0 and result["waiting"] == 2
    FlakyFileSystem.down = False
    result = runlake.sync(flaky_root).row(0, named=True)
    assert result == {**result, "uploaded": 2, "waiting": 0}
    assert runlake.history(run.id, root=flaky_root)["x"].to_list() == [float(i) for i in range(300)]
    assert runlake.runs(root=flaky_root)["state"].to_list() == ["finished"]


def test_sync_command(flaky_root):
    from click.testing import CliRunner

    from runlake.cli import main

    out = CliRunner().invoke(main, ["--root", flaky_root, "sync"])
    assert out.exit_code == 0 and "uploaded 0 of 0" in out.output


def test_corrupt_part_raises_naming_the_file_and_other_runs_stay_readable(root):
    good = runlake.init("p", root=root)
    good.log({"x": 1.0})
    good.finish()
    bad = runlake.init("p", root=root)
    bad.log({"x": 1.0})
    bad.finish()
    import fsspec

    fs, path = fsspec.core.url_to_fs(root, **runlake.store.settings.storage_options(None))
    part = [p for p in fs.find(f"{path}/history/project=p/run_id={bad.id}") if p.endswith(".parquet")][0]
    fs.pipe_file(part, fs.cat_file(part)[:40])  # truncated
    with pytest.raises(runlake.CorruptPartError, match=part.rsplit("/", 1)[-1]):
        runlake.history(bad.id, root=root)
    assert runlake.history(good.id, root=root)["x"].to_list() == [1.0]
    assert isinstance(runlake.runs(root=root), pl.DataFrame)


def test_doctor_reports_and_quarantines_corrupt_parts(root):
    from click.testing import CliRunner

    from runlake.cli import main

    src = runlake.init("p", root=root)
    for i in range(10):
        src.log({"x": float(i)})
    src.flush()
    for i in range(10, 20):
        src.log({"x": float(i)})
    src.finish()
    fork = runlake.init("p", root=root, fork_from=f"{src.id}?_step=15")
    fork.finish()
    assert runlake.doctor(root).height == 0
    import fsspec

    fs, path = fsspec.core.url_to_fs(root, **runlake.store.settings.storage_options(None))
    parts = sorted(p for p in fs.find(f"{path}/history/project=p/run_id={src.id}") if p.endswith(".parquet"))
    fs.pipe_file(parts[1], b"PAR1garbagePAR1")
    report = runlake.doctor(root)
    assert report.height == 1
    row = report.row(0, named=True)
    assert (row["run_id"], row["step_lo"], row["step_hi"], row["action"]) == (src.id, 10, 19, "none")
    assert row["affected_runs"] == sorted([src.id, fork.id])
    cli = CliRunner().invoke(main, ["--root", root, "doctor"])
    assert cli.exit_code == 1 and "steps 10..19" in cli.output
    fixed = runlake.doctor(root, fix=True)
    assert "quarantined" in fixed["action"][0] and "lost steps 10..19" in fixed["action"][0]
    assert runlake.doctor(root).height == 0
    assert runlake.history(src.id, root=root)["_step"].to_list() == list(range(10))
    assert runlake.history(fork.id, root=root)["_step"].to_list() == list(range(10))
    assert any("_quarantine" in p for p in fs.find(path))
    assert CliRunner().invoke(main, ["--root", root, "doctor"]).output.strip() == "all parts are readable"


def test_a_missing_storage_driver_names_the_extra_to_install():
    import importlib.util

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    with pytest.raises(runlake.RunlakeError, match=r"pip install 'runlake\[gcs\]'"):
        runlake.init("p", root="gs://some-bucket/lake")
    with pytest.raises(runlake.RunlakeError, match=r"pip install 'runlake\[gcs\]'"):
        runlake.runs(root="gs://some-bucket/lake")


def test_doctor_reports_a_corrupt_pack_once_per_node_and_quarantines_it(root):
    first = runlake.init("p", root=root)
    for i in range(20):
        first.log({"x": float(i)})
    first.finish()
    second = runlake.init("p", root=root)
    second.log({"x": 1.0})
    second.finish()
    runlake.compact(root, grace=0)  # the packed parts go now: the pack is the only copy
    live = runlake.init("p", root=root)  # written after the compaction: not in the pack
    live.log({"x": 7.0})
    live.finish()
    import fsspec

    fs, path = fsspec.core.url_to_fs(root, **runlake.store.settings.storage_options(None))
    (pack,) = [p for p in fs.find(f"{path}/packs") if p.endswith(".parquet")]
    fs.pipe_file(pack, fs.cat_file(pack)[:60])  # truncated
    with pytest.raises(runlake.CorruptPartError, match=pack.rsplit("/", 1)[-1]):
        runlake.history(first.id, root=root)
    report = runlake.doctor(root)
    assert sorted(report["run_id"]) == sorted([first.id, second.id])
    assert set(report["path"].map_elements(lambda p: p.rsplit("/", 1)[-1], return_dtype=pl.String)) == {
        pack.rsplit("/", 1)[-1]
    }
    fixed = runlake.doctor(root, fix=True)
    assert all("quarantined" in a for a in fixed["action"])
    assert runlake.doctor(root).height == 0
    assert runlake.history(first.id, root=root).height == 0  # its steps were lost, reads work
    assert runlake.history(live.id, root=root)["x"].to_list() == [7.0]
    assert not [p for p in fs.find(f"{path}/packs") if p.endswith((".parquet", ".json"))]
    assert any("_quarantine" in p and p.endswith(".parquet") for p in fs.find(path))


def test_log_never_raises_when_storage_and_the_spill_disk_both_fail(flaky_root, tmp_path, monkeypatch):
    """#23.13: with the flusher stuck, log() spills the oldest batches itself; a spill disk that
    cannot take them raised OSError on the training thread. The rows wait in memory instead, and
    nothing is lost once storage is back."""
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("RUNLAKE_SPILL_DIR", str(blocked / "spill"))  # every spill write fails
    run = runlake.init("p", root=flaky_root)
    run._flush_rows = 100  # a batch every 100 steps: many batches wait for the (stuck) flusher
    with pytest.warns(RuntimeWarning, match="spill directory cannot take rows"):
        for i in range(2000):
            run.log({"x": float(i)})  # never raises
    run.finish()
    assert runlake.history(run.id, root=flaky_root)["x"].to_list() == [float(i) for i in range(2000)]


def test_doctor_reports_the_manifest_damage_reads_warn_about(tmp_path):
    """#23.14: a missing pack manifest, a malformed segment manifest, a deleted run.json and a
    segment-1.json without its parent fields (the rewind silently undone) were all missed."""
    import glob
    import json
    import time
    import warnings

    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    for run_id in ("a", "c", "e", "packed"):
        run = lake.init("p", id=run_id)
        for i in range(10):
            run.log({"x": float(i)})
        run.finish()
    again = lake.init("p", resume_from="a?_step=5")
    again.log({"x": 1.0})
    again.finish()
    lake.compact(grace=0)
    assert lake.doctor().height == 0
    lake.close()
    meta = tmp_path / "root" / "runs" / "p"
    doc = json.loads((meta / "a" / "meta" / "segment-1.json").read_text())
    for field in ("parent_run_id", "parent_segment", "cutoff"):
        doc.pop(field)
    (meta / "a" / "meta" / "segment-1.json").write_text(json.dumps(doc))
    (meta / "c" / "meta" / "run.json").unlink()
    old = time.time() - 3600
    for f in (meta / "c" / "meta").iterdir():
        os.utime(f, (old, old))
    (meta / "e" / "meta" / "segment-0.json").write_text("{not json")
    (pack_manifest,) = glob.glob(os.path.join(root, "packs", "*", "pack-*.json"))
    os.remove(pack_manifest)
    fresh = runlake.Lake(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # reads warn; doctor must report
        report = fresh.doctor()
        problems = {row["path"]: row["problem"] for row in report.iter_rows(named=True)}
        assert any(p.endswith("a/meta/segment-1.json") and "parent_run_id" in w for p, w in problems.items())
        assert any(p.endswith("e/meta/segment-0.json") for p in problems)
        assert any(p.endswith("c/meta/run.json") and "no run.json" in w for p, w in problems.items())
        assert any(p.endswith(".parquet") and "no manifest" in w for p, w in problems.items())
        with pytest.raises(runlake.RunlakeError, match="segment-1.json"):
            fresh.history("a")  # never the rewind silently undone
    fresh.close()


def test_logging_an_image_while_storage_is_down_never_raises(flaky_root):
    """#23.13: log() never raises for storage trouble, media included: the image waits in the
    spill directory and lands with the next flush once storage is back."""
    import numpy as np

    run = runlake.init("p", root=flaky_root)
    with pytest.warns(RuntimeWarning, match="could not be stored"):
        FlakyFileSystem.down = True
        run.log({"img": runlake.Image(np.zeros((4, 4, 3), dtype=np.uint8)), "x": 1.0})
    with pytest.warns(RuntimeWarning):  # the flush spills too, then storage comes back
        run.flush()
        FlakyFileSystem.down = False
        run.log({"x": 2.0})
        run.flush()
    run.finish()
    fs = FlakyFileSystem()
    media = [p for p in fs.find(fs._strip_protocol(flaky_root)) if "/media/" in p]
    assert len(media) == 1
    assert runlake.history(run.id, root=flaky_root)["x"].to_list() == [1.0, 2.0]
