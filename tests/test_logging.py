"""W&B's logging semantics: steps, commits, values, and all-or-nothing calls."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import polars as pl
import pytest
from conftest import effective

import runlake


def test_each_commit_advances_one_step(root):
    run = runlake.init("p", root=root)
    assert run.step == 0
    run.log({"a": 1})
    run.log({"a": 2, "b": 3})
    assert run.step == 2
    run.finish()
    frame = runlake.history(run.id, root=root)
    assert frame.columns == ["_step", "_timestamp", "_runtime", "a", "b"]
    assert frame.schema["_step"] == pl.Int64 and frame.schema["a"] == pl.Float64
    assert effective(frame) == {0: {"a": 1.0}, 1: {"a": 2.0, "b": 3.0}}


def test_commit_false_accumulates_and_finish_commits_pending(root):
    run = runlake.init("p", root=root)
    run.log({"a": 1}, commit=False)
    run.log({"b": 2}, commit=False)
    assert run.step == 0
    run.log({"c": 3})
    run.log({"a": 9}, commit=False)
    run.finish()
    assert effective(runlake.history(run.id, root=root)) == {0: {"a": 1.0, "b": 2.0, "c": 3.0}, 1: {"a": 9.0}}


def test_explicit_steps_merge_jump_and_commit(root):
    run = runlake.init("p", root=root)
    run.log({"a": 1}, step=5)  # commit defaults to False with a step
    run.log({"b": 2}, step=5)  # same step merges
    assert run.step == 5
    run.log({"a": 3}, step=8)  # a higher step commits 5 first
    run.log({"c": 4})  # no step: merges into 8 and commits
    assert run.step == 9
    run.log({"a": 5}, step=9, commit=True)
    assert run.step == 10
    run.finish()
    assert effective(runlake.history(run.id, root=root)) == {
        5: {"a": 1.0, "b": 2.0},
        8: {"a": 3.0, "c": 4.0},
        9: {"a": 5.0},
    }


def test_lower_step_is_dropped_with_a_warning_naming_both_steps(root):
    run = runlake.init("p", root=root)
    run.log({"a": 1}, step=10, commit=True)
    with pytest.warns(runlake.StepOrderWarning, match=r"step 3.*current step 11"):
        run.log({"a": 2}, step=3)
    assert run.step == 11
    run.finish()
    assert effective(runlake.history(run.id, root=root)) == {10: {"a": 1.0}}


def test_step_order_warning_as_error_raises_and_logs_nothing(root):
    run = runlake.init("p", root=root)
    run.log({"a": 1}, step=4, commit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", runlake.StepOrderWarning)
        with pytest.raises(runlake.StepOrderWarning):
            run.log({"a": 2, "b": 7}, step=1)
    run.log({"c": 1})
    run.finish()
    assert effective(runlake.history(run.id, root=root)) == {4: {"a": 1.0, "c": 1.0}}


class _Scalar:
    """What torch/jax scalars look like to runlake: an object whose .item() is a number."""

    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value


def test_value_types_are_stored_as_float64_or_text(root):
    run = runlake.init("p", root=root)
    run.log(
        {
            "b": True,
            "i": 3,
            "f": 0.5,
            "np32": np.float32(0.1),
            "np64": np.int64(7),
            "zero_d": np.array(2.5),
            "torchlike": _Scalar(1.25),
            "nan": math.nan,
            "inf": math.inf,
            "ninf": -math.inf,
            "s": "hello",
            "skip": None,
            "train": {"loss": 0.3, "deep": {"x": 1}},
        }
    )
    run.finish()
    frame = runlake.history(run.id, root=root)
    assert "skip" not in frame.columns
    row = frame.row(0, named=True)
    assert row["b"] == 1.0 and row["i"] == 3.0 and row["np64"] == 7.0
    assert row["np32"] == float(np.float32(0.1))
    assert row["zero_d"] == 2.5 and row["torchlike"] == 1.25
    assert math.isnan(row["nan"]) and row["inf"] == math.inf and row["ninf"] == -math.inf
    assert row["s"] == "hello" and frame.schema["s"] == pl.String
    assert row["train.loss"] == 0.3 and row["train.deep.x"] == 1.0


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ({"ok": 1.0, "bad": [1, object()]}, TypeError, "'bad'"),
        ({"ok": 1.0, "bad": object()}, TypeError, "'bad'"),
        ({"ok": 1.0, "nest": {"bad": {1, object()}}}, TypeError, "'nest.bad'"),
        ({"ok": 1.0, "c": 1j}, TypeError, "'c'"),
        ({"ok": 1.0, (5,): 1.0}, TypeError, "str"),
        ({"ok": 1.0, "": 1.0}, ValueError, "non-empty"),
        ({"ok": 1.0, "_timestamp": "noon"}, TypeError, "_timestamp"),
        ({"ok": 1.0, "huge": 10**400}, ValueError, "'huge'"),
        ({"ok": 1.0, "s": "\udcff"}, ValueError, "UTF-8"),
        ([("a", 1)], TypeError, "dict"),
    ],
)
def test_bad_values_raise_naming_the_key_and_log_nothing(root, data, error, match):
    run = runlake.init("p", root=root)
    run.log({"ok": 0.0})
    run.log({"pending": 1.0}, commit=False)
    with pytest.raises(error, match=match):
        run.log(data)
    assert run.step == 1
    run.log({"after": 2.0})  # the run keeps working
    run.finish()
    assert effective(runlake.history(run.id, root=root)) == {
        0: {"ok": 0.0},
        1: {"pending": 1.0, "after": 2.0},
    }


@pytest.mark.parametrize(
    ("step", "error"), [(-1, ValueError), (1.5, TypeError), ("3", TypeError), (True, TypeError)]
)
def test_bad_steps_raise(root, step, error):
    run = runlake.init("p", root=root)
    with pytest.raises(error, match="step"):
        run.log({"a": 1}, step=step)
    assert run.step == 0
    run.finish()


def test_numpy_integer_step_is_accepted(root):
    run = runlake.init("p", root=root)
    run.log({"a": 1}, step=np.int64(3), commit=True)
    assert run.step == 4
    run.finish()


def test_empty_commit_still_advances(root):
    run = runlake.init("p", root=root)
    run.log({})
    run.log({"a": 1})
    run.finish()
    frame = runlake.history(run.id, root=root)
    assert frame["_step"].to_list() == [0, 1]
    assert frame["_timestamp"].null_count() == 0


def test_finish_is_idempotent_and_log_after_finish_raises(root):
    run = runlake.init("p", root=root)
    run.log({"a": 1})
    run.finish()
    run.finish()
    with pytest.raises(runlake.RunlakeError, match="finished"):
        run.log({"a": 2})
    assert runlake.runs(root=root)["state"].to_list() == ["finished"]


def test_context_manager_marks_failure(root):
    with pytest.raises(ZeroDivisionError), runlake.init("p", root=root) as run:
        run.log({"a": 1})
        1 / 0  # noqa: B018
    table = runlake.runs(root=root)
    assert table["state"].to_list() == ["failed"] and table["exit_code"].to_list() == [1]
    with runlake.init("p", root=root) as ok:
        ok.log({"a": 1})
    assert runlake.runs(root=root).filter(pl.col("run_id") == ok.id)["state"].item() == "finished"


def test_module_level_api_uses_the_current_run(root):
    with pytest.raises(runlake.RunlakeError, match="init"):
        runlake.log({"a": 1})
    run = runlake.init("p", root=root)
    assert runlake.run is run
    runlake.log({"a": 1})
    runlake.log({"b": 2}, step=3)
    runlake.finish()
    assert runlake.run is None
    assert effective(runlake.history(run.id, root=root)) == {0: {"a": 1.0}, 3: {"b": 2.0}}


def test_runtime_and_timestamp(root):
    run = runlake.init("p", root=root)
    for i in range(3):
        run.log({"a": i})
    run.finish()
    frame = runlake.history(run.id, root=root)
    assert frame["_runtime"].is_sorted() and frame["_runtime"][0] >= 0
    assert frame["_timestamp"].is_sorted()


def test_config_and_summary_persist(root):
    run = runlake.init("p", root=root, config={"lr": 0.1, "layers": [1, 2]}, tags=["x"], notes="hi")
    run.config["batch"] = 32
    run.config.update({"opt": "adam"})
    run.config.dropout = 0.5
    assert run.config.lr == 0.1
    run.log({"loss": 3.0, "name": "a"})
    run.log({"loss": 2.0})
    assert run.summary["loss"] == 2.0
    run.summary["best"] = 1.5
    run.finish()
    row = runlake.runs(root=root).row(0, named=True)
    import json

    assert json.loads(row["config"]) == {
        "lr": 0.1,
        "layers": [1, 2],
        "batch": 32,
        "opt": "adam",
        "dropout": 0.5,
    }
    assert json.loads(row["summary"]) == {"loss": 2.0, "name": "a", "best": 1.5}
    assert row["tags"] == ["x"] and row["notes"] == "hi" and row["name"] == run.id


def test_history_key_selection_uses_or_semantics(root):
    run = runlake.init("p", root=root)
    run.log({"a": 1})
    run.log({"b": 2})
    run.log({"c": 3})
    run.log({"a": 4, "b": 5})
    run.finish()
    frame = runlake.history(run.id, ["b", "a"], root=root)
    assert frame.columns == ["_step", "_timestamp", "_runtime", "b", "a"]
    assert frame["_step"].to_list() == [0, 1, 3]
    assert runlake.history(run.id, "c", root=root)["_step"].to_list() == [2]
    never = runlake.history(run.id, ["nope"], root=root)
    assert never.height == 0 and never.schema["nope"] == pl.Float64


def test_many_rows_are_complete_never_sampled(local_root):
    run = runlake.init("p", root=local_root)
    for i in range(25_000):
        run.log({"x": float(i), "y": -float(i)})
    run.finish()
    frame = runlake.history(run.id, root=local_root)
    assert frame.height == 25_000
    assert frame["x"].to_list() == [float(i) for i in range(25_000)]
    parts = []
    for _dirpath, _dirs, files in os.walk(os.path.join(local_root, "history")):
        parts += [f for f in files if f.endswith(".parquet")]
    assert len(parts) >= 2  # the size trigger flushed before finish()


def test_text_that_looks_like_a_number_stays_text(root):
    run = runlake.init("p", root=root)
    for text in ("0", "1.5", "nan", "-inf"):
        run.log({"t": text, "x": 1.0})
    run.finish()
    frame = runlake.history(run.id, root=root)
    assert frame.schema["t"] == pl.String
    assert frame["t"].to_list() == ["0", "1.5", "nan", "-inf"]


def test_batches_packed_on_the_training_thread_keep_every_row(local_root, monkeypatch):
    monkeypatch.setenv("RUNLAKE_FLUSH_ROWS", "7")
    run = runlake.init("p", root=local_root)
    expected = {}
    for i in range(100):
        row = {"a": float(i)} if i % 3 else {"a": float(i), "t": f"s{i}"}
        if i % 10 == 5:
            run.log({"b": 1.0}, commit=False)
            row = {"b": 1.0, **row}
        run.log({k: v for k, v in row.items() if k != "b"})
        expected[i] = row
        if i % 13 == 0:
            run.flush()
    assert run.summary["a"] == 99.0 and run.summary["t"] == "s99"
    run.finish()
    assert effective(runlake.history(run.id, root=local_root)) == expected


def test_a_finished_run_says_when_it_finished(tmp_path):
    """#24: finish() wrote its final state before marking the run finished, so finished_at was
    null for every run logged with runlake (the web app sorts and polls on it)."""
    import time

    root = str(tmp_path / "root")
    before = time.time()
    ok = runlake.init("p", id="ok", root=root)
    ok.log({"x": 1.0})
    ok.finish()
    bad = runlake.init("p", id="bad", root=root)
    bad.log({"x": 1.0})
    bad.finish(exit_code=3)
    live = runlake.init("p", id="live", root=root)
    live.log({"x": 1.0})
    live.flush()
    runs = {r["run_id"]: r for r in runlake.runs(root=root).iter_rows(named=True)}
    for run_id in ("ok", "bad"):
        finished = runs[run_id]["finished_at"]
        assert finished is not None and before - 1 <= finished.timestamp() <= time.time() + 1, run_id
    assert runs["live"]["finished_at"] is None
    live.finish()
