"""The pure core of writing: flattening a log payload, packing rows into a long table."""

from __future__ import annotations

import numpy as np
import pytest

from runlake.write.packing import blocks_to_table, pack_rows
from runlake.write.values import flatten


def test_nested_dicts_flatten_with_a_dot_and_the_known_set_grows():
    known: set[str] = set()
    row, text, extra = flatten({"a": 1, "train": {"acc": 0.5}, "train/acc": 0.7, "skip": None}, known)
    assert row == {"a": 1.0, "train.acc": 0.5, "train/acc": 0.7} and not text and extra is None
    assert known == {"a", "train.acc", "train/acc"}
    row, text, extra = flatten({"a": 2.0, "s": "x"}, known)
    assert row == {"a": 2.0, "s": "x"} and text


def test_lists_arrays_and_wandb_scalars_become_wandbs_json_or_strings():
    import datetime
    import decimal
    import fractions
    import json

    row, text, extra = flatten(
        {
            "l": [1, 2.5, "a"],
            "small": np.arange(3),
            "big": np.arange(40.0),
            "one": np.array([4.0]),
            "d": decimal.Decimal("1.25"),
            "f": fractions.Fraction(1, 4),
            "t": datetime.date(2026, 1, 2),
        },
        set(),
    )
    assert json.loads(row["l"]) == [1, 2.5, "a"] and json.loads(row["small"]) == [0, 1, 2]
    hist = json.loads(row["big"])
    assert hist["_type"] == "histogram" and len(hist["values"]) == 32 and sum(hist["values"]) == 40
    assert row["one"] == 4.0 and row["d"] == "1.25" and row["f"] == "1/4" and row["t"] == "2026-01-02"
    assert text and extra is not None and set(extra.json_keys) == {"l", "small", "big"}


def test_underscore_keys_follow_wandb():
    row, _, extra = flatten({"_custom": 1, "_step": 5, "_runtime": 3, "_timestamp": 1700000000.5}, set())
    assert row == {"_custom": 1.0} and extra is not None and extra.stamp == 1700000000.5


@pytest.mark.parametrize(
    ("payload", "error", "match"),
    [
        ({"_timestamp": "x"}, TypeError, "_timestamp"),
        ({(1, 2): 1.0}, TypeError, "metric names must be str"),
        ({"a": [object()]}, TypeError, "'a'"),
        ({"a": 10**400}, ValueError, "too large"),
        ({"a": "\ud800"}, ValueError, "UTF-8"),
        ([1], TypeError, "dict"),
    ],
)
def test_bad_payloads_raise_naming_the_key_and_keep_nothing(payload, error, match):
    known: set[str] = set()
    with pytest.raises(error, match=match):
        flatten(payload, known)
    assert known == set()


def test_uniform_rows_pack_into_a_key_sorted_long_table_with_system_keys():
    steps, times = [0, 1, 2], [10.0, 11.0, 12.5]
    rows = [{"b": 1.0, "a": 2.0}, {"a": 3.0, "b": 4.0}, {"a": 5.0, "b": 6.0}]
    table, last = blocks_to_table(pack_rows(steps, times, rows, runtime_origin=10.0, may_have_text=False))
    keys = table.column("key").to_pylist()
    assert keys == sorted(keys) and set(keys) == {"a", "b", "_timestamp", "_runtime"}
    a = table.filter(np.asarray(table.column("key").to_pylist()) == "a")
    assert a.column("step").to_pylist() == [0, 1, 2] and a.column("value").to_pylist() == [2.0, 3.0, 5.0]
    assert last == {"a": 5.0, "b": 6.0, "_timestamp": 12.5, "_runtime": 2.5}


def test_mixed_rows_and_text_keep_every_point():
    rows = [{"a": 1.0}, {"a": "warm", "b": 2.0}, {"b": 3.0}]
    table, last = blocks_to_table(pack_rows([0, 1, 2], [0.0, 0.0, 0.0], rows, 0.0))
    got = sorted(
        zip(
            table.column("key").to_pylist(),
            table.column("step").to_pylist(),
            table.column("value").to_pylist(),
            table.column("text").to_pylist(),
            strict=True,
        )
    )
    user = [g for g in got if not g[0].startswith("_")]
    assert user == [("a", 0, 1.0, None), ("a", 1, None, "warm"), ("b", 1, 2.0, None), ("b", 2, 3.0, None)]
    assert last["a"] == "warm" and last["b"] == 3.0
