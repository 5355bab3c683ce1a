"""The W&B battery (tests/parity/battery.py) through runlake, checked against what the real
wandb client recorded for the same calls (tests/data/wandb-parity.json, made by
tests/parity/record_wandb.py): every row (step, key, value), the summary, the config, and
the calls W&B refuses."""

from __future__ import annotations

import json
import math
import os
import warnings

import pytest
from parity.battery import CASES, STAMPED

import runlake

with open(os.path.join(os.path.dirname(__file__), "data", "wandb-parity.json")) as fh:
    RECORDED = json.load(fh)
EXCEPTIONS = {"ConfigError": runlake.ConfigError, "TypeError": TypeError, "ValueError": ValueError}


def _flat(doc: dict, prefix: str = "") -> dict:
    """Nested dicts flattened with "." (how W&B's backend keys them)."""
    out = {}
    for key, value in doc.items():
        if isinstance(value, dict) and value.get("_type") is None:
            out.update(_flat(value, f"{prefix}{key}."))
        elif isinstance(value, dict):  # a histogram: compared field by field, as W&B's rows hold it
            out.update(_flat(dict(value), f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return float(a) == float(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _rows(run_id: str, root: str, json_keys: set[str]) -> dict[str, dict]:
    long = runlake.sql(
        "SELECT step, key, value, text FROM history WHERE run_id = ? AND key NOT IN ('_runtime') ORDER BY step, key",
        root=root,
        params=[run_id],
    )
    rows: dict[str, dict] = {}
    for step, key, value, text in long.iter_rows():
        row = rows.setdefault(str(step), {})
        if key == "_timestamp":
            row[key] = value
            continue
        if text is not None:
            decoded = json.loads(text) if key in json_keys else text
            if isinstance(decoded, dict):  # histograms: W&B's backend keys them "key.values", ...
                for field, inner in _flat(decoded).items():
                    row[f"{key}.{field}"] = inner
                continue
            row[key] = decoded
        else:
            row[key] = value
    return rows


@pytest.mark.parametrize("name", sorted(CASES))
def test_runlake_stores_what_wandb_stores(name, tmp_path):
    expected = RECORDED["cases"][name]
    root = str(tmp_path / "root")
    raised = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the step-order warning is part of a case
        try:
            CASES[name](runlake, {"root": root})
        except Exception as exc:  # noqa: BLE001 - compared with what W&B raised
            raised = exc
            if runlake.run is not None:
                runlake.run.finish()
    if expected["error"] is None:
        assert raised is None, f"runlake raised {raised!r} where wandb did not"
    else:
        assert isinstance(raised, EXCEPTIONS[expected["error"]]), (
            f"expected {expected['error']}, got {raised!r}"
        )
    runs = runlake.runs(root=root)
    assert runs.height == 1
    meta = runs.row(0, named=True)
    summary = json.loads(meta["summary"])
    with open(os.path.join(root, "runs", meta["project"], meta["run_id"], "meta", "state.json")) as fh:
        state = json.load(fh)
    rows = _rows(meta["run_id"], root, set(state["json_keys"]))
    want_rows = {
        step: {k: v for k, v in row.items() if v is not None}  # W&B keeps nulls; runlake skips None
        for step, row in expected["rows"].items()
    }
    for row in rows.values():  # only the timestamps a case gave itself are exact
        if row.get("_timestamp") not in STAMPED.get(name, ()):
            row.pop("_timestamp", None)
    assert sorted(rows, key=int) == sorted(want_rows, key=int), (rows, want_rows)
    for step, row in want_rows.items():
        assert sorted(rows[step]) == sorted(row), (step, rows[step], row)
        for key, value in row.items():
            assert _same(rows[step][key], value), (step, key, rows[step][key], value)
    want_summary = _flat(expected["summary"])
    got_summary = _flat(summary)
    assert sorted(got_summary) == sorted(want_summary), (got_summary, want_summary)
    for key, value in want_summary.items():
        assert _same(got_summary[key], value), (key, got_summary[key], value)
    assert json.loads(meta["config"]) == expected["config"]
