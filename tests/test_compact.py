"""Compaction into packs: fewer files, identical query results, idempotent, resumable after a
crash at any point, one compaction at a time, live runs untouched."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time

import duckdb
import pyarrow.parquet as pq
import pytest

import runlake
from runlake.errors import RunlakeError
from runlake.store import storage as _storage
from runlake.store.liveness import HOST, process_start


@pytest.fixture(autouse=True)
def _no_grace(monkeypatch):
    """These tests check what compaction leaves behind: the packed parts go at once (the grace
    period a default compaction gives readers is tested on its own, below)."""
    monkeypatch.setenv("RUNLAKE_COMPACT_GRACE", "0")


def _parts(root):
    return sorted(glob.glob(os.path.join(root, "history", "**", "*.parquet"), recursive=True))


def _json(path):
    with open(path) as fh:
        return json.load(fh)


def _packs(root):
    return sorted(glob.glob(os.path.join(root, "packs", "project=*", "pack-*.parquet")))


@pytest.fixture
def many_parts(local_root):
    base = runlake.init("p", root=local_root, id="base0001")
    for i in range(500):
        base.log({"loss": 1.0 / (i + 1), "acc": i / 500, **({"note": f"n{i}"} if i % 100 == 0 else {})})
        if i % 50 == 49:
            base.flush()  # many small parts, as a long run flushing every few seconds leaves
    base.finish()
    fork = runlake.init("p", root=local_root, id="fork0001", fork_from="base0001?_step=250")
    for i in range(300):
        fork.log({"loss": 0.5})
        if i % 50 == 49:
            fork.flush()
    fork.finish()
    runlake.init(root=local_root, resume_from="base0001?_step=400").finish()
    return local_root


def _snapshot(root):
    return {run_id: runlake.history(run_id, root=root) for run_id in ("base0001", "fork0001")} | {
        "archived": runlake.history("base0001", root=root, segment=0),
        "sql": runlake.sql(
            "SELECT run_id, key, count(*) AS n, round(sum(value), 6) AS s, max(step) AS m FROM history WHERE key <> '_timestamp' GROUP BY ALL ORDER BY ALL",
            root=root,
        ),
    }


def test_compaction_keeps_results_and_cuts_files(many_parts):
    before = _snapshot(many_parts)
    files_before = len(_parts(many_parts))
    result = runlake.compact(many_parts)
    assert result.filter(result["parts_before"] > 1).height >= 2
    assert set(result["pack"]) == {os.path.basename(p) for p in _packs(many_parts)}
    assert files_before > 10 and _parts(many_parts) == [] and len(_packs(many_parts)) == 1
    after = _snapshot(many_parts)
    for name, frame in before.items():
        assert frame.equals(after[name]), name
    again = runlake.compact(many_parts)  # idempotent
    assert again.height == 0
    assert _parts(many_parts) == [] and len(_packs(many_parts)) == 1


def test_a_pack_is_sorted_by_key_then_node_then_step(many_parts):
    runlake.compact(many_parts)
    (pack,) = _packs(many_parts)
    table = pq.read_table(pack)
    assert table.column_names == ["run_id", "segment", "step", "key", "value", "text"]
    rows = list(
        zip(*(table.column(c).to_pylist() for c in ("key", "run_id", "segment", "step")), strict=True)
    )
    assert rows == sorted(rows) and len(set(rows)) == len(rows)
    manifest = _json(pack[: -len(".parquet")] + ".json")
    assert sum(m["rows"] for m in manifest["members"]) == table.num_rows
    # every node got a pointer to where its rows went
    for m in manifest["members"]:
        pointer = os.path.join(many_parts, "runs", "p", m["run_id"], "meta", f"packed-{m['segment']}.json")
        assert _json(pointer)["step_hi"] == m["step_hi"]


def test_a_crash_mid_compaction_reads_the_same_and_is_finished_next_time(many_parts, monkeypatch):
    before = _snapshot(many_parts)
    calls = {"n": 0}
    real_rm = type(_storage.Storage("/tmp").fs).rm_file

    def flaky_rm(self, path, *a, **kw):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt  # the process dies after the switch, old parts half removed
        return real_rm(self, path, *a, **kw)

    monkeypatch.setattr(type(_storage.Storage("/tmp").fs), "rm_file", flaky_rm)
    with pytest.raises(KeyboardInterrupt):
        runlake.compact(many_parts)
    monkeypatch.undo()
    monkeypatch.setenv("RUNLAKE_COMPACT_GRACE", "0")
    assert _parts(many_parts) and _packs(many_parts)  # both, mid-way
    mid = _snapshot(many_parts)
    for name, frame in before.items():
        assert frame.equals(mid[name]), name
    runlake.compact(many_parts)
    assert _parts(many_parts) == [] and len(_packs(many_parts)) == 1
    for name, frame in before.items():
        assert frame.equals(_snapshot(many_parts)[name]), name


def test_a_crash_before_the_switch_leaves_an_orphan_that_is_never_read(many_parts, monkeypatch):
    before = _snapshot(many_parts)
    real = _storage.Storage.write_json_atomic

    def die_on_manifest(self, path, value):
        if path.endswith(".json") and "/packs/" in path:
            raise KeyboardInterrupt  # the pack file is written, its manifest is not
        return real(self, path, value)

    monkeypatch.setattr(_storage.Storage, "write_json_atomic", die_on_manifest)
    with pytest.raises(KeyboardInterrupt):
        runlake.compact(many_parts)
    monkeypatch.undo()
    monkeypatch.setenv("RUNLAKE_COMPACT_GRACE", "0")
    assert len(_packs(many_parts)) == 1 and not glob.glob(os.path.join(many_parts, "packs", "*", "*.json"))
    mid = _snapshot(many_parts)
    for name, frame in before.items():
        assert frame.equals(mid[name]), name
    orphan = _packs(many_parts)[0]
    runlake.compact(many_parts)
    assert orphan not in _packs(many_parts) and len(_packs(many_parts)) == 1 and _parts(many_parts) == []
    for name, frame in before.items():
        assert frame.equals(_snapshot(many_parts)[name]), name


def test_one_compaction_at_a_time_and_a_dead_holder_is_taken_over(many_parts):
    lock = os.path.join(many_parts, "packs", "compact.lock")
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # killed below
    try:
        doc = {"host": HOST, "pid": holder.pid, "pid_start": process_start(holder.pid), "at": time.time()}
        with open(lock, "w") as fh:
            json.dump(doc, fh)
        with pytest.raises(RunlakeError, match="another compaction"):
            runlake.compact(many_parts)
        assert _packs(many_parts) == []
    finally:
        holder.kill()
        holder.wait()
    runlake.compact(many_parts)  # its holder is gone: taken over
    assert len(_packs(many_parts)) == 1 and not os.path.exists(lock)


def test_packed_runs_resume_and_fork_from_their_pack(local_root):
    run = runlake.init("p", root=local_root, id="pk000001")
    for i in range(100):
        run.log({"x": float(i), "y": 2.0 * i})
    run.finish()
    runlake.compact(local_root)
    assert _parts(local_root) == []
    # resume continues after the last packed step (found through the pointer, not a listing)
    again = runlake.init("p", root=local_root, id="pk000001", resume="must")
    assert again.step == 100
    again.log({"x": 100.0})
    again.finish()
    # a fork below the watermark reads its inherited summary from the pack
    child = runlake.init("p", root=local_root, fork_from="pk000001?_step=49")
    assert child.summary["x"] == 49.0 and child.summary["y"] == 98.0
    child.finish()
    runlake.compact(local_root)  # the resumed rows go into a second pack
    assert _parts(local_root) == [] and len(_packs(local_root)) == 2
    h = runlake.history("pk000001", root=local_root)
    assert h["_step"].to_list() == list(range(101))
    assert h["x"].to_list() == [float(i) for i in range(101)]
    assert runlake.runs(root=local_root).filter(run_id="pk000001")["last_step"].item() == 100
    # a fresh process (its own catalog, from the persisted copy) reads the same
    code = (
        "import runlake, sys; h = runlake.history('pk000001', root=sys.argv[1]); "
        "print(h.height, h['x'].sum())"
    )
    out = subprocess.run([sys.executable, "-c", code, local_root], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["101", str(sum(float(i) for i in range(101)))]


def test_live_runs_are_not_compacted(local_root):
    run = runlake.init("p", root=local_root, id="live0001")
    for i in range(100):
        run.log({"x": float(i)})
        if i % 10 == 9:
            run.flush()
    runlake.history("live0001", root=local_root)
    files = _parts(local_root)
    result = runlake.compact(local_root)
    assert result.height == 0 and _parts(local_root) == files
    run.finish()
    runlake.compact(local_root)
    assert _parts(local_root) == [] and len(_packs(local_root)) == 1
    assert runlake.history("live0001", root=local_root)["x"].to_list() == [float(i) for i in range(100)]


def test_compact_cli(many_parts):
    from click.testing import CliRunner

    from runlake.cli import main

    out = CliRunner().invoke(main, ["--root", many_parts, "compact"])
    assert out.exit_code == 0 and out.output.startswith("compacted ")


def test_a_root_inside_a_directory_named_packs(tmp_path):
    root = str(tmp_path / "packs" / "lake")  # "/packs/" in the root's own path
    run = runlake.init("p", root=root)
    for i in range(30):
        run.log({"x": float(i)})
        if i % 10 == 9:
            run.flush()
    run.finish()
    before = runlake.history(run.id, root=root)
    runlake.compact(root)
    assert _parts(root) == [] and len(_packs(root)) == 1
    pointer = _json(os.path.join(root, "runs", "p", run.id, "meta", "packed-0.json"))
    assert pointer["packs"][0]["pack"].startswith("packs/project=p/pack-")
    assert runlake.history(run.id, root=root).equals(before)
    again = runlake.init("p", root=root, id=run.id, resume="must")  # finds its last step via the pointer
    assert again.step == 30
    again.finish()


def test_packed_parts_stay_for_a_grace_period_so_a_snapshot_keeps_reading(local_root, monkeypatch):
    monkeypatch.delenv("RUNLAKE_COMPACT_GRACE")
    for n in range(3):
        run = runlake.init("p", root=local_root, id=f"g{n}")
        for i in range(300):
            run.log({"x": float(i)})
            if i % 100 == 99:
                run.flush()
        run.finish()
    parts = _parts(local_root)
    with runlake.Lake(local_root) as lake:
        snapshot = lake.connect()  # lists the parts now
        query = (
            "SELECT run_id, count(*), sum(value) FROM history WHERE key = 'x' GROUP BY run_id ORDER BY run_id"
        )
        before = snapshot.execute(query).fetchall()
        assert lake.compact(progress=False).height == 3
        assert _parts(local_root) == parts and len(_packs(local_root)) == 1  # the parts stay
        assert snapshot.execute(query).fetchall() == before  # the snapshot reads them still
        assert lake.sql(query).rows() == before  # a fresh read takes the pack, not both
        assert lake.compact(progress=False).height == 0 and _parts(local_root) == parts  # within the grace
        # past the grace (the pack's manifest written an hour ago), the next compaction removes them
        manifest = glob.glob(os.path.join(local_root, "packs", "project=p", "pack-*.json"))[0]
        old = time.time() - 3600
        os.utime(manifest, (old, old))
        assert lake.compact(progress=False).height == 0
        assert _parts(local_root) == [] and lake.sql(query).rows() == before
        with pytest.raises(duckdb.Error, match="No files found|Cannot open|No such file"):
            snapshot.execute(query).fetchall()  # an hour-old snapshot: call connect() again
        assert lake.connect().execute(query).fetchall() == before
    # the pointers were written at the switch, once
    assert all(
        os.path.exists(os.path.join(local_root, "runs", "p", f"g{n}", "meta", "packed-0.json"))
        for n in range(3)
    )


def test_grace_is_checked(local_root):
    with pytest.raises(ValueError, match="grace"):
        runlake.compact(local_root, grace=-1)
