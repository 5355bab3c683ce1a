"""The faults an adversarial sweep found (issue #14): each test failed before its fix."""

from __future__ import annotations

import glob
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from faulty import FlakyFileSystem

import runlake
from runlake.errors import RunlakeError


# ---- 1. storage down and the spill directory unwritable: rows stay in memory, finish fails loudly
def test_rows_stay_in_memory_when_neither_storage_nor_spill_takes_them(flaky_root, tmp_path):
    run = runlake.init("p", root=flaky_root)
    for i in range(100):
        run.log({"x": float(i)})
    FlakyFileSystem.down = True
    spill = tmp_path / "spill"
    spill.mkdir(exist_ok=True)
    os.chmod(spill, stat.S_IRUSR | stat.S_IXUSR)  # a full disk, as far as writing goes
    try:
        if os.access(spill, os.W_OK):  # root ignores permissions: make the spill path a file instead
            os.chmod(spill, 0o755)
            os.rmdir(spill)
            spill.write_text("not a directory")
        with pytest.raises(OSError, match="stay in memory"):
            run.flush()
        assert len(run._buffer.rows) + sum(p[2].num_rows for p in run._buffer.packed) > 0  # nothing dropped
        with pytest.raises(OSError, match="stay in memory"):
            run.finish()  # loud: the run cannot be made durable
        assert runlake.run is run  # still open
    finally:
        if spill.is_dir():
            os.chmod(spill, 0o755)
        else:
            spill.unlink()
    FlakyFileSystem.down = False
    run.finish()  # storage is back: the same run finishes and writes every row
    assert runlake.history(run.id, root=flaky_root)["x"].to_list() == [float(i) for i in range(100)]
    assert runlake.runs(root=flaky_root)["state"].to_list() == ["finished"]


# ---- 2. a fork's finish racing a compaction of its parent: the inherited summary is read again
def test_a_fork_finishing_after_its_parents_parts_moved_into_a_pack_loses_nothing(local_root):
    parent = runlake.init("p", root=local_root, id="parent")
    for i in range(50):
        parent.log({"a": float(i)})
    parent.finish()
    fork = runlake.init("p", root=local_root, id="fork", fork_from="parent?_step=20")
    fork.log({"b": 1.0})
    assert fork._inherit is not None  # the summary is read at finish
    runlake.compact(local_root, progress=False)  # parts listed by nobody yet move into a pack
    fork.finish()
    summary = json.loads(
        runlake.runs(root=local_root).filter(runlake_col("run_id") == "fork")["summary"].item()
    )
    assert summary == {"a": 20.0, "b": 1.0}
    assert runlake.history("fork", ["b"], root=local_root)["b"].to_list()[-1] == 1.0


def runlake_col(name):
    import polars as pl

    return pl.col(name)


def test_a_fork_whose_inherited_summary_cannot_be_read_still_writes_its_rows(local_root, monkeypatch):
    parent = runlake.init("p", root=local_root, id="parent")
    parent.log({"a": 1.0})
    parent.log({"a": 2.0})
    parent.finish()
    fork = runlake.init("p", root=local_root, id="fork", fork_from="parent?_step=0")  # below the watermark
    for i in range(10):
        fork.log({"b": float(i)})
    from runlake.read import inherit

    def broken(*args, **kwargs):
        raise OSError("storage hiccup")

    monkeypatch.setattr(inherit, "inherited_summary", broken)
    monkeypatch.setattr("runlake.write.nodes.inherited_summary", broken)
    with pytest.warns(RuntimeWarning, match="inherited summary"):
        fork.finish()
    monkeypatch.undo()
    assert runlake.history("fork", ["b"], root=local_root)["b"].to_list() == [float(i) for i in range(10)]
    assert runlake.runs(root=local_root).filter(runlake_col("run_id") == "fork")["state"].item() == "finished"


# ---- 3. a pack whose manifest is missing: reads still find it, compact never deletes it
def test_a_missing_pack_manifest_neither_hides_rows_nor_lets_compact_delete_the_pack(local_root):
    run = runlake.init("p", root=local_root, id="r")
    for i in range(500):
        run.log({"x": float(i)})
    run.finish()
    runlake.compact(local_root, progress=False)
    (manifest,) = glob.glob(os.path.join(local_root, "packs", "*", "pack-*.json"))
    os.remove(manifest)
    fresh = runlake.Lake(local_root)  # a new process's view
    try:
        with pytest.warns(RuntimeWarning, match="has no manifest"):
            assert fresh.history("r", ["x"])["x"].to_list() == [float(i) for i in range(500)]
        fresh.compact(progress=False)
        assert glob.glob(os.path.join(local_root, "packs", "*", "pack-*.parquet"))
        assert fresh.history("r", ["x"]).height == 500
    finally:
        fresh.close()


