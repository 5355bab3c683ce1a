"""Compaction: fewer files, identical query results, idempotent, resumable, live runs untouched."""

from __future__ import annotations

import glob
import os

import pytest

import runlake
from runlake import _storage


def _parts(root):
    return sorted(glob.glob(os.path.join(root, "history", "**", "*.parquet"), recursive=True))


@pytest.fixture
def many_parts(local_root):
    base = runlake.init("p", root=local_root, id="base0001")
    for i in range(500):
        base.log({"loss": 1.0 / (i + 1), "acc": i / 500, **({"note": f"n{i}"} if i % 100 == 0 else {})})
        if i % 50 == 49:
            base.flush()  # many small parts, as a long run flushing every few seconds leaves
    base.finish()
    fork = runlake.init("p", root=local_root, id="fork0001", fork_from="base0001?_step=250")
    for i in range(300):
        fork.log({"loss": 0.5})
        if i % 50 == 49:
            fork.flush()
    fork.finish()
    runlake.init(root=local_root, resume_from="base0001?_step=400").finish()
    return local_root


def _snapshot(root):
    return {run_id: runlake.history(run_id, root=root) for run_id in ("base0001", "fork0001")} | {
        "archived": runlake.history("base0001", root=root, segment=0),
        "sql": runlake.sql(
            "SELECT run_id, key, count(*) AS n, round(sum(value), 6) AS s, max(step) AS m FROM history WHERE key <> '_timestamp' GROUP BY ALL ORDER BY ALL",
            root=root,
        ),
    }


def test_compaction_keeps_results_and_cuts_files(many_parts):
    before = _snapshot(many_parts)
    files_before = len(_parts(many_parts))
    result = runlake.compact(many_parts)
    assert result.filter(result["parts_before"] > 1).height >= 2
    files_after = _parts(many_parts)
    assert len(files_after) < files_before / 3
    assert all(os.path.basename(p).startswith("cpart-") for p in files_after)
    after = _snapshot(many_parts)
    for name, frame in before.items():
        assert frame.equals(after[name]), name
    again = runlake.compact(many_parts)  # idempotent
    assert again.filter(again["parts_before"] > 1).height == 0
    assert _parts(many_parts) == files_after


def test_a_crash_mid_compaction_reads_the_same_and_is_finished_next_time(many_parts, monkeypatch):
    before = _snapshot(many_parts)
    calls = {"n": 0}
    real_rm = type(_storage.Storage("/tmp").fs).rm_file

    def flaky_rm(self, path, *a, **kw):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt  # the process dies after writing the compacted part
        return real_rm(self, path, *a, **kw)

    monkeypatch.setattr(type(_storage.Storage("/tmp").fs), "rm_file", flaky_rm)
    with pytest.raises(KeyboardInterrupt):
        runlake.compact(many_parts)
    monkeypatch.undo()
    mid = _snapshot(many_parts)
    for name, frame in before.items():
        assert frame.equals(mid[name]), name
    runlake.compact(many_parts)
    assert all(os.path.basename(p).startswith("cpart-") for p in _parts(many_parts))
    for name, frame in before.items():
        assert frame.equals(_snapshot(many_parts)[name]), name


def test_live_runs_are_not_compacted(local_root):
    run = runlake.init("p", root=local_root, id="live0001")
    for i in range(100):
        run.log({"x": float(i)})
        if i % 10 == 9:
            run.flush()
    runlake.history("live0001", root=local_root)
    files = _parts(local_root)
    result = runlake.compact(local_root)
    assert result.height == 0 and _parts(local_root) == files
    run.finish()
    runlake.compact(local_root)
    assert len(_parts(local_root)) == 1
    assert runlake.history("live0001", root=local_root)["x"].to_list() == [float(i) for i in range(100)]


def test_compact_cli(many_parts):
    from click.testing import CliRunner

    from runlake.cli import main

    out = CliRunner().invoke(main, ["--root", many_parts, "compact"])
    assert out.exit_code == 0 and out.output.startswith("compacted ")
