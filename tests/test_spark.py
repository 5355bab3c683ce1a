"""runlake on Spark (#15): a local SparkSession (local[2]) on a root built by runlake with forks,
rewinds, packs from a compaction, text values, a numeric-looking run id and a 1,000-deep fork
chain; Spark's `history`, `lineage`, `runs`, `segments` and `raw_history` equal DuckDB's row
for row, and so does `runlake.scan` (polars). One session for the module, stopped at the end."""

from __future__ import annotations

import math
import warnings

import polars as pl
import pyarrow as pa
import pytest

import runlake
import runlake.spark

pytestmark = [pytest.mark.slow, pytest.mark.spark]
CHAIN = 1000


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyspark's own FutureWarnings about pandas
        from pyspark.sql import SparkSession

        session = (
            SparkSession.builder.master("local[2]")
            .appName("runlake-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.driver.memory", "2g")
            .config("spark.sql.session.timeZone", "UTC")
            .getOrCreate()
        )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("spark") / "root")
    lake = runlake.Lake(path)
    base = lake.init("p", id="0042", tags=["a"], group="g")
    for step in range(30):
        base.log({"loss": 1.0 / (step + 1), "note": f"step {step}" if step % 7 == 0 else None})
    base.finish()
    fork = lake.init("p", id="fork1", fork_from="0042?_step=10")
    for step in range(10):
        fork.log({"loss": 50.0 + step})
    fork.finish()
    again = lake.init("p", resume_from="0042?_step=20")
    for _ in range(5):
        again.log({"loss": float("nan")})
    again.finish()
    lake.compact(progress=False)  # packs for what is finished, then an export
    late = lake.init("q", id="late")
    late.log({"acc": 0.5})
    late.finish()
    previous = lake.init("chain", id="c0000")
    previous.log({"x": 0.0})
    previous.finish()
    for i in range(1, CHAIN):
        run = lake.init("chain", id=f"c{i:04d}", fork_from=f"c{i - 1:04d}?_step={i - 1}")
        run.log({"x": float(i)})
        run.finish()
    lake.export_catalog()
    lake.close()
    return path


def _same_table(spark_table: pa.Table, duck_table: pa.Table) -> None:
    assert spark_table.column_names == duck_table.column_names
    assert spark_table.num_rows == duck_table.num_rows
    for name in duck_table.column_names:
        got, want = spark_table.column(name).to_pylist(), duck_table.column(name).to_pylist()
        if got != want:  # NaN != NaN: compare those positions as NaN
            for a, b in zip(got, want, strict=True):
                assert a == b or (
                    isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
                ), (name, a, b)


@pytest.mark.parametrize(
    ("view", "order"),
    [
        ("history", "run_id, step, key"),
        ("lineage", "run_id, depth"),
        ("segments", "run_id, segment"),
        ("raw_history", "run_id, segment, step, key"),
    ],
)
def test_spark_views_equal_duckdbs_row_for_row(spark, root, view, order):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        runlake.spark.register(spark, root)
        got = spark.sql(f"SELECT * FROM {view} ORDER BY {order}").toArrow()
    con = runlake.connect(root)
    want = con.sql(f"SELECT * FROM {view} ORDER BY {order}").to_arrow_table()
    con.close()
    if view == "segments":
        want = want.drop(["created_at"]) if "created_at" not in got.column_names else want
    _same_table(got, want)
    if view == "history":
        deepest = spark.sql(
            f"SELECT count(*) AS n FROM history WHERE run_id = 'c{CHAIN - 1:04d}' AND key = 'x'"
        ).collect()
        assert deepest[0]["n"] == CHAIN  # every ancestor of the deepest fork contributes its step


def test_spark_runs_equal_duckdbs_with_explicit_types(spark, root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        views = runlake.spark.register(spark, root)
        got = spark.sql("SELECT * FROM runs ORDER BY run_id").toArrow()
    want = runlake.sql("SELECT * FROM runs ORDER BY run_id", root=root).to_arrow()
    assert got.column_names == want.column_names
    assert got.column("run_id").to_pylist() == want.column("run_id").to_pylist()
    assert "0042" in got.column("run_id").to_pylist()  # a string, not the number 42
    for name in want.column_names:
        a, b = got.column(name).to_pylist(), want.column(name).to_pylist()
        if name.endswith("_at"):
            a = [None if x is None else round(x.timestamp(), 3) for x in a]
            b = [None if x is None else round(x.timestamp(), 3) for x in b]
        assert a == b, name
    types = dict(
        zip(
            views["raw_history"].columns,
            (f.dataType.simpleString() for f in views["raw_history"].schema.fields),
            strict=True,
        )
    )
    assert types == {
        "project": "string",
        "run_id": "string",
        "segment": "bigint",
        "step": "bigint",
        "key": "string",
        "value": "double",
        "text": "string",
    }


def test_one_runs_history_and_the_recursive_fallback(spark, root, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        frame = runlake.spark.history(spark, root, "fork1", keys="loss").orderBy("step").toArrow()
    assert frame.column("value").to_pylist() == [1.0 / (s + 1) for s in range(11)] + [
        50.0 + s for s in range(10)
    ]
    shallow = str(tmp_path / "shallow")  # the fallback is for shallow trees (Spark's recursion limit is 100)
    lake = runlake.Lake(shallow)
    parent = lake.init("p", id="a")
    for step in range(5):
        parent.log({"x": float(step)})
    parent.finish()
    lake.init("p", id="b", fork_from="a?_step=2").finish()
    lake.init("p", resume_from="a?_step=3").finish()
    lake.export_catalog()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        runlake.spark.register(spark, shallow, recursive=True)
        rec = spark.sql("SELECT * FROM lineage ORDER BY run_id, depth").toArrow()
    con = lake.connect()
    want = con.sql("SELECT * FROM lineage ORDER BY run_id, depth").to_arrow_table()
    con.close()
    lake.close()
    _same_table(rec, want)


def test_a_stale_export_warns_and_scan_equals_duckdb(spark, root, tmp_path):
    import shutil

    copy = str(tmp_path / "copy")
    shutil.copytree(root, copy)
    run = runlake.init("p", root=copy, id="newer")
    run.log({"loss": 1.0})
    run.finish()
    with pytest.warns(runlake.spark.StaleCatalogWarning, match="stale"):
        runlake.spark.register(spark, copy)
    scanned = runlake.scan(root).sort("run_id", "step", "key").collect()
    want = runlake.sql("SELECT * FROM history ORDER BY run_id, step, key", root=root)
    assert scanned.height == want.height
    assert scanned.select("run_id", "step", "key", "source_run_id", "source_segment", "source_depth").equals(
        want.select("run_id", "step", "key", "source_run_id", "source_segment", "source_depth")
    )
    one = runlake.scan(root).filter(pl.col("run_id") == "fork1", pl.col("key") == "loss").collect()
    assert one.height == 21
    no_export = str(tmp_path / "fresh")
    runlake.init("p", root=no_export).finish()
    with pytest.raises(runlake.RunlakeError, match="runlake catalog export"):
        runlake.spark.register(spark, no_export)