# ---- 4. steps that cannot be stored are refused by log() itself
@pytest.mark.parametrize("step", [2**63, 2**63 - 1, 2**70])
def test_a_step_too_large_is_rejected_at_log_and_earlier_rows_are_written(root, step):
    run = runlake.init("p", root=root)
    run.log({"a": 1.0})
    with pytest.raises(ValueError, match="step"):
        run.log({"a": 2.0}, step=step)
    run.finish()
    assert runlake.history(run.id, ["a"], root=root)["a"].to_list() == [1.0]
    assert runlake.runs(root=root)["state"].to_list() == ["finished"]


def test_errors_are_runlake_errors():
    assert issubclass(runlake.CorruptPartError, RunlakeError)


# ---- 11. SQL keeps working while a compaction swaps files under it
def test_sql_retries_once_when_a_compaction_removed_the_files_it_listed(local_root, monkeypatch):
    for r in range(3):
        run = runlake.init("p", root=local_root, id=f"r{r}")
        for i in range(100):
            run.log({"x": float(i)})
        run.finish()
    reader = runlake.Lake(local_root)
    other = runlake.Lake(local_root)
    try:
        assert reader.sql("SELECT count(*) AS n FROM history")["n"].item() == 900
        real = reader.reader.catalog.refresh
        monkeypatch.setattr(reader.reader.catalog, "refresh", lambda: None)  # its listing is now stale
        other.compact(progress=False)  # ... and the parts it lists are gone
        assert reader.sql("SELECT count(*) AS n FROM history WHERE key = 'x'")["n"].item() == 300
        monkeypatch.setattr(reader.reader.catalog, "refresh", real)
    finally:
        reader.close()
        other.close()


# ---- 17. sql() reads only, each call sees a clean catalog, errors are runlake's
@pytest.mark.parametrize(
    "query",
    [
        "DROP VIEW runs",
        "COPY (SELECT 1) TO 'out.csv'",
        "ATTACH 'other.duckdb'",
        "INSTALL httpfs",
        "CREATE TABLE t AS SELECT 1",
        "SET threads = 1",
        "SELECT 1; DROP VIEW history",
    ],
)
def test_sql_refuses_statements_that_write_and_nothing_changes(local_root, tmp_path, monkeypatch, query):
    monkeypatch.chdir(tmp_path)
    run = runlake.init("p", root=local_root)
    run.log({"x": 1.0})
    run.finish()
    with pytest.raises(runlake.RunlakeError, match="only reads"):
        runlake.sql(query, root=local_root)
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "other.duckdb").exists()
    assert runlake.sql("SELECT count(*) AS n FROM runs", root=local_root)["n"].item() == 1


def test_sql_errors_are_runlake_errors_with_duckdbs_hints(local_root):
    runlake.init("p", root=local_root).finish()
    with pytest.raises(runlake.RunlakeError, match="(?s)Catalog Error.*nosuch") as info:
        runlake.sql("SELECT * FROM nosuch", root=local_root)
    assert isinstance(info.value, ValueError)
    with pytest.raises(runlake.RunlakeError, match="syntax error"):
        runlake.sql("SELEC 1", root=local_root)


def test_a_connection_of_your_own_cannot_break_runlakes_views(local_root):
    run = runlake.init("p", root=local_root)
    run.log({"x": 1.0})
    run.finish()
    con = runlake.connect(local_root)
    assert con.sql("SELECT count(*) FROM history").fetchall() == [(3,)]
    con.execute("DROP VIEW runs")
    con.execute("DROP TABLE segments CASCADE")
    con.close()
    assert runlake.runs(root=local_root).height == 1
    assert runlake.sql("SELECT count(*) AS n FROM history", root=local_root)["n"].item() == 3


