"""Reading: runs/lineage/sql/connect, the catalog as a rebuildable cache, targeted scans."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import textwrap
import warnings

import polars as pl
import pytest

import runlake


def _make(root, n=5, **kw):
    run = runlake.init("p", root=root, **kw)
    for i in range(n):
        run.log({"loss": float(i), "acc": i / 10})
    run.finish()
    return run


def test_runs_columns_and_project_filter(root):
    a = _make(root)
    b = runlake.init("q", root=root, fork_from=f"{a.id}?_step=2", name="child")
    b.finish()
    table = runlake.runs(root=root)
    for column in (
        "run_id",
        "project",
        "name",
        "state",
        "created_at",
        "parent_run_id",
        "fork_step",
        "last_step",
        "config",
        "summary",
    ):
        assert column in table.columns
    assert table.height == 2
    only_q = runlake.runs("q", root=root)
    assert only_q["run_id"].to_list() == [b.id] and only_q["name"].to_list() == ["child"]
    assert only_q["parent_run_id"].to_list() == [a.id] and only_q["fork_step"].to_list() == [2]
    assert only_q["last_step"].to_list() == [2]
    assert runlake.runs("nothing", root=root).height == 0


def test_empty_root_reads(root):
    assert runlake.runs(root=root).height == 0
    assert runlake.sql("SELECT count(*) AS n FROM history", root=root)["n"].to_list() == [0]
    assert runlake.sql("SELECT count(*) AS n FROM raw_history", root=root)["n"].to_list() == [0]
    with pytest.raises(runlake.RunNotFoundError):
        runlake.history("abcdefgh", root=root)


def test_unknown_runs_and_segments(root):
    run = _make(root)
    with pytest.raises(runlake.RunNotFoundError, match="nosuch"):
        runlake.history("nosuch", root=root)
    with pytest.raises(runlake.RunNotFoundError, match="nosuch"):
        runlake.lineage("nosuch", root=root)
    with pytest.raises(runlake.RunNotFoundError, match="segment 3"):
        runlake.history(run.id, root=root, segment=3)
    with pytest.raises(ValueError, match="invalid run id"):
        runlake.history("../etc", root=root)


def test_sql_views_and_params(root):
    a = _make(root, 10)
    b = runlake.init("p", root=root, fork_from=f"{a.id}?_step=4")
    b.log({"loss": -1.0})
    b.finish()
    out = runlake.sql(
        "SELECT step, value, source_run_id FROM history WHERE run_id = $rid AND key = 'loss' ORDER BY step",
        root=root,
        params={"rid": b.id},
    )
    assert out["step"].to_list() == [0, 1, 2, 3, 4, 5]
    assert out["source_run_id"].to_list() == [a.id] * 5 + [b.id]
    lin = runlake.sql(
        "SELECT ancestor_run_id, kind FROM lineage WHERE run_id = ? ORDER BY depth", root=root, params=[b.id]
    )
    assert lin.rows() == [(b.id, "fork"), (a.id, "root")]
    clos = runlake.sql(
        "SELECT run_id, step_lo, step_hi FROM closure_of(?, 0) ORDER BY depth", root=root, params=[b.id]
    )
    assert clos.rows()[1] == (a.id, -1, 4)
    # a value is a value: it never changes the query
    hostile = "x' OR '1'='1"
    assert runlake.sql("SELECT * FROM runs WHERE run_id = ?", root=root, params=[hostile]).height == 0


def test_connect_registers_every_view(root):
    a = _make(root)
    con = runlake.connect(root)
    names = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert {"runs", "lineage", "history", "raw_history"} <= names
    assert con.execute("SELECT count(*) FROM history WHERE run_id = ?", [a.id]).fetchall()[0][0] == 5 * 4
    con.close()


def test_reads_touch_only_the_parts_they_need(local_root):
    a = _make(local_root)
    b = _make(local_root)
    for path in glob.glob(
        os.path.join(local_root, "history", f"project=p/run_id={b.id}", "**", "*.parquet"), recursive=True
    ):
        with open(path, "wb") as fh:
            fh.write(b"not parquet")
    assert runlake.history(a.id, root=local_root)["loss"].to_list() == [0.0, 1.0, 2.0, 3.0, 4.0]
    with pytest.raises(Exception, match=b.id):
        runlake.history(b.id, root=local_root)


def test_catalog_is_a_cache_that_rebuilds(local_root):
    a = _make(local_root)
    before = runlake.history(a.id, root=local_root)
    catalog_file = os.path.join(local_root, "_catalog", "catalog.duckdb")
    with runlake.Lake(local_root) as lake:
        lake.runs()
        lake.reader.catalog.persist(force=True)
    assert os.path.exists(catalog_file)
    os.remove(catalog_file)
    with runlake.Lake(local_root) as lake:
        assert lake.history(a.id).equals(before)
        lake.reader.catalog.persist(force=True)
    # a corrupt catalog is rebuilt with a warning; nothing is lost
    with open(catalog_file, "wb") as fh:
        fh.write(b"garbage" * 100)
    with runlake.Lake(local_root) as lake:
        with pytest.warns(RuntimeWarning, match="rebuilding"):
            table = lake.runs()
        assert table["run_id"].to_list() == [a.id]
        assert lake.history(a.id).equals(before)
        lake.reader.catalog.persist(force=True)
    # one written by another runlake version is rebuilt quietly: it is a cache, not an error
    import duckdb

    with duckdb.connect(catalog_file) as con:
        con.execute("UPDATE catalog_info SET version = version - 1")
    with warnings.catch_warnings(), runlake.Lake(local_root) as lake:
        warnings.simplefilter("error")
        assert lake.history(a.id).equals(before)


def test_a_second_process_reads_the_persisted_catalog_and_new_runs(local_root):
    a = _make(local_root)
    runlake.runs(root=local_root)
    runlake.lake.default(local_root).reader.catalog.persist(force=True)
    b = _make(local_root, 3)
    code = textwrap.dedent(
        f"""
        import runlake
        t = runlake.runs(root={local_root!r})
        print(sorted(t["run_id"].to_list()), runlake.history({b.id!r}, root={local_root!r}).height)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"{sorted([a.id, b.id])} 3"


