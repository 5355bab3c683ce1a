"""`runlake.Api()` (#27): W&B's public API over a root. Filters and orders, the lazy `Runs`,
every `Run` attribute, deterministic sampled history, streamed scans, edits and deletes, and
public analysis scripts (W&B's docs, a research repo's plotting script) run unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl
import pytest
from shim import run_as_wandb

import runlake
from runlake.errors import RunlakeError, RunNotFoundError
from runlake.public.history import sample_rows

HERE = os.path.dirname(__file__)
SCRIPTS = os.path.join(HERE, "scripts", "api")


def _log(lake, project, run_id, *, steps=30, entity=None, **init):
    run = lake.init(project, id=run_id, entity=entity, **init)
    for s in range(steps):
        row = {"loss": 1.0 / (s + 1), "accuracy": s / steps}
        if s % 5 == 0:
            row["EvalReward"] = float(s * (1 + init.get("config", {}).get("seed", 0) % 3))
        run.log(row)
    run.finish()
    return run


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("api") / "root")
    lake = runlake.Lake(path)
    configs = [
        ("a1", {"lr": 0.1, "opt": {"name": "sgd"}, "seed": 0, "experiment_name": "foo"}, ["base"], "g1"),
        (
            "a2",
            {"lr": 0.01, "opt": {"name": "adam"}, "seed": 42, "experiment_name": "bar"},
            ["base", "x"],
            "g1",
        ),
        ("a3", {"lr": 0.001, "opt": {"name": "adam"}, "seed": 1234, "experiment_name": "baz"}, [], "g2"),
    ]
    for run_id, config, tags, group in configs:
        _log(
            lake,
            "proj",
            run_id,
            config=config,
            tags=tags,
            group=group,
            name=f"name-{run_id}",
            job_type="train",
        )
    _log(lake, "proj", "lab1", entity="lab", config={"lr": 0.5}, name="labrun")
    _log(lake, "other", "o1", config={"lr": 0.2})
    fork = lake.init("proj", id="f1", fork_from="a1?_step=9", config={"lr": 0.1})
    for _ in range(5):
        fork.log({"loss": 5.0})
    fork.finish()
    lake.close()
    return path


@pytest.fixture
def api(root):
    return runlake.Api(root=root)


def ids(runs):
    return [r.id for r in runs]


# ---- api.runs: paths, filters, order, the lazy sequence ---------------------------------------
def test_runs_of_a_project_in_creation_order_with_and_without_an_entity(api):
    assert ids(api.runs("proj")) == ["a1", "a2", "a3", "lab1", "f1"]
    # an entity matches runs that stored it, and runs that stored none
    assert ids(api.runs("lab/proj")) == ["a1", "a2", "a3", "lab1", "f1"]
    assert ids(api.runs("someone/proj")) == ["a1", "a2", "a3", "f1"]
    assert ids(api.runs("other")) == ["o1"]
    assert ids(api.runs("nope")) == []


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"config.lr": 0.01}, ["a2"]),
        ({"config.lr": {"$eq": 0.01}}, ["a2"]),
        ({"config.lr.value": {"$gte": 0.01}}, ["a1", "a2", "lab1", "f1"]),
        ({"config.lr": {"$gt": 0.01, "$lt": 0.5}}, ["a1", "f1"]),
        ({"config.lr": {"$lte": 0.01}}, ["a2", "a3"]),
        ({"config.lr": {"$ne": 0.1}}, ["a2", "a3", "lab1"]),
        ({"config.seed": {"$in": [0, 1234]}}, ["a1", "a3"]),
        ({"config.seed": {"$nin": [0, 1234]}}, ["a2", "lab1", "f1"]),  # no seed: not in the list
        ({"config.opt.name": "adam"}, ["a2", "a3"]),
        ({"config.opt.name": {"$regex": "^s"}}, ["a1"]),
        ({"config.seed": {"$exists": True}}, ["a1", "a2", "a3"]),
        ({"config.seed": {"$exists": False}}, ["lab1", "f1"]),
        ({"$or": [{"config.experiment_name": "foo"}, {"config.experiment_name": "bar"}]}, ["a1", "a2"]),
        ({"$and": [{"group": "g1"}, {"config.seed": 42}]}, ["a2"]),
        ({"$nor": [{"group": "g1"}, {"group": "g2"}]}, ["lab1", "f1"]),
        ({"config.lr": {"$not": {"$gt": 0.05}}}, ["a2", "a3"]),
        ({"tags": "x"}, ["a2"]),
        ({"tags": {"$in": ["base"]}}, ["a1", "a2"]),
        ({"tags": {"$nin": ["x"]}}, ["a1", "a3", "lab1", "f1"]),
        ({"tags": {"$regex": "^ba"}}, ["a1", "a2"]),
        ({"state": "finished"}, ["a1", "a2", "a3", "lab1", "f1"]),
        ({"jobType": "train"}, ["a1", "a2", "a3"]),
        ({"display_name": {"$regex": "^name-a[12]$"}}, ["a1", "a2"]),
        ({"displayName": "labrun"}, ["lab1"]),
        ({"name": "a3"}, ["a3"]),  # W&B's `name` is the run id
        ({"summary_metrics.loss": {"$gt": 1.0}}, ["f1"]),
        ({"summary_metrics.loss": {"$lt": 0.05}}, ["a1", "a2", "a3", "lab1"]),
        ({"createdAt": {"$gt": "2000-01-01T00:00:00Z"}}, ["a1", "a2", "a3", "lab1", "f1"]),
        ({"created_at": {"$lt": "2000-01-01T00:00:00"}}, []),
        ({"sweep": {"$exists": False}}, ["a1", "a2", "a3", "lab1", "f1"]),
    ],
)
def test_filters(api, filters, expected):
    assert ids(api.runs("proj", filters=filters)) == expected


def test_orders(api):
    assert ids(api.runs("proj", order="-created_at")) == ["f1", "lab1", "a3", "a2", "a1"]
    assert ids(api.runs("proj", order="+config.lr")) == ["a3", "a2", "a1", "f1", "lab1"]
    assert ids(api.runs("proj", order="-config.lr.value")) == ["lab1", "a1", "f1", "a2", "a3"]
    assert ids(api.runs("proj", order="summary_metrics.loss"))[-1] == "f1"
    assert ids(api.runs("proj", order="-display_name")) == ["a3", "a2", "a1", "lab1", "f1"]


def test_bad_filters_name_what_is_wrong(api):
    with pytest.raises(ValueError, match=r"unknown filter operator '\$foo'"):
        api.runs("proj", filters={"config.lr": {"$foo": 1}})
    with pytest.raises(ValueError, match=r"unknown filter operator '\$where'"):
        api.runs("proj", filters={"$where": "1"})
    with pytest.raises(ValueError, match="unknown run field 'colour'"):
        api.runs("proj", filters={"colour": "red"})
    with pytest.raises(ValueError, match=r"\$in needs a list"):
        api.runs("proj", filters={"config.lr": {"$in": 0.1}})
    with pytest.raises(ValueError, match="unknown run field"):
        api.runs("proj", order="-nothing")


def test_filter_values_are_parameters_never_sql(api):
    hostile = "x') OR TRUE OR ('"
    assert ids(api.runs("proj", filters={"config.experiment_name": hostile})) == []
    assert ids(api.runs("proj", filters={f"config.{hostile}": 1})) == []
    assert (
        ids(api.runs("proj", filters={"tags": {"$regex": hostile.replace("(", "").replace(")", "")}})) == []
    )


def test_runs_is_a_lazy_sequence_read_a_page_at_a_time(api, monkeypatch):
    runs = api.runs("proj", per_page=2)
    queries = []
    real = runs._lake.sql

    def counting(query, params=None, **kw):
        queries.append(query)
        return real(query, params, **kw)

    monkeypatch.setattr(runs._lake, "sql", counting)
    assert queries == []  # nothing read until used
    assert len(runs) == 5 and runs.length == 5
    assert runs[0].id == "a1" and runs[-1].id == "f1"
    assert [r.id for r in runs[1:4]] == ["a2", "a3", "lab1"]
    assert [r.id for r in runs[::2]] == ["a1", "a3", "f1"]
    with pytest.raises(IndexError):
        runs[5]
    pages = [q for q in queries if "IN (SELECT unnest" in q]
    assert len(pages) == 3  # pages of 2: [a1 a2], [a3 lab1], [f1]
    assert api.runs("proj", per_page=2) is not None


# ---- Run attributes -----------------------------------------------------------------------------
def test_run_attributes(api):
    run = api.run("proj/a2")
    assert (run.id, run.name, run.display_name, run.state, run.project) == (
        "a2",
        "name-a2",
        "name-a2",
        "finished",
        "proj",
    )
    assert run.config == {"lr": 0.01, "opt": {"name": "adam"}, "seed": 42, "experiment_name": "bar"}
    assert run.summary["loss"] == pytest.approx(1 / 30) and run.summary._json_dict[
        "accuracy"
    ] == pytest.approx(29 / 30)
    assert run.summary.get("missing") is None and "loss" in run.summary
    assert (run.tags, run.group, run.job_type, run.notes) == (["base", "x"], "g1", "train", None)
    assert run.created_at.endswith("Z") and run.heartbeat_at.endswith("Z")
    assert run.url is None and run.lastHistoryStep == 29 and run.sweep is None
    assert run.path == ["", "proj", "a2"]
    assert api.run("/".join(run.path)).id == "a2"
    lab = api.run("lab/proj/lab1")
    assert lab.entity == "lab" and lab.path == ["lab", "proj", "lab1"]
    assert runlake.Api({"entity": "me"}, root=api.lake.url).run("proj/a1").entity == "me"
    assert repr(run) == "<Run /proj/a2 (finished)>"


def test_lineage_attributes_and_a_forks_inherited_history(api):
    fork = api.run("proj/f1")
    assert (fork.parent_run_id, fork.fork_step, fork.lastHistoryStep) == ("a1", 9, 14)
    assert fork.parent.id == "a1" and api.run("a1").parent is None
    assert fork.segments["kind"].to_list() == ["fork"]
    scanned = list(fork.scan_history(keys=["loss"]))
    assert [r["_step"] for r in scanned] == list(range(15))
    assert [r["loss"] for r in scanned[:10]] == pytest.approx([1 / (s + 1) for s in range(10)])
    assert [r["loss"] for r in scanned[10:]] == [5.0] * 5


def test_run_paths(api):
    for path in ("proj/a1", "a1", "x/proj/a1", "x/proj/runs/a1", "proj:a1", "x/proj:a1"):
        assert api.run(path).id == "a1"
    with pytest.raises(RunNotFoundError):
        api.run("proj/zzz")
    with pytest.raises(RunNotFoundError, match="is in project 'proj'"):
        api.run("other/a1")
    with pytest.raises(RunNotFoundError, match="belongs to entity 'lab'"):
        api.run("else/proj/lab1")
    with pytest.raises(ValueError):
        api.run("../../etc/passwd")
    with pytest.raises(ValueError):
        api.run("")


def test_projects(api):
    assert [p.name for p in api.projects()] == ["other", "proj"]
    project = api.project("proj")
    assert project.run_count == 5 and project.created_at.endswith("Z")
    assert ids(project.runs()) == ids(api.runs("proj"))
    assert isinstance(api.from_path("proj"), runlake.public.Project)
    assert api.from_path("x/proj/a1").id == "a1"
    with pytest.raises(ValueError, match="has no runs"):
        api.project("nope")


# ---- history --------------------------------------------------------------------------------------
def test_history_is_a_deterministic_sample_keeping_ends_and_extremes(tmp_path):
    lake = runlake.Lake(str(tmp_path / "r"))
    run = lake.init("p", id="spiky")
    for s in range(1000):
        run.log({"m": 1000.0 if s == 617 else (-5.0 if s == 333 else float(s % 7)), "other": float(s)})
    run.finish()
    api = runlake.Api(root=lake.url)
    r = api.run("p/spiky")
    first = r.history(samples=50, keys=["m"], pandas=False)
    assert first == r.history(samples=50, keys=["m"], pandas=False)  # the same every call
    steps = [row["_step"] for row in first]
    assert len(first) == 50 and steps == sorted(steps)
    assert {0, 999, 617, 333} <= set(steps)  # first, last, max and min kept
    assert set(first[0]) == {"_step", "m", "_runtime", "_timestamp"}
    frame = r.history(samples=10, format="polars")
    assert frame.height == 10 and {"_step", "_runtime", "_timestamp", "m", "other"} <= set(frame.columns)
    assert r.history(samples=5000, keys=["m"], format="polars").height == 1000
    pandas_frame = r.history(samples=20, keys=["m", "other"])
    assert (
        list(pandas_frame.columns) == ["_step", "m", "other", "_runtime", "_timestamp"]
        and len(pandas_frame) == 20
    )
    assert r.history(keys=["never_logged"], pandas=False) == []
    with pytest.raises(ValueError, match="keys must be a list"):
        r.history(keys="m")
    assert r.history(stream="system", pandas=False) == []  # no samples were taken (#30)
    with pytest.raises(ValueError, match="stream"):
        r.history(stream="events")


def test_history_with_keys_keeps_only_rows_that_have_all_of_them(tmp_path):
    lake = runlake.Lake(str(tmp_path / "r"))
    run = lake.init("p", id="sparse")
    for s in range(20):
        run.log({"train": float(s)} if s % 4 else {"train": float(s), "val": -float(s)})
    run.finish()
    r = runlake.Api(root=lake.url).run("sparse")
    rows = r.history(keys=["train", "val"], pandas=False)
    assert [row["_step"] for row in rows] == [0, 4, 8, 12, 16]
    assert [row["_step"] for row in r.scan_history(keys=["val"])] == [0, 4, 8, 12, 16]
    everything = list(r.scan_history())
    assert len(everything) == 20 and "val" not in everything[1] and everything[4]["val"] == -4.0


def test_scan_history_bounds_and_windows(tmp_path):
    lake = runlake.Lake(str(tmp_path / "r"))
    run = lake.init("p", id="long")
    for s in range(250):
        run.log({"x": float(s)})
    run.finish()
    r = runlake.Api(root=lake.url).run("long")
    assert [row["_step"] for row in r.scan_history(min_step=10, max_step=13)] == [10, 11, 12]  # max exclusive
    assert [row["x"] for row in r.scan_history(keys=["x"], min_step=245)] == [
        245.0,
        246.0,
        247.0,
        248.0,
        249.0,
    ]
    scan = r.scan_history(keys=["x"], page_size=7)
    scan.window = 7  # many windows: rows come out whole and in order across their seams
    assert [row["x"] for row in scan] == [float(s) for s in range(250)]
    assert sum(f.height for f in scan.frames()) == 250
    with pytest.raises(ValueError, match="page_size"):
        r.scan_history(page_size=0)


def test_a_rewound_runs_history_leaves_out_its_archived_steps(tmp_path):
    lake = runlake.Lake(str(tmp_path / "r"))
    run = lake.init("p", id="rw")
    for s in range(10):
        run.log({"x": float(s)})
    run.finish()
    again = lake.init("p", resume_from="rw?_step=4")
    for _ in range(3):
        again.log({"x": 100.0})
    again.finish()
    r = runlake.Api(root=lake.url).run("rw")
    assert [row["x"] for row in r.scan_history(keys=["x"])] == [0.0, 1.0, 2.0, 3.0, 4.0, 100.0, 100.0, 100.0]
    assert r.lastHistoryStep == 7 and len(r.segments) == 2


def test_runs_histories_in_three_formats(api):
    runs = api.runs("proj", filters={"group": "g1"})
    as_polars = runs.histories(samples=4, keys=["loss"], format="polars")
    assert as_polars.columns == ["_runtime", "_step", "_timestamp", "loss", "run_id"]
    assert as_polars.group_by("run_id").len().sort("run_id").rows() == [("a1", 4), ("a2", 4)]
    as_rows = runs.histories(samples=4, keys=["loss"])
    assert len(as_rows) == 8 and {r["run_id"] for r in as_rows} == {"a1", "a2"}
    as_pandas = runs.histories(samples=4, keys=["loss"], format="pandas")
    assert (
        list(as_pandas.columns) == ["_runtime", "_step", "_timestamp", "loss", "run_id"]
        and len(as_pandas) == 8
    )
    with pytest.raises(ValueError, match="Invalid format"):
        runs.histories(format="csv")


def test_without_pandas_the_error_names_the_extra_and_other_formats_still_work(api, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    run = api.run("proj/a1")
    with pytest.raises(ImportError, match=r"runlake\[pandas\]"):
        run.history()
    assert run.history(pandas=False)[0]["_step"] == 0
    assert isinstance(run.history(format="polars"), pl.DataFrame)


def test_sample_rows_keeps_every_row_when_there_are_few():
    frame = pl.DataFrame({"_step": [0, 1, 2], "m": [1.0, None, 3.0]})
    assert sample_rows(frame, 3, ["m"]).equals(frame)
    assert sample_rows(frame, 2, ["m"])["_step"].to_list() == [0, 2]


# ---- edits and delete ----------------------------------------------------------------------------
@pytest.fixture
def small(tmp_path):
    lake = runlake.Lake(str(tmp_path / "root"))
    _log(lake, "p", "e1", config={"lr": 0.1, "seed": 1}, tags=["t"])
    lake.close()
    return str(tmp_path / "root")


def test_edits_are_written_visible_to_other_readers_and_leave_history_alone(small):
    api = runlake.Api(root=small)
    before = runlake.Lake(small).history("e1")
    run = api.run("p/e1")
    run.name, run.notes, run.group, run.job_type = "renamed", "a note", "gg", "eval"
    run.tags.append("edited")
    run.config["lr"] = 0.2
    run.config["new"] = "yes"
    run.update()
    run.summary["accuracy"] = 0.9
    run.summary["hist"] = runlake.Histogram([1, 2, 3], num_bins=3)
    run.summary["renamed_loss"] = run.summary["loss"]
    del run.summary["loss"]
    run.summary.update()
    other = runlake.Lake(small)  # another reader
    row = other.runs().row(0, named=True)
    assert (row["name"], row["notes"], row["group"], row["job_type"], row["tags"]) == (
        "renamed",
        "a note",
        "gg",
        "eval",
        ["t", "edited"],
    )
    assert json.loads(row["config"]) == {"lr": 0.2, "seed": 1, "new": "yes"}
    summary = json.loads(row["summary"])
    assert (
        summary["accuracy"] == 0.9
        and "loss" not in summary
        and summary["renamed_loss"] == pytest.approx(1 / 30)
    )
    assert summary["hist"]["_type"] == "histogram"
    assert other.history("e1").equals(before)
    fresh = runlake.Api(root=small).run("e1")
    assert fresh.name == "renamed" and fresh.summary["accuracy"] == 0.9
    # a resumed run carries the edits on
    resumed = other.init("p", id="e1", resume="must")
    assert resumed.config["lr"] == 0.2 and resumed.summary["accuracy"] == 0.9
    resumed.finish()


def test_a_running_run_cannot_be_edited_or_deleted(small):
    lake = runlake.Lake(small)
    live = lake.init("p", id="live")
    live.log({"x": 1.0})
    live.flush()
    api = runlake.Api(root=small)
    run = api.run("p/live")
    run.summary["x"] = 3.0
    with pytest.raises(RunlakeError, match="is running"):
        run.summary.update()
    with pytest.raises(RunlakeError, match="is running"):
        run.delete()
    live.finish()
    api.run("p/live").delete()


def test_bad_edits_say_what_is_wrong(small):
    run = runlake.Api(root=small).run("e1")
    run.tags = "not-a-list"
    with pytest.raises(TypeError, match="tags must be a list of strings"):
        run.update()
    run = runlake.Api(root=small).run("e1")
    run.summary["img"] = runlake.Image(__import__("numpy").zeros((2, 2, 3), dtype="uint8"))
    with pytest.raises(TypeError, match="only a run writes"):
        run.summary.update()
    assert runlake.Api(root=small).run("e1").tags == ["t"]  # nothing written


def test_delete_hides_the_run_and_its_forks_keep_their_inherited_steps(small):
    lake = runlake.Lake(small)
    fork = lake.init("p", id="child", fork_from="e1?_step=9")
    fork.log({"loss": 7.0})
    fork.finish()
    api = runlake.Api(root=small)
    api.run("p/e1").delete()
    fresh = runlake.Api(root=small)
    assert ids(fresh.runs("p")) == ["child"]
    with pytest.raises(RunNotFoundError):
        fresh.run("p/e1")
    assert runlake.Lake(small).runs()["run_id"].to_list() == ["child"]
    steps = [r["_step"] for r in fresh.run("child").scan_history(keys=["loss"])]
    assert steps == list(range(11))
    runlake.Lake(small).delete_run("e1")  # twice: nothing more happens


# ---- public scripts, unchanged ---------------------------------------------------------------------
def _script(name, cwd, *args, root):
    return run_as_wandb(os.path.join(SCRIPTS, name), cwd, *args, root=root).stdout


@pytest.fixture
def speq(tmp_path):
    """A project the way the plotting script's authors logged it: runs named <algo>_<env>, one
    per seed, EvalReward every 5 steps."""
    path = str(tmp_path / "root")
    lake = runlake.Lake(path)
    for algo in ("iql", "rlpd"):
        for seed in (0, 42, 1234, 7):
            _log(lake, "SPEQ", f"{algo}-{seed}", name=f"{algo}_Hopper-v5", config={"seed": seed})
    lake.close()
    return path


@pytest.mark.slow
def test_a_research_repos_seed_band_plot_runs_unchanged(speq, tmp_path):
    _script("seed_bands_plot.py", tmp_path, "carlo", "SPEQ", root=speq)
    out = json.loads((tmp_path / "bands.json").read_text())
    assert out["iql_Hopper-v5"]["seeds"] == 3 and out["rlpd_Hopper-v5"]["seeds"] == 3  # seed 7 left out
    assert out["iql_Hopper-v5"]["points"] == 6  # EvalReward at steps 0, 5, ..., 25
    assert len([k for k in out["final"] if ":" not in k]) == 8
    assert (tmp_path / "Plots" / "Hopper-v5.png").stat().st_size > 1000


@pytest.mark.slow
def test_the_docs_export_to_csv_runs_unchanged(root, tmp_path):
    _script("export_runs_csv.py", tmp_path, "lab", "proj", root=root)
    import csv

    with open(tmp_path / "project.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["name-a1", "name-a2", "name-a3", "labrun", "f1"]
    assert "'lr': 0.1" in rows[0]["config"] and "'loss'" in rows[0]["summary"]


@pytest.mark.slow
def test_the_docs_read_compare_and_update_snippets_run_unchanged(small, tmp_path):
    lake = runlake.Lake(small)
    _log(lake, "p", "e2", config={"lr": 0.3, "seed": 1})
    lake.close()
    _script("read_and_compare.py", tmp_path, "ent/p/e1", "ent/p/e2", root=small)
    out = json.loads((tmp_path / "read_and_compare.json").read_text())
    assert out["keyed_accuracy"] == pytest.approx([s / 30 for s in range(30)])
    assert out["history_accuracy"] == pytest.approx([s / 30 for s in range(30)])
    assert out["config_differs"] == ["lr"] and out["scanned_losses"] == 30
    e2 = runlake.Api(root=small).run("e2")
    assert e2.summary["accuracy"] == 0.9 and "loss" not in e2.summary and "new_name" in e2.summary
    assert e2.summary["accuracy_histogram"]["_type"] == "histogram" and e2.config["key"] == 10


@pytest.mark.slow
def test_the_docs_snippets_run_unchanged_on_runs_a_real_wandb_notebook_logged(tmp_path):
    pytest.importorskip("wandb")
    logged = tmp_path / "logged"
    logged.mkdir()
    subprocess.run(
        [sys.executable, os.path.join(SCRIPTS, "wandb_notebook.py"), str(logged)],
        check=True,
        timeout=600,
        cwd=logged,
    )
    root = str(tmp_path / "root")
    runlake.Lake(root).import_runs("wandb", str(logged / "wandb"))
    _script("export_runs_csv.py", tmp_path, "entity", "proj", root=root)
    assert (tmp_path / "project.csv").read_text().count("notebook-nb") == 2
    _script("read_and_compare.py", tmp_path, "entity/proj/nb1", "entity/proj/nb2", root=root)
    out = json.loads((tmp_path / "read_and_compare.json").read_text())
    assert out["keyed_accuracy"] == pytest.approx([s / 12 for s in range(12)])
    assert out["config_differs"] == ["batch_size", "optimizer"] and out["scanned_losses"] == 12


def test_compaction_reclaims_a_deleted_run_only_once_nothing_reads_it(small):
    lake = runlake.Lake(small)
    fork = lake.init("p", id="child", fork_from="e1?_step=9")
    fork.log({"loss": 7.0})
    fork.finish()
    _log(lake, "p", "leaf", steps=5)
    storage = lake.storage
    lake.delete_run("e1")
    lake.delete_run("leaf")
    with pytest.raises(RunNotFoundError, match="was deleted: it cannot be forked"):
        lake.init("p", fork_from="e1?_step=3")
    with pytest.raises(RunNotFoundError, match="cannot be resumed"):
        lake.init("p", id="leaf", resume="must")
    lake.compact(grace=3600)  # within the grace: nothing goes
    assert storage.exists(storage.paths.meta("p", "leaf", "run.json"))
    lake.compact(grace=0)
    # the leaf is gone (its id free again); e1 stays: the child's lineage reads it
    assert not storage.exists(storage.paths.run_dir("p", "leaf"))
    assert not storage.exists(storage.paths.run_history_dir("p", "leaf"))
    assert not storage.exists(storage.paths.id_claim("leaf"))
    assert storage.exists(storage.paths.meta("p", "e1", "run.json"))
    assert [r["loss"] for r in runlake.Api(root=small).run("child").scan_history(keys=["loss"])][-2:] == [
        0.1,
        7.0,
    ]
    lake.delete_run("child")
    lake.compact(grace=0)  # now nothing reads e1: both go
    assert not storage.exists(storage.paths.run_dir("p", "e1")) and not storage.exists(
        storage.paths.run_dir("p", "child")
    )
    assert lake.runs().height == 0
    _log(lake, "p", "leaf", steps=2)  # the id can be taken again
    assert lake.history("leaf").height == 2