# ---- 15. exports follow the file's extension (or --format) and are exact
def test_cli_exports_follow_the_extension_and_keep_every_digit(local_root, tmp_path):
    import polars as pl
    from click.testing import CliRunner

    from runlake.cli import main

    run = runlake.init("p", root=local_root, id="exact")
    values = [0.1 + 0.2, 1 / 3, 123456789.123456789, 1e-300]
    for v in values:
        run.log({"x": v})
    run.finish()
    runner = CliRunner()
    for name, read in (
        ("h.csv", pl.read_csv),
        ("h.parquet", pl.read_parquet),
        ("h.json", lambda p: pl.DataFrame(json.loads(Path(p).read_text()))),
    ):
        out = tmp_path / name
        result = runner.invoke(main, ["--root", local_root, "history", "exact", "-k", "x", "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert read(str(out))["x"].to_list() == values, name
    result = runner.invoke(
        main,
        [
            "--root",
            local_root,
            "sql",
            "SELECT value FROM history WHERE key = 'x' ORDER BY step",
            "-o",
            str(tmp_path / "q.parquet"),
        ],
    )
    assert result.exit_code == 0 and pl.read_parquet(tmp_path / "q.parquet")["value"].to_list() == values
    piped = runner.invoke(main, ["--root", local_root, "history", "exact", "-k", "x"])
    column = [line.split("\t")[-1] for line in piped.output.splitlines()[1:]]
    assert [float(c) for c in column] == values  # piped text is exact too


# ---- 18. a key given twice in one call warns instead of silently keeping one
def test_a_key_given_twice_in_one_call_warns_and_keeps_the_last(root):
    run = runlake.init("p", root=root)
    with pytest.warns(runlake.KeyCollisionWarning, match="'a.b' was given twice"):
        run.log({"a": {"b": 1.0}, "a.b": 2.0})
    run.finish()
    assert runlake.history(run.id, ["a.b"], root=root)["a.b"].to_list() == [2.0]


# ---- 7. a refresh is all or nothing; a bad manifest is an error naming its file, others stay right
def _three_runs(root):
    for r in range(3):
        run = runlake.init("p", root=root, id=f"r{r}")
        run.log({"x": float(r)})
        run.finish()


def test_a_malformed_manifest_fails_only_its_runs_reads_and_heals_when_fixed(local_root):
    _three_runs(local_root)
    path = os.path.join(local_root, "runs", "p", "r1", "meta", "segment-0.json")
    good = Path(path).read_text()
    Path(path).write_text(json.dumps({**json.loads(good), "kind": 7}))
    lake = runlake.Lake(local_root)
    try:
        with pytest.warns(RuntimeWarning, match="segment-0.json.*'kind'"):
            table = lake.runs()
        assert sorted(table["run_id"].to_list()) == ["r0", "r1", "r2"]
        assert lake.history("r0")["x"].to_list() == [0.0] and lake.history("r2")["x"].to_list() == [2.0]
        with pytest.raises(RunlakeError, match="segment-0.json.*'kind' must be a string"):
            lake.history("r1")
        with pytest.raises(RunlakeError, match="segment-0.json"):
            lake.lineage("r1")
        lake.reader.catalog.persist(force=True)
    finally:
        lake.close()
    Path(path).write_text(good)
    with runlake.Lake(local_root) as again:  # the saved index did not keep the damage
        assert again.history("r1")["x"].to_list() == [1.0]
        assert set(again.runs()["state"].to_list()) == {"finished"}


def test_a_read_error_during_a_refresh_changes_nothing_and_the_next_refresh_is_whole(local_root, monkeypatch):
    _three_runs(local_root)
    lake = runlake.Lake(local_root)
    try:
        storage = lake.storage
        real = type(storage).read_json
        calls = {"n": 0}

        def flaky(self, path):
            calls["n"] += 1
            if calls["n"] == 5:
                raise OSError("connection reset")
            return real(self, path)

        monkeypatch.setattr(type(storage), "read_json", flaky)
        with pytest.raises(OSError, match="connection reset"):
            lake.runs()
        monkeypatch.setattr(type(storage), "read_json", real)
        table = lake.runs()
        assert sorted(table["run_id"].to_list()) == ["r0", "r1", "r2"]
        assert set(table["state"].to_list()) == {"finished"}
        assert [lake.history(f"r{r}")["x"].to_list() for r in range(3)] == [[0.0], [1.0], [2.0]]
    finally:
        lake.close()


# ---- 6. spill, crash, resume: the resumed writer counts the dead writer's spilled steps
CRASH_WHILE_SPILLED = """
import os, signal, sys
import runlake
from runlake.store.storage import Storage
root = sys.argv[1]
run = runlake.init("p", root=root, id="sp")
for i in range(50):
    run.log({"x": float(i)})
run.flush()
def down(self, path, data):
    raise OSError("storage down")
Storage.write_atomic = down  # an outage: the next parts and state go to the spill directory
import warnings
warnings.simplefilter("ignore")
for i in range(50, 100):
    run.log({"x": float(i)})
run.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_resume_after_a_crash_with_spilled_parts_writes_no_step_twice(local_root, tmp_path, monkeypatch):
    import subprocess
    import sys

    spill = tmp_path / "spill"
    monkeypatch.setenv("RUNLAKE_SPILL_DIR", str(spill))
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_WHILE_SPILLED, local_root], capture_output=True, text=True
    )
    assert proc.returncode == -9, proc.stderr
    assert [f for _, _, files in os.walk(spill) for f in files if f.endswith(".parquet")]
    run = runlake.init("p", root=local_root, id="sp", resume="allow")
    assert run.step == 100  # after the spilled steps, not after the last uploaded one
    for i in range(100, 110):
        run.log({"x": float(i)})
    run.finish()
    frame = runlake.history("sp", ["x"], root=local_root)
    assert frame["_step"].to_list() == list(range(110))
    assert frame["x"].to_list() == [float(i) for i in range(110)]
    assert not [f for _, _, files in os.walk(spill) for f in files]


# ---- 8. one run id, two projects, at the same moment: exactly one wins
def test_the_same_run_id_created_in_two_projects_at_once_has_one_winner(root):
    import threading

    for trial in range(5):
        run_id = f"dup{trial}"
        barrier = threading.Barrier(2)
        outcome: dict[str, object] = {}

        def create(project, run_id=run_id, barrier=barrier, outcome=outcome):
            barrier.wait()
            try:
                outcome[project] = runlake.Lake(root).init(project, id=run_id)
            except RunlakeError as exc:
                outcome[project] = exc

        threads = [threading.Thread(target=create, args=(p,)) for p in ("left", "right")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [p for p, o in outcome.items() if isinstance(o, runlake.Run)]
        assert len(won) == 1, outcome
        lost = next(o for o in outcome.values() if not isinstance(o, runlake.Run))
        assert "already exists" in str(lost)
        outcome[won[0]].finish()
        assert runlake.runs(root=root).filter(runlake_col("run_id") == run_id).height == 1


# ---- 12. a doctor --fix killed half-way is finished by the next one
def test_a_quarantine_killed_between_the_pack_and_its_manifest_is_finished_next_time(local_root, monkeypatch):
    run = runlake.init("p", root=local_root, id="bad")
    for i in range(20):
        run.log({"x": float(i)})
    run.finish()
    runlake.compact(local_root, progress=False, grace=0)
    keep = runlake.init("p", root=local_root, id="good")  # after the compaction: not in the pack
    keep.log({"x": 1.0})
    keep.finish()
    (pack,) = glob.glob(os.path.join(local_root, "packs", "*", "pack-*.parquet"))
    Path(pack).write_bytes(Path(pack).read_bytes()[:60])  # truncated
    from runlake.ops import doctor as doctor_module

    real = doctor_module._quarantine
    moved = {"n": 0}

    def die_after_the_pack(storage, local):
        if moved["n"] == 1:
            raise KeyboardInterrupt  # killed between the pack and its manifest
        moved["n"] += 1
        return real(storage, local)

    monkeypatch.setattr(doctor_module, "_quarantine", die_after_the_pack)
    with pytest.raises(KeyboardInterrupt):
        runlake.doctor(local_root, fix=True)
    monkeypatch.undo()
    assert not os.path.exists(pack) and glob.glob(os.path.join(local_root, "packs", "*", "pack-*.json"))
    with runlake.Lake(local_root) as lake:  # as a new process sees it
        fixed = lake.doctor(fix=True)
        assert fixed.height >= 1 and all("quarantined" in a for a in fixed["action"])
        assert lake.doctor().height == 0
        assert lake.history("bad").height == 0  # its steps were lost: reads work, and say nothing else
        assert lake.history("good")["x"].to_list() == [1.0]
    assert not glob.glob(os.path.join(local_root, "packs", "*", "pack-*"))


# ---- 9. a garbled byte in a pack is always found by doctor (page checksums)
def test_doctor_finds_every_garbled_byte_in_a_pack(local_root):
    import random

    run = runlake.init("p", root=local_root, id="g")
    for i in range(3000):
        run.log({"x": float(i) * 1.5, "y": float(i % 7)})
    run.finish()
    runlake.compact(local_root, progress=False)
    (pack,) = glob.glob(os.path.join(local_root, "packs", "*", "pack-*.parquet"))
    original = Path(pack).read_bytes()
    footer = int.from_bytes(original[-8:-4], "little") + 8  # the metadata at the end is checked by its parser
    rng = random.Random(7)
    for _ in range(20):
        data = bytearray(original)
        data[rng.randrange(4, len(data) - footer)] ^= 0xFF
        Path(pack).write_bytes(bytes(data))
        with runlake.Lake(local_root) as lake:
            assert lake.doctor().height >= 1
    Path(pack).write_bytes(original)
    assert runlake.doctor(local_root).height == 0


# ---- 9. ... and by every read: a garbled part or pack is an error, never a different history
@pytest.mark.parametrize("where", ["part", "pack"])
def test_a_read_never_returns_a_garbled_history(local_root, where):
    import random

    run = runlake.init("p", root=local_root, id="g")
    for i in range(3000):
        run.log({"x": float(i) * 1.5, "y": float(i % 7)})
    run.finish()
    pattern = "history/*/*/*/part-*.parquet"
    if where == "pack":
        runlake.compact(local_root, progress=False, grace=0)  # the pack is the only copy
        pattern = "packs/*/pack-*.parquet"
    with runlake.Lake(local_root) as lake:
        expected = lake.history("g")
    (path,) = glob.glob(os.path.join(local_root, pattern))[:1]
    original = Path(path).read_bytes()
    footer = int.from_bytes(original[-8:-4], "little") + 8  # the footer is checked by its parser
    rng = random.Random(11)
    errors = 0
    for _ in range(20):
        data = bytearray(original)
        data[rng.randrange(4, len(data) - footer)] ^= 1 << rng.randrange(8)
        Path(path + ".tmp").write_bytes(bytes(data))
        os.replace(path + ".tmp", path)  # as runlake writes: a new file
        with runlake.Lake(local_root) as lake:
            try:
                got = lake.history("g")
            except runlake.CorruptPartError as exc:
                assert os.path.basename(path) in str(exc)
                errors += 1
                continue
            assert got.equals(expected)  # a byte no page holds (padding): the same history
    assert errors >= 18
    Path(path + ".tmp").write_bytes(original)
    os.replace(path + ".tmp", path)
    assert runlake.history("g", root=local_root).equals(expected)


# ---- 10. a part deleted by hand is an error naming the run, doctor reports it, --fix accepts it
def _in_parts(root, run_id, steps):
    """A finished run of `steps` steps written as one part per 100 steps; its part files."""
    run = runlake.init("p", root=root, id=run_id)
    for i in range(steps):
        run.log({"x": float(i)})
        if i % 100 == 99:
            run.flush()
    run.finish()
    return sorted(
        glob.glob(os.path.join(root, "history", "project=p", f"run_id={run_id}", "segment=0", "part-*"))
    )


def test_a_part_deleted_by_hand_is_an_error_not_a_hole(local_root):
    parts = _in_parts(local_root, "holed", 500)
    assert len(parts) == 5
    child = runlake.init("p", root=local_root, id="child", fork_from="holed?_step=450")
    child.log({"x": -1.0})
    child.finish()
    os.remove(parts[2])  # steps 200..299
    with runlake.Lake(local_root) as lake:
        for run_id in ("holed", "child"):  # the fork reads through the hole too
            with pytest.raises(
                runlake.CorruptPartError, match=r"run 'holed' segment 0 is missing 1 of the 5 part"
            ):
                lake.history(run_id)
        report = lake.doctor()
        assert report.height == 1 and report["run_id"].to_list() == ["holed"]
        assert "missing 1 of the 5" in report["problem"][0] and set(report["affected_runs"][0]) >= {
            "holed",
            "child",
        }
        fixed = lake.doctor(fix=True)
        assert fixed["action"].to_list() == ["accepted the loss: its state now counts the part files left"]
        assert lake.doctor().height == 0
        steps = lake.history("holed")["_step"].to_list()
        assert steps == [*range(200), *range(300, 500)]  # the lost steps are gone, the rest reads
        assert lake.history("child")["x"].to_list()[-1] == -1.0


def test_parts_counted_across_a_resume_a_rewind_and_a_compaction(local_root):
    assert len(_in_parts(local_root, "many", 200)) == 2
    resumed = runlake.init("p", root=local_root, id="many", resume="allow")  # the same segment: 2 + 1
    resumed.log({"x": 200.0})
    resumed.finish()
    assert json.loads(Path(local_root, "runs", "p", "many", "meta", "state.json").read_text())["parts"] == 3
    runlake.compact(local_root, progress=False, grace=0)
    with runlake.Lake(local_root) as lake:
        assert lake.doctor().height == 0 and lake.history("many").height == 201
    rewound = runlake.init("p", root=local_root, id="many", resume_from="many?_step=150")  # segment 1: 0 + 1
    rewound.log({"x": 151.0})
    rewound.finish()
    assert json.loads(Path(local_root, "runs", "p", "many", "meta", "state.json").read_text())["parts"] == 1
    with runlake.Lake(local_root) as lake:
        assert lake.doctor().height == 0 and lake.history("many")["_step"].to_list() == list(range(152))
    # a pack deleted by hand (file and manifest): the run's current segment lost nothing, the
    # segment it was rewound from did; the rewound run reads through it, so it is an error
    for path in glob.glob(os.path.join(local_root, "packs", "*", "pack-*")):
        os.remove(path)
    with runlake.Lake(local_root) as lake:
        with pytest.raises(runlake.CorruptPartError, match=r"run 'many' segment 0 is missing 3 of the 3"):
            lake.history("many")
        report = lake.doctor()
        assert (report["run_id"].to_list(), report["segment"].to_list()) == (["many"], [0])
        lake.doctor(fix=True)  # accepts it: the archived segment expects what is left (nothing)
        assert lake.doctor().height == 0
        assert lake.history("many")["_step"].to_list() == [151]  # only the rewound run's own step
    with runlake.Lake(local_root) as lake:  # a new process (and its catalog) agrees
        assert lake.history("many")["_step"].to_list() == [151]
    shutil.rmtree(os.path.join(local_root, "_catalog"))  # and one that folds every manifest afresh
    with runlake.Lake(local_root) as lake:
        assert lake.history("many")["_step"].to_list() == [151] and lake.doctor().height == 0


# ---- 10. directories named like parts or pack manifests: reads go on, doctor names them
def test_directories_named_like_parts_or_manifests_are_reported_not_read(local_root):
    run = runlake.init("p", root=local_root, id="d")
    for i in range(10):
        run.log({"x": float(i)})
    run.finish()
    segment_dir = os.path.join(local_root, "history", "project=p", "run_id=d", "segment=0")
    fake_part = os.path.join(segment_dir, "part-000000000100-000000000200-abcdefabcdef.parquet")
    fake_manifest = os.path.join(local_root, "packs", "project=p", "pack-0000-deadbeef.json")
    os.makedirs(fake_part)
    os.makedirs(fake_manifest)
    with runlake.Lake(local_root) as lake:
        assert lake.history("d")["x"].to_list() == [float(i) for i in range(10)]
        assert lake.runs()["last_step"].to_list() == [9]
        report = lake.doctor()
        problems = dict(zip(report["path"].to_list(), report["problem"].to_list(), strict=True))
        assert any(p.endswith(os.path.basename(fake_part)) for p in problems), problems
        assert any(p.endswith(os.path.basename(fake_manifest)) for p in problems), problems
        assert all("directory" in v for v in problems.values())


# ---- 5. fencing: a writer that no longer owns its run stops and says so
def test_a_writer_whose_run_was_taken_over_stops_writing_and_says_so(root):
    from runlake.store.manifests import WriterClaim

    run = runlake.init("p", root=root, id="fenced")
    for i in range(10):
        run.log({"x": float(i)})
    run.flush()
    storage = runlake.Lake(root).storage
    # another process (a resume that believed this writer dead) takes the next writer slot
    taker = WriterClaim(seq=1, what="resume", at=0.0, host="elsewhere", pid=4242, pid_start="x")
    assert storage.create_exclusive(storage.paths.meta("p", "fenced", "writer-1.json"), taker.encode())
    for i in range(10, 20):
        run.log({"x": float(i)})
    with pytest.raises(RunlakeError, match="taken over.*pid 4242 on elsewhere"):
        run.flush()
    with pytest.raises(RunlakeError, match="taken over"):
        run.log({"x": 99.0})
    with pytest.raises(RunlakeError, match="taken over"):
        run.finish()
    assert runlake.run is None  # it is over for this process
    frame = runlake.history("fenced", ["x"], root=root)
    assert frame["x"].to_list() == [float(i) for i in range(10)]  # nothing written after the takeover


def test_a_takeover_while_a_flush_runs_writes_no_row_logged_after_it(root, monkeypatch):
    """A flusher thread paused inside a flush (busy cores) while another process claims the run
    and training logs on: the rows logged after the claim are never written. (Found by a suite
    run under load: the check came before the flush took its rows.)"""
    from runlake.store.manifests import WriterClaim

    run = runlake.init("p", root=root, id="raced")
    for i in range(10):
        run.log({"x": float(i)})
    run.flush()
    storage = runlake.Lake(root).storage
    take = run._buffer.take

    def paused(*args, **kwargs):  # the flush is under way: a takeover, and more rows, happen now
        monkeypatch.setattr(run._buffer, "take", take)
        claim = WriterClaim(seq=1, what="resume", at=0.0, host="elsewhere", pid=4242, pid_start="x")
        assert storage.create_exclusive(storage.paths.meta("p", "raced", "writer-1.json"), claim.encode())
        for i in range(10, 20):
            run.log({"x": float(i)})
        return take(*args, **kwargs)

    monkeypatch.setattr(run._buffer, "take", paused)
    with pytest.raises(RunlakeError, match="taken over"):
        run.flush()
    with pytest.raises(RunlakeError, match="taken over"):
        run.finish()
    assert runlake.history("raced", ["x"], root=root)["x"].to_list() == [float(i) for i in range(10)]


# ---- 14. a history too wide to build densely is refused with its size, not built
def test_a_sparse_wide_history_is_refused_naming_its_size(local_root, monkeypatch):
    from runlake.read import assemble

    run = runlake.init("p", root=local_root, id="wide")
    for i in range(60):
        run.log({f"k{i}": float(i)})  # one new key per step: sparse
    run.finish()
    monkeypatch.setattr(assemble, "MAX_WIDE_CELLS", 1_000)
    with pytest.raises(RunlakeError, match=r"60 x 63 frame \(3,780 cells.*keys="):
        runlake.history("wide", root=local_root)
    assert runlake.history("wide", ["k5"], root=local_root)["k5"].to_list() == [5.0]  # selecting works
    long = runlake.sql(
        "SELECT step, key, value FROM history WHERE run_id = ? AND key LIKE 'k%'",
        root=local_root,
        params=["wide"],
    )
    assert long.height == 60


# ---- 16. a default root that cannot collide, the old one still read, and a word when nothing is there
def test_the_default_root_is_runlake_data_and_the_old_default_is_read_with_a_notice(tmp_path, monkeypatch):
    from runlake.store import settings

    monkeypatch.delenv("RUNLAKE_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert settings.root(None) == "./runlake-data"
    os.makedirs("runlake")  # a package folder in a checkout: not a root
    (tmp_path / "runlake" / "__init__.py").write_text("")
    assert settings.root(None) == "./runlake-data"
    os.makedirs("runlake/runs/p")  # a root written at the old default
    monkeypatch.setattr(settings, "_noticed", set())
    with pytest.warns(RuntimeWarning, match="old default"):
        assert settings.root(None) == "./runlake"
    os.makedirs("runlake-data")
    assert settings.root(None) == "./runlake-data"


def test_commands_say_which_root_they_found_nothing_in_and_create_nothing(tmp_path):
    from click.testing import CliRunner

    from runlake.cli import main

    missing = str(tmp_path / "nowhere")
    runner = CliRunner()
    result = runner.invoke(main, ["--root", missing, "runs"])
    assert result.exit_code == 0
    assert f"no runs in root {missing} (it does not exist)" in result.stderr
    result = runner.invoke(main, ["--root", missing, "compact"])
    assert result.exit_code == 0 and "nothing to compact" in result.stderr
    assert not os.path.exists(missing)


# ---- 19. the demo's runs are the ones the README's commands name
@pytest.mark.slow
def test_the_demo_root_answers_the_readmes_commands(tmp_path, monkeypatch):
    import subprocess
    import sys

    from click.testing import CliRunner

    from runlake.cli import main

    env = {k: v for k, v in os.environ.items() if k != "RUNLAKE_ROOT"}
    proc = subprocess.run(
        [sys.executable, "-m", "runlake.demo"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    root = str(tmp_path / "runlake-data")
    assert f"The runs are in {root}" in proc.stdout
    runner = CliRunner()
    lineage = runner.invoke(main, ["--root", root, "lineage", "baseline"])
    assert (
        lineage.exit_code == 0 and "fork @200 → hot-lr" in lineage.output and "rewind @250" in lineage.output
    )
    out = tmp_path / "fork.csv"
    history = runner.invoke(main, ["--root", root, "history", "hot-lr", "-k", "loss", "-o", str(out)])
    assert history.exit_code == 0
    import polars as pl

    assert pl.read_csv(out)["_step"].to_list() == list(range(301))  # 0..200 inherited, 201..300 its own
    again = subprocess.run(
        [sys.executable, "-m", "runlake.demo"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and "baseline-2" in again.stdout  # a second run never collides


# ---- 14. compaction memory is bounded per pack: a run bigger than the budget is split
def test_a_run_bigger_than_the_pack_budget_is_split_across_packs_and_reads_the_same(local_root, monkeypatch):
    from runlake.ops import compact as compact_module

    monkeypatch.setenv("RUNLAKE_FLUSH_ROWS", "100")  # many parts
    run = runlake.init("p", root=local_root, id="big")
    for i in range(2000):
        run.log({"x": float(i), "y": float(i % 13)})
    run.finish()
    fork = runlake.init("p", root=local_root, id="kid", fork_from="big?_step=1500")
    fork.log({"x": -1.0})
    fork.finish()
    parts = glob.glob(os.path.join(local_root, "history", "project=p", "run_id=big", "*", "*.parquet"))
    sizes = sorted(os.path.getsize(p) for p in parts)
    budget = sum(sizes[-4:])  # about four parts' worth per pack
    monkeypatch.setattr(compact_module, "PACK_BYTES", budget)
    before = {r: runlake.history(r, root=local_root) for r in ("big", "kid")}
    result = runlake.compact(local_root, progress=False)
    packs = glob.glob(os.path.join(local_root, "packs", "*", "pack-*.parquet"))
    assert len(packs) >= 4
    big = result.filter(runlake_col("run_id") == "big").row(0, named=True)
    assert big["parts_before"] == len(parts) and big["parts_after"] >= 4  # one row per segment
    for r, frame in before.items():
        assert runlake.history(r, root=local_root).equals(frame), r
    pointer = json.loads(Path(local_root, "runs", "p", "big", "meta", "packed-0.json").read_text())
    assert len(pointer["packs"]) >= 4 and pointer["step_hi"] == 1999
    assert runlake.compact(local_root, progress=False).height == 0  # nothing left to do


# ---- 14. storage that hangs: memory stays bounded (batches go to the spill directory)
def test_storage_that_hangs_keeps_memory_bounded_and_loses_nothing(flaky_root, monkeypatch):
    monkeypatch.setenv("RUNLAKE_FLUSH_ROWS", "100")
    from runlake.write import flusher

    run = runlake.init("p", root=flaky_root, id="hung")
    flusher._flusher.register(run)  # this test is about the background flusher
    FlakyFileSystem.hang = True
    for i in range(100):  # the first batch: the flusher takes it and its upload hangs
        run.log({"x": float(i)})
    assert FlakyFileSystem.entered.wait(120), "the flusher never reached storage"
    with pytest.warns(RuntimeWarning, match="spill"):
        for i in range(100, 3000):
            run.log({"x": float(i)})
    queued = len(run._buffer.packed) * 100 + len(run._buffer.rows)
    assert queued <= 5 * 100, queued  # bounded by a few batches, not by how long storage hangs
    FlakyFileSystem.hang = False
    FlakyFileSystem.gate.set()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "storage is back" and the like
        run.finish()
        frame = runlake.history("hung", ["x"], root=flaky_root)
    assert frame["_step"].to_list() == list(range(3000))
    assert frame["x"].to_list() == [float(i) for i in range(3000)]


# ---- 18. a writer whose clock runs ahead cannot hold its run
def test_a_heartbeat_from_a_clock_an_hour_ahead_does_not_keep_a_dead_run_running(local_root):
    import time

    from runlake.store.liveness import derive_state

    run = runlake.init("p", root=local_root, id="skew")
    run.log({"x": 1.0})
    run.finish()
    path = Path(local_root, "runs", "p", "skew", "meta", "state.json")
    doc = json.loads(path.read_text())
    doc.update(state="running", host="another-host", pid=1, heartbeat=time.time() + 3600)
    path.write_text(json.dumps(doc))
    written = time.time() - 600  # the storage's clock says it was written ten minutes ago
    os.utime(path, (written, written))
    assert derive_state(doc) == "running"  # trusting the writer's clock alone: an hour of "running"
    assert derive_state(doc, written_at=written) == "crashed"
    # a reader that sees this state for the first time judges it by the file's time on
    # storage, not by when it first saw it (that called it running for one more timeout)
    with runlake.Lake(local_root) as fresh:
        assert fresh.runs()["state"].to_list() == ["crashed"]
    resumed = runlake.init("p", root=local_root, id="skew", resume="allow")  # not refused
    resumed.log({"x": 2.0})
    resumed.finish()
    assert runlake.history("skew", ["x"], root=local_root)["x"].to_list() == [1.0, 2.0]


# ---- 18. a big summary is not rewritten by every heartbeat
def test_heartbeats_do_not_rewrite_a_big_state(local_root):
    import time

    from runlake.write import flusher

    run = runlake.init("p", root=local_root, id="big-summary")
    flusher.unregister(run)  # this test flushes by hand: no background flush in between
    run.summary["notes"] = "x" * 5_000_000
    run.log({"a": 1.0})
    run.flush()
    state = Path(local_root, "runs", "p", "big-summary", "meta", "state.json")
    beat = state.with_name("beat.json")
    written = state.stat().st_mtime_ns, state.stat().st_ino
    for _ in range(3):
        run.flush()  # nothing new: a heartbeat only
    assert (state.stat().st_mtime_ns, state.stat().st_ino) == written
    assert beat.stat().st_size < 1_000
    beat_time = json.loads(beat.read_text())["heartbeat"]
    table = runlake.runs(root=local_root)
    assert table["state"].to_list() == ["running"]
    assert abs(table["heartbeat_at"].item().timestamp() - beat_time) < 1e-3  # readers see the beat
    run.log({"a": 2.0})
    run.finish()  # new rows and the final state: the state is written again, summary whole
    summary = json.loads(runlake.runs(root=local_root)["summary"].item())
    assert summary["a"] == 2.0 and len(summary["notes"]) == 5_000_000
    assert time.time() >= beat_time


# ---- memory:// listings race the writers of the same process (found under CPU load)
@pytest.mark.memory
def test_a_listing_that_races_a_closing_file_is_listed_again(monkeypatch):
    from runlake.store.storage import Storage

    root = "memory://race-listing"
    run = runlake.init("p", root=root, id="r")
    run.log({"x": 1.0})
    run.finish()
    storage = Storage(root)
    real = type(storage.fs).find
    calls = {"n": 0}

    def racing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:  # what fsspec raises when a file closes mid-listing
            raise RuntimeError("dictionary changed size during iteration")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(storage.fs), "find", racing)
    with runlake.Lake(root) as lake:
        assert lake.runs()["run_id"].to_list() == ["r"]
    assert calls["n"] >= 2


def test_compressible_data_is_budgeted_by_rows_not_bytes_on_disk(local_root, monkeypatch):
    """#23.11: the pack budget counted compressed bytes, so a run of constant values (a few MB on
    disk, gigabytes decoded) was read whole. Packs are cut by rows too."""
    import pyarrow.parquet as pq

    from runlake.ops import compact as compact_module

    monkeypatch.setenv("RUNLAKE_FLUSH_ROWS", "100")
    run = runlake.init("p", root=local_root, id="flat")
    for _ in range(2000):
        run.log({"x": 1.0, "y": 0.0})  # compresses to almost nothing
    run.finish()
    parts = glob.glob(os.path.join(local_root, "history", "project=p", "run_id=flat", "*", "*.parquet"))
    per_part = max(pq.read_metadata(p).num_rows for p in parts)
    monkeypatch.setattr(compact_module, "PACK_BYTES", 2**40)  # bytes alone would make one pack
    monkeypatch.setattr(compact_module, "PACK_ROWS", 4 * per_part)
    before = runlake.history("flat", root=local_root)
    runlake.compact(local_root, progress=False)
    packs = glob.glob(os.path.join(local_root, "packs", "*", "pack-*.parquet"))
    assert len(packs) >= 4
    assert max(pq.read_metadata(p).num_rows for p in packs) <= 4 * per_part
    assert runlake.history("flat", root=local_root).equals(before)


# ---- a creator SIGKILLed after it took the id and writer slot 0, before run.json
KILLED_WHILE_CREATING = """
import os, signal, sys
import runlake
from runlake.write import nodes
real = nodes.write
def write(storage, path, doc):
    if path.endswith("run.json"):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(storage, path, doc)
nodes.write = write
runlake.init("p", root=sys.argv[1], id="half")
"""


def test_an_id_whose_creator_was_killed_before_run_json_can_be_created_again(local_root):
    """init() and importers share one create protocol (write.nodes.new_run): whoever takes a
    dead creator's claim over clears what it left (its writer-0 slot) instead of refusing the id."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_CREATING, local_root], capture_output=True, text=True
    )
    assert proc.returncode == -9, proc.stderr
    storage = runlake.lake.default(local_root).storage
    assert storage.exists(storage.paths.meta("p", "half", "writer-0.json"))
    run = runlake.init("p", root=local_root, id="half")
    run.log({"x": 1.0})
    run.finish()
    assert runlake.history("half", ["x"], root=local_root)["x"].to_list() == [1.0]
