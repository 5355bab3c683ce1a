"""The pure core of reading: scanned rows (g, step, value, text) -> series -> frames and summaries."""

from __future__ import annotations

import pyarrow as pa

from runlake.read.assemble import last_values, series, wide


def _rows(g, step, value, text=None):
    return pa.table(
        {
            "g": pa.array(g, pa.int64()),
            "step": pa.array(step, pa.int64()),
            "value": pa.array(value, pa.float64()),
            "text": pa.array(text or [None] * len(g), pa.string()),
        }
    )


def test_runs_arriving_out_of_order_are_ordered_by_group_then_step():
    # two keys (per = 2 ranks): key 0's ancestor rows (g=0) arrive after its own rows (g=1)
    table = _rows([1, 1, 0, 0, 3, 2], [5, 6, 1, 2, 7, 3], [50, 60, 10, 20, 70, 30])
    got = series(table, 2, per=2)
    assert got[0][0].tolist() == [1, 2, 5, 6] and got[0][1].tolist() == [10, 20, 50, 60]
    assert got[1][0].tolist() == [3, 7]


def test_a_source_out_of_step_order_is_sorted():
    got = series(_rows([0, 0, 0], [3, 1, 2], [3.0, 1.0, 2.0]), 1, per=1)
    assert got[0][0].tolist() == [1, 2, 3] and got[0][1].tolist() == [1.0, 2.0, 3.0]


def test_empty_scans_give_empty_series():
    assert series(None, 3, per=1) == [None, None, None]


def test_the_wide_frame_aligns_keys_on_steps_and_renders_text_keys_as_text():
    found = {
        "loss": series(_rows([0, 0, 0], [0, 1, 2], [1.0, 0.5, 0.25]), 1, 1)[0],
        "phase": series(_rows([0, 0], [0, 2], [None, 7.0], ["warm", None]), 1, 1)[0],
    }
    frame = wide(found, None)
    assert frame.columns == ["_step", "_timestamp", "_runtime", "loss", "phase"]
    assert frame["_step"].to_list() == [0, 1, 2]
    assert frame["phase"].to_list() == ["warm", None, "7.0"]
    assert wide(found, ["phase"])["_step"].to_list() == [0, 2]


def test_last_values_are_the_summary_of_user_keys():
    found = {
        "a": series(_rows([0, 0], [0, 1], [1.0, 2.0]), 1, 1)[0],
        "s": series(_rows([0, 0], [0, 1], [1.0, None], [None, "x"]), 1, 1)[0],
        "_runtime": series(_rows([0], [1], [9.0]), 1, 1)[0],
    }
    assert last_values(found) == {"a": 2.0, "s": "x"}
