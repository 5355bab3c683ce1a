"""One battery of W&B sequences, run through `wandb` (by record_wandb.py) and through runlake
(by tests/test_wandb_parity.py). Each case gets the module (`wandb` or `runlake`) and the
keyword arguments that put its run somewhere private, and uses only wandb's public API.

A case may raise: the recorder stores which exception W&B raised, and the test checks that
runlake raises one of the same kind at the same call (the calls before it must be kept).
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import fractions
from collections.abc import Callable
from typing import Any

import numpy as np

Case = Callable[[Any, dict[str, Any]], Any]
CASES: dict[str, Case] = {}
STAMPED = {"underscore_keys": {1700000000.5}}  # the _timestamps a case logs itself (compared exactly)


def case(fn: Case) -> Case:
    CASES[fn.__name__] = fn
    return fn


@case
def plain(wb, kw):
    run = wb.init(project="parity", config={"lr": 0.1, "layers": 2}, **kw)
    for i in range(5):
        run.log({"loss": 1.0 / (i + 1), "acc": i * 0.1})
    run.finish()


@case
def step_and_commit(wb, kw):
    run = wb.init(project="parity", **kw)
    run.log({"a": 1})
    run.log({"b": 2}, commit=False)
    run.log({"c": 3})
    run.log({"d": 4}, step=5)
    run.log({"e": 5}, step=5)
    run.log({"f": 6}, step=7, commit=True)
    run.log({"g": 7}, step=3)  # below the current step: dropped (with a warning)
    run.log({"h": 8})
    run.finish()


@case
def nested_keys(wb, kw):
    run = wb.init(project="parity", **kw)
    run.log({"train": {"acc": 0.7, "loss": {"ce": 0.5}}, "train/acc": 0.8})
    run.log({"train": {"acc": 0.75}, "val/acc": 0.6})
    run.finish()


@case
def lists_and_arrays(wb, kw):
    run = wb.init(project="parity", **kw)
    run.log({"per_class": [0.1, 0.2, 0.3], "labels": ("cat", "dog"), "mixed": [1, "a"]})
    run.log({"small": np.arange(3), "one": np.array([5.0]), "f32": np.float32(0.5), "i64": np.int64(7)})
    run.log({"big": np.arange(40.0)})
    run.log({"matrix": np.ones((2, 3))})
    run.log({"empty": []})
    run.finish()


@case
def histograms(wb, kw):
    run = wb.init(project="parity", **kw)
    data = np.linspace(0.0, 1.0, 101)
    run.log({"h_seq": wb.Histogram(sequence=data, num_bins=8)})
    counts, edges = np.histogram(data, bins=4)
    run.log({"h_np": wb.Histogram(np_histogram=(counts, edges))})
    run.log({"h_default": wb.Histogram(data.tolist())})
    run.finish()


@case
def underscore_keys(wb, kw):
    run = wb.init(project="parity", **kw)
    run.log({"_custom": 5, "x": 1})
    run.log({"_step": 99, "x": 2})
    run.log({"_timestamp": 1700000000.5, "x": 3})
    run.finish()


@case
def summary_last_write_wins(wb, kw):
    run = wb.init(project="parity", **kw)
    run.summary["loss"] = 0.1
    run.log({"loss": 0.3})
    run.log({"acc": 0.5})
    run.summary["acc"] = 0.9
    run.summary["best"] = {"acc": 0.9, "epoch": 3}
    run.summary["note"] = "hello"
    run.log({"other": 1})
    run.finish()


@case
def summary_nested_from_log(wb, kw):
    run = wb.init(project="parity", **kw)
    run.log({"train": {"acc": 0.7}})
    run.log({"train": {"acc": 0.8, "loss": 0.2}})
    run.finish()


@case
def define_metric_summaries(wb, kw):
    run = wb.init(project="parity", **kw)
    run.define_metric("loss", summary="min")
    run.define_metric("acc", summary="max")
    run.define_metric("lr", summary="first")
    run.define_metric("score", summary="mean")
    run.define_metric("hidden_one", summary="none")
    run.define_metric("val/*", summary="min,max")
    run.define_metric("both", summary="last,min")
    for loss, acc, score in ((3.0, 0.1, 1.0), (1.0, 0.7, 2.0), (2.0, 0.4, 6.0)):
        run.log(
            {
                "loss": loss,
                "acc": acc,
                "lr": loss / 10,
                "score": score,
                "hidden_one": 1,
                "val/loss": loss + 1,
                "both": score,
            }
        )
    run.finish()


@case
def define_metric_step(wb, kw):
    run = wb.init(project="parity", **kw)
    run.define_metric("epoch")
    run.define_metric("val/*", step_metric="epoch")
    for epoch in range(3):
        run.log({"train/loss": 1.0 / (epoch + 1)})
        run.log({"val/acc": epoch * 0.2, "epoch": epoch})
    run.finish()


@case
def config_updates(wb, kw):
    ns = argparse.Namespace(batch_size=32, optimizer="adam")
    run = wb.init(project="parity", config=ns, **kw)
    run.config.update({"lr": 0.01, "sched": {"kind": "cos", "warmup": 10}})
    run.config.update({"lr": 0.02}, allow_val_change=True)
    run.config.setdefaults({"lr": 0.5, "seed": 1})
    run.config.dropout = 0.1
    run.config["depth"] = 4
    run.config.update({"lr": 0.02})  # the same value again: allowed
    run.log({"x": run.config.lr})
    run.finish()


@case
def config_change_refused(wb, kw):
    run = wb.init(project="parity", config={"lr": 0.1}, **kw)
    run.log({"x": 1})
    try:
        run.config.update({"lr": 0.2})
    finally:
        run.finish()


@case
def config_include_exclude(wb, kw):
    run = wb.init(project="parity", config={"a": 1, "b": 2, "c": 3}, config_exclude_keys=["b"], **kw)
    run.log({"x": 1})
    run.finish()


@case
def scalar_types(wb, kw):
    run = wb.init(project="parity", **kw)
    run.log({"flag": True, "big": 2**40, "neg": -3, "txt": "héllo ✓", "none": None})
    run.log({"inf": float("inf"), "ninf": float("-inf")})
    run.log({"when": datetime.datetime(2026, 1, 2, 3, 4, 5), "day": datetime.date(2026, 1, 2)})
    run.finish()


@case
def decimal_value(wb, kw):
    run = wb.init(project="parity", **kw)
    run.log({"x": 1})
    try:
        run.log({"dec": decimal.Decimal("1.25")})
    finally:
        run.finish()


@case
def fraction_value(wb, kw):
    run = wb.init(project="parity", **kw)
    run.log({"x": 1})
    try:
        run.log({"frac": fractions.Fraction(1, 4)})
    finally:
        run.finish()


@case
def empty_logs(wb, kw):
    run = wb.init(project="parity", **kw)
    run.log({})
    run.log({"a": 1})
    run.log({}, commit=False)
    run.log({"b": 2})
    run.finish()


@case
def module_level(wb, kw):
    wb.init(project="parity", config={"a": 1}, **kw)
    wb.config.update({"b": 2})
    wb.log({"m": 1})
    wb.summary["extra"] = 5
    wb.define_metric("m", summary="max")
    wb.log({"m": 3})
    wb.log({"m": 2})
    wb.finish()


@case
def other_values(wb, kw):
    run = wb.init(project="parity", **kw)
    run.log({"s": {3, 1, 2}, "raw": b"bytes", "intkeys": {1: 2.5}})
    run.finish()


@case
def unserializable_value(wb, kw):
    run = wb.init(project="parity", **kw)
    run.log({"x": 1})
    try:
        run.log({"x": 2, "obj": object()})  # W&B rejects the whole call
    finally:
        run.finish()
