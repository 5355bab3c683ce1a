"""The pure core of writing: flattening a log payload, packing rows into a long table."""

from __future__ import annotations

import numpy as np
import pytest

from runlake.write.packing import blocks_to_table, pack_rows
from runlake.write.values import flatten


def test_nested_dicts_flatten_and_the_known_set_grows():
    known: set[str] = set()
    row, text = flatten({"a": 1, "train": {"acc": 0.5}, "skip": None}, known)
    assert row == {"a": 1.0, "train/acc": 0.5} and not text
    assert known == {"a", "train/acc"}
    row, text = flatten({"a": 2.0, "s": "x"}, known)
    assert row == {"a": 2.0, "s": "x"} and text


@pytest.mark.parametrize(
    ("payload", "error", "match"),
    [
        ({"_x": 1.0}, ValueError, "reserved"),
        ({1: 1.0}, TypeError, "metric names must be str"),
        ({"a": [1, 2]}, TypeError, "'a'"),
        ({"a": 10**400}, ValueError, "too large"),
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
