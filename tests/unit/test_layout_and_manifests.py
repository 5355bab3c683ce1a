"""The on-storage contract as pure code: names, paths, typed manifest documents, liveness."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from runlake.errors import RunlakeError
from runlake.store.layout import (
    Layout,
    PartFile,
    hive_node,
    pack_relative,
    parse_part,
    split_meta_path,
    visible_parts,
)
from runlake.store.liveness import HOST, holder_alive, process_start, writer_identity
from runlake.store.manifests import PackManifest, SegmentDoc, StateDoc


def test_part_names_carry_their_step_range():
    part = parse_part(
        "/r/history/project=p/run_id=a/segment=0/part-000000000010-000000000019-abcdef012345.parquet", 7
    )
    assert part == PartFile(part.path, 10, 19, 7, False)
    assert parse_part("/x/part-1-2-zz.parquet", 0) is None
    assert parse_part("/x/notes.txt", 0) is None


def test_a_compacted_part_of_release_0_1_hides_the_parts_it_holds():
    parts = [
        PartFile("a", 0, 9, 1),
        PartFile("b", 10, 19, 1),
        PartFile("c", 0, 19, 2, compacted=True),
        PartFile("d", 20, 29, 1),
    ]
    assert [p.path for p in visible_parts(parts)] == ["c", "d"]


def test_layout_paths_are_the_documented_ones():
    paths = Layout("/root")
    assert paths.meta("p", "r", "state.json") == "/root/runs/p/r/meta/state.json"
    assert paths.segment_dir("p", "r", 2) == "/root/history/project=p/run_id=r/segment=2"
    assert parse_part(paths.part("p", "r", 2, 5, 9), 0).step_lo == 5
    assert paths.pack_base("p", "x1") == "/root/packs/project=p/pack-x1"
    assert paths.relative("/root/runs/p") == "runs/p"
    with pytest.raises(ValueError):
        paths.relative("/elsewhere/x")
    assert hive_node("/root/history/project=p/run_id=0042/segment=3/part-x.parquet") == ("0042", 3)
    assert pack_relative("/a/packs/b/packs/project=p/pack-1.parquet") == "packs/project=p/pack-1.parquet"
    assert split_meta_path("/root/runs/p/r/meta/run.json") == ("p", "r", "run.json")


def test_manifests_read_old_documents_leniently_and_name_the_file_when_broken():
    state = StateDoc.from_json({"run_id": "a", "state": "finished", "unknown_later_field": 1})
    assert state.segment == 0 and state.summary == {} and state.state == "finished"
    assert StateDoc.from_json(state.to_json()) == state
    with pytest.raises(RunlakeError, match="seg.json"):
        SegmentDoc.from_json({"segment": 0}, "seg.json")
    doc = SegmentDoc.from_json(
        {
            "run_id": "a",
            "segment": 1,
            "project": "p",
            "kind": "rewind",
            "parent_run_id": "a",
            "parent_segment": 0,
            "cutoff": 9,
        }
    )
    assert doc.parent == ("a", 0)
    pack = PackManifest.from_json(
        {
            "pack": "pack-1.parquet",
            "project": "p",
            "members": [{"run_id": "a", "segment": 0, "step_lo": 0, "step_hi": 9}],
        }
    )
    assert pack.members[0].step_hi == 9 and pack.to_json()["members"][0]["run_id"] == "a"


def test_a_live_pid_on_this_host_is_alive_whatever_its_heartbeat_says():
    me = writer_identity()
    assert holder_alive(me, beat=0.0, stale_after=1.0)  # stalled, but alive: never taken over
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # killed below
    try:
        doc = {"host": HOST, "pid": child.pid, "pid_start": process_start(child.pid)}
        assert holder_alive(doc, beat=0.0, stale_after=1.0)
        assert not holder_alive({**doc, "pid_start": "reused"}, beat=1e18, stale_after=1.0)
    finally:
        child.kill()
        child.wait()
    assert not holder_alive(doc, beat=1e18, stale_after=1.0)


def test_on_another_host_only_the_heartbeat_tells():
    doc = {"host": "elsewhere", "pid": os.getpid(), "pid_start": "x"}
    assert holder_alive(doc, beat=100.0, stale_after=10.0, now=105.0)
    assert not holder_alive(doc, beat=100.0, stale_after=10.0, now=111.0)


def test_a_pid_in_another_pid_namespace_is_judged_by_its_heartbeat():
    from runlake.store.liveness import PID_NS

    me = writer_identity()
    assert me["pid_start"].endswith(f"@{PID_NS}")
    start = me["pid_start"].split("@")[0]
    other_ns = {**me, "pid_start": f"{start}@1"}  # a container sharing this hostname
    assert not holder_alive(other_ns, beat=100.0, stale_after=10.0, now=200.0)
    assert holder_alive(other_ns, beat=195.0, stale_after=10.0, now=200.0)
    legacy = {**me, "pid_start": start}  # written before namespaces were recorded
    assert holder_alive(legacy, beat=0.0, stale_after=1.0)
