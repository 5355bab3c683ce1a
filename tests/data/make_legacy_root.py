"""Writes tests/data/legacy-root/ and its expected reads with the *installed* runlake.

Run once with the release whose on-storage format the tests must keep reading (0.1.0, the
flat-package layout), then commit both: `tests/test_compat.py` reads the root with today's code
and compares every answer with `expected.json`.

    python tests/data/make_legacy_root.py
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import runlake

HERE = Path(__file__).resolve().parent
ROOT = HERE / "legacy-root"
EXPECTED = HERE / "legacy-expected.json"


def build(root: str) -> None:
    base = runlake.init(
        "legacy",
        root=root,
        id="base",
        config={"lr": 0.01, "opt": {"name": "adam"}},
        tags=["a", "b"],
        notes="the base run",
    )
    for step in range(120):
        base.log(
            {
                "loss": math.exp(-step / 40),
                "train": {"acc": step / 120},
                "phase": "warm" if step < 10 else "main",
            }
        )
    base.finish()
    fork = runlake.init("legacy", root=root, id="fork1", fork_from="base?_step=60", config={"lr": 0.1})
    for step in range(61, 130):
        fork.log({"loss": 1.0 / step, "extra": float(step)})
    fork.finish()
    runlake.compact(root, progress=False)  # base and fork1 go into a pack
    again = runlake.init(resume_from="base?_step=90", root=root)  # archived segment 0 (partly packed)
    for step in range(91, 110):
        again.log({"loss": 0.5 - step / 1000})
    again.finish()
    grand = runlake.init("legacy", root=root, id="grand", fork_from="fork1?_step=100")
    for step in range(101, 140, 2):
        grand.log({"loss": 0.01 * step}, step=step)
    grand.finish(exit_code=3)
    other = runlake.init("other", root=root, id="solo")
    other.log({"x": 1.0})
    other.log({"x": 2.0, "s": "text"})
    other.finish()


def expected(root: str) -> dict:
    out: dict = {"history": {}, "archived": {}, "lineage": {}}
    for run_id in ("base", "fork1", "grand", "solo"):
        frame = runlake.history(run_id, root=root)
        out["history"][run_id] = frame.drop("_timestamp", "_runtime").to_dicts()
        out["lineage"][run_id] = runlake.lineage(run_id, root=root).to_dicts()
    out["archived"]["base"] = (
        runlake.history("base", ["loss"], root=root, segment=0).drop("_timestamp", "_runtime").to_dicts()
    )
    out["runs"] = (
        runlake.runs(root=root)
        .select(
            "run_id",
            "project",
            "name",
            "state",
            "parent_run_id",
            "fork_step",
            "last_step",
            "config",
            "summary",
            "segment",
            "notes",
            "tags",
            "exit_code",
        )
        .to_dicts()
    )
    out["counts"] = runlake.sql(
        "SELECT run_id, key, count(*) AS n, round(sum(value), 3) AS total FROM history "
        "GROUP BY ALL ORDER BY run_id, key",
        root=root,
    ).to_dicts()
    out["raw"] = runlake.sql(
        "SELECT run_id, segment, count(*) AS n FROM raw_history GROUP BY ALL ORDER BY ALL", root=root
    ).to_dicts()
    return out


if __name__ == "__main__":
    shutil.rmtree(ROOT, ignore_errors=True)
    build(str(ROOT))
    EXPECTED.write_text(json.dumps(expected(str(ROOT)), indent=1, default=str) + "\n")
    print(f"wrote {ROOT} and {EXPECTED} with runlake {runlake.__version__}")