def test_summary_and_config_are_json_in_runs(root):
    run = runlake.init("p", root=root, config={"nested": {"x": 1}})
    run.log({"loss": float("nan"), "label": "cat"})
    run.finish()
    row = runlake.runs(root=root).row(0, named=True)
    assert json.loads(row["config"]) == {"nested": {"x": 1}}
    summary = json.loads(row["summary"])
    assert summary["label"] == "cat" and summary["loss"] != summary["loss"]


def test_state_of_a_run_open_in_this_process(root):
    run = runlake.init("p", root=root)
    run.log({"a": 1.0})
    table = runlake.runs(root=root)
    assert table["state"].to_list() == ["running"] and table["last_step"].to_list() == [0]
    assert runlake.history(run.id, root=root).height == 1  # reads flush in-process runs first
    run.finish()
    assert runlake.runs(root=root).filter(pl.col("run_id") == run.id)["state"].item() == "finished"


def test_a_manifest_rewritten_with_the_same_size_is_seen(root):
    """Change detection must not rest on the size: memory:// listings carry no mtime."""
    run = runlake.init("p", root=root)
    run.log({"a": 1.0})
    run.finish()
    assert json.loads(runlake.runs(root=root)["summary"][0])["a"] == 1.0
    storage = runlake.Lake(root).storage
    path = storage.paths.meta("p", run.id, "state.json")
    before = storage.read_bytes(path)
    doc = storage.read_json(path)
    doc["summary"]["a"] = 2.0
    storage.write_json_atomic(path, doc)
    assert len(storage.read_bytes(path)) == len(before)
    assert json.loads(runlake.runs(root=root)["summary"][0])["a"] == 2.0


def test_a_manifest_rewritten_in_place_is_seen_by_a_running_reader(tmp_path):
    """#23.16: the local listing skipped a meta directory whose mtime did not change, so a
    manifest rewritten in place (not replaced) kept its old state, summary or tags."""
    import json
    import os
    import time

    root = str(tmp_path / "root")
    run = runlake.init("p", id="a", root=root, tags=["old"])
    run.log({"x": 1.0})
    run.finish()
    lake = runlake.Lake(root)
    assert lake.runs()["tags"].to_list() == [["old"]]
    meta = tmp_path / "root" / "runs" / "p" / "a" / "meta"
    past = time.time() - 60  # older than the racy window: the listing trusts the directory
    os.utime(meta, (past, past))
    lake.runs()
    doc = json.loads((meta / "state.json").read_text())
    doc["tags"] = ["new"]
    with open(meta / "state.json", "r+") as fh:  # in place: the directory's mtime does not move
        fh.write(json.dumps(doc))
        fh.truncate()
    os.utime(meta, (past, past))
    # an edit by hand has no commit-log entry (#28): a running reader that follows the log sees
    # it at its next full listing (doctor's, or $RUNLAKE_RELIST_EVERY's); a new process at once
    with runlake.Lake(root) as fresh:
        assert fresh.runs()["tags"].to_list() == [["new"]]
    lake.doctor()
    assert lake.runs()["tags"].to_list() == [["new"]]
    lake.close()


def test_a_process_that_reads_leaves_no_temporary_directory(tmp_path):
    """#24: every process reading through the module-level functions left a runlake-empty-*
    directory behind (the default Lakes were never closed): ~800 on one machine after a day."""
    import os
    import subprocess
    import sys

    root = str(tmp_path / "root")
    run = runlake.init("p", id="a", root=root)
    run.log({"x": 1.0})
    run.finish()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code = f"import runlake; print(runlake.history('a', root={root!r})['x'].to_list(), runlake.runs(root={root!r}).height)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "TMPDIR": str(tmp)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[1.0]", "1"]
    assert [p.name for p in tmp.iterdir() if p.name.startswith("runlake-")] == []


def test_a_run_as_one_record(tmp_path):
    """#24: "show one run" exists once: Lake.run, which runlake show and the web app render."""
    lake = runlake.Lake(str(tmp_path / "root"))
    base = lake.init("p", id="base", config={"lr": 0.1}, tags=["t"])
    base.define_metric("loss", summary="min")
    for i in range(5):
        base.log({"loss": 1.0 / (i + 1)})
    base.finish()
    kid = lake.init("p", id="kid", fork_from="base?_step=2")
    kid.log({"loss": 0.01})
    kid.finish()
    record = lake.run("base")
    assert (record.id, record.project, record.state, record.tags) == ("base", "p", "finished", ["t"])
    assert record.config == {"lr": 0.1} and record.summary["loss"] == {"min": 0.2}
    assert [m["name"] for m in record.metrics] == ["loss"]
    assert record.descendants["run_id"].to_list() == ["kid"]
    child = lake.run("kid")
    assert child.lineage["run_id"].to_list() == ["kid", "base"] and child.parent_run_id == "base"
    assert child.to_dict()["run"]["fork_step"] == 2
    with pytest.raises(runlake.RunNotFoundError):
        lake.run("nope")
    lake.close()
