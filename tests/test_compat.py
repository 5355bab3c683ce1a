"""Roots written by earlier releases read the same: a root made by runlake 0.1.0 (the flat
package), with a pack, an archived segment, forks and text values, read with today's code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from data.make_legacy_root import expected

import runlake

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def legacy_root(tmp_path) -> str:
    root = tmp_path / "legacy-root"
    shutil.copytree(DATA / "legacy-root", root)  # reads write the catalog cache: work on a copy
    return str(root)


def _normal(value):
    return json.loads(json.dumps(value, default=str))


def test_a_root_written_by_release_0_1_reads_the_same(legacy_root):
    want = json.loads((DATA / "legacy-expected.json").read_text())
    got = _normal(expected(legacy_root))
    for section in want:
        assert got[section] == want[section], section


def test_a_legacy_root_keeps_working_for_writes(legacy_root):
    child = runlake.init("legacy", root=legacy_root, id="child", fork_from="grand?_step=120")
    child.log({"loss": 9.0})
    child.finish()
    frame = runlake.history("child", ["loss"], root=legacy_root)
    assert frame["_step"].to_list()[-1] == 121
    assert frame["loss"].to_list()[-1] == 9.0
    assert runlake.compact(legacy_root, progress=False).height >= 1
    assert runlake.history("child", ["loss"], root=legacy_root).equals(frame)
