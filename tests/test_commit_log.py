"""#28: the commit log and its checkpoints: a read costs O(what changed), not O(runs).

Counted on the S3 API (moto's server on 127.0.0.1; botocore's events count every request the
process sends), at 300 and at 1,200 runs: the counts must not grow with the root. The roots are
built on a local disk, compacted there (which writes the checkpoint) and uploaded: a PUT to moto
costs ~10 ms, and building 1,200 runs through it would take minutes; what is counted is what
readers send afterwards. Then the safety cases: a writer killed between a manifest and its entry,
a reader racing a checkpoint write, a corrupt checkpoint, an old root without a log, retention.
"""

from __future__ import annotations

import collections
import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import wait_for

import runlake
from runlake.read import checkpoint

WINDOW = 1.0  # $RUNLAKE_LOG_WINDOW for these tests: entries older than it are settled


@contextlib.contextmanager
def counted(fs) -> Iterator[collections.Counter]:
    """Every S3 request this process sends inside the block, by operation."""
    counts: collections.Counter = collections.Counter()

    def hook(model, **_):
        counts[model.name] += 1

    fs.connect()
    fs.s3.meta.events.register("before-call.s3", hook)
    try:
        yield counts
    finally:
        fs.s3.meta.events.unregister("before-call.s3", hook)


def _build(local: str, runs: int) -> None:
    """`runs` finished runs of two steps each, compacted (packs, a checkpoint), settled."""
    lake = runlake.Lake(local)
    for i in range(runs):
        run = lake.init("big", id=f"r{i:05d}")
        run.log({"loss": float(i)})
        run.log({"loss": float(i) / 2})
        run.finish()
    last = time.time()
    wait_for(lambda: time.time() > last + 2 * WINDOW, "the runs' log entries to be older than the window")
    lake.compact(progress=False, grace=0)
    lake.close()


def _upload(fs, local: str, remote: str) -> None:
    files = [
        p for p in glob.glob(f"{local}/**", recursive=True) if os.path.isfile(p) and "/_catalog/" not in p
    ]
    fs.put(files, [f"{remote}/{os.path.relpath(p, local)}" for p in files], batch_size=256)


def _counts_at(size: int, tmp_path: Path, s3_endpoint: str, monkeypatch) -> dict[str, collections.Counter]:
    import s3fs

    local = str(tmp_path / f"local{size}")
    _build(local, size)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint})
    remote = f"runlake-tests/log-{size}-{os.getpid()}-{time.time_ns()}"
    _upload(fs, local, remote)
    monkeypatch.setenv("RUNLAKE_CACHE_DIR", str(tmp_path / f"cache{size}"))  # a new reader's machine
    out: dict[str, collections.Counter] = {}
    lake = runlake.Lake(f"s3://{remote}")
    fs = lake.storage.fs
    with counted(fs) as out["first runs() of a new reader"]:
        assert lake.runs().height == size
    wait_for(
        lambda: time.time_ns() > lake.reader.catalog.tail.state.position_ns + 2 * WINDOW * 1e9, "the window"
    )
    with counted(fs) as out["warm runs(), nothing new"]:
        assert lake.runs().height == size
    with counted(fs) as out["history() of one run"]:
        frame = lake.history("r00007")
        assert frame["loss"].to_list() == [7.0, 3.5]
    writer = runlake.Lake(f"s3://{remote}")
    for i in range(10):
        run = writer.init("big", id=f"new{i}")
        run.log({"loss": 1.0})
        run.finish()
    writer.close()
    with counted(fs) as out["warm runs() after 10 new runs"]:
        assert lake.runs().height == size + 10
    lake.close()
    return out


@pytest.mark.slow
def test_reads_on_s3_cost_what_changed_not_how_many_runs(tmp_path, s3_endpoint, monkeypatch):
    monkeypatch.setenv("RUNLAKE_LOG_WINDOW", str(WINDOW))
    monkeypatch.setenv(
        "RUNLAKE_STORAGE_OPTIONS", json.dumps({"client_kwargs": {"endpoint_url": s3_endpoint}})
    )
    small = _counts_at(300, tmp_path, s3_endpoint, monkeypatch)
    big = _counts_at(1200, tmp_path, s3_endpoint, monkeypatch)
    total = {k: (sum(small[k].values()), sum(big[k].values())) for k in small}
    print({k: (dict(small[k]), dict(big[k])) for k in small})
    assert total["warm runs(), nothing new"][1] <= 3
    assert big["history() of one run"]["ListObjectsV2"] + big["history() of one run"]["HeadObject"] <= 3 + 1
    assert sum(big["history() of one run"].values()) <= 3 + 2  # the run's one pack: a HEAD and a GET
    assert total["first runs() of a new reader"][1] <= 50
    assert total["warm runs() after 10 new runs"][1] <= 40
    for name in total:  # equal at both sizes: O(changes), not O(runs)
        for op in ("GetObject", "HeadObject"):
            assert small[name][op] == big[name][op], (name, small[name], big[name])
        # (one more LIST when the window straddles the hour: the log's buckets are hours)
        assert abs(small[name]["ListObjectsV2"] - big[name]["ListObjectsV2"]) <= 1, (
            name,
            small[name],
            big[name],
        )
    assert not big["warm runs(), nothing new"]["GetObject"]


# ---- correctness ----------------------------------------------------------------------------
_KILLED_BEFORE_ENTRY = """
import os, signal, sys
import runlake
from runlake.store.journal import Journal

run = runlake.init("p", id="victim", root=sys.argv[1])
run.log({"x": 1.0})
run.flush()
real = Journal._write

def die_after_the_manifest(self, changes):
    if any(c["path"].endswith("/state.json") and c.get("doc", {}).get("state") == "finished" for c in changes):
        os.kill(os.getpid(), signal.SIGKILL)  # state.json is written; its entry never is
    return real(self, changes)

Journal._write = die_after_the_manifest
run.log({"x": 2.0})
run.finish()
"""


@pytest.mark.slow
def test_a_writer_killed_between_a_manifest_and_its_entry_is_found_and_repaired(tmp_path):
    root = str(tmp_path / "root")
    runlake.init("p", id="other", root=root).finish()
    reader, follower = runlake.Lake(root), runlake.Lake(root)
    for lake in (reader, follower):
        assert lake.runs()["run_id"].to_list() == ["other"]  # following the log from here
    proc = subprocess.run([sys.executable, "-c", _KILLED_BEFORE_ENTRY, root], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    state = json.loads((tmp_path / "root/runs/p/victim/meta/state.json").read_text())
    assert state["state"] == "finished"  # the manifest was written, its entry never was
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # the log never said finished: a follower sees a run whose writer died
        for lake in (reader, follower):
            runs = lake.runs()
            assert sorted(runs["run_id"].to_list()) == ["other", "victim"]
            assert runs.filter(runs["run_id"] == "victim")["state"].to_list() == ["crashed"]
    with runlake.Lake(root) as fresh:  # a new process's doctor too (it follows the log first)
        rows = [r["path"] for r in fresh.doctor().iter_rows(named=True) if "commit-log" in r["problem"]]
        assert rows == [os.path.join(root, "runs/p/victim/meta/state.json")]
    report = reader.doctor()  # a full listing: what the log lacks is found, read and reported
    assert [r["path"] for r in report.iter_rows(named=True) if "commit-log" in r["problem"]] == [
        os.path.join(root, "runs/p/victim/meta/state.json")
    ]
    runs = reader.runs()
    assert runs.filter(runs["run_id"] == "victim")["state"].to_list() == ["finished"]
    assert reader.history("victim")["x"].to_list() == [1.0, 2.0]
    fixed = reader.doctor(fix=True)
    assert [r["action"] for r in fixed.iter_rows(named=True)] == ["added to the commit log"]
    runs = follower.runs()  # no full listing: the entry doctor added is what it follows
    assert runs.filter(runs["run_id"] == "victim")["state"].to_list() == ["finished"]
    assert follower.history("victim")["x"].to_list() == [1.0, 2.0]
    assert reader.doctor().height == 0  # nothing missing any more
    follower.close()
    reader.close()


def test_a_corrupt_checkpoint_is_ignored_and_the_previous_one_used(tmp_path):
    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    for i in range(5):
        run = lake.init("p", id=f"r{i}")
        run.log({"x": float(i)})
        run.finish()
    lake.compact(progress=False)  # checkpoint 1
    lake.init("p", id="late").finish()
    newer = checkpoint.write(lake.reader.refresh())  # checkpoint 2, which we damage
    lake.close()
    shutil.rmtree(os.path.join(root, "_catalog"))  # a new machine: no copy of the catalog
    table = Path(newer) / "run_meta.parquet"
    table.write_bytes(table.read_bytes()[:-20] + b"\0" * 20)
    with pytest.warns(RuntimeWarning, match=r"run_meta.parquet .*does not match.*previous checkpoint"):
        fresh = runlake.Lake(root)
        assert sorted(fresh.runs()["run_id"].to_list()) == ["late", "r0", "r1", "r2", "r3", "r4"]
    assert fresh.history("r3")["x"].to_list() == [3.0]
    fresh.close()


@pytest.mark.slow
def test_a_reader_racing_a_checkpoint_write_reads_a_whole_one(tmp_path, monkeypatch):
    """Checkpoints are written (tables first, the stamp last) while new readers start: every
    reader sees every run, whichever checkpoint it found (a half-written one has no stamp)."""
    root = str(tmp_path / "root")
    monkeypatch.setenv("RUNLAKE_RELIST_EVERY", "0")
    lake = runlake.Lake(root)
    for i in range(20):
        run = lake.init("p", id=f"r{i:02d}")
        run.log({"x": float(i)})
        run.finish()
    lake.compact(progress=False)
    done = threading.Event()
    errors: list[BaseException] = []

    def write_checkpoints() -> None:
        try:
            while not done.is_set():
                checkpoint.write(lake.reader.refresh())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=write_checkpoints)
    thread.start()
    try:
        for _ in range(15):
            reader = runlake.Lake(root)
            reader.reader.catalog._start_relist = False  # read through the checkpoint, as a remote reader
            assert reader.runs().height == 20
            assert reader.history("r11")["x"].to_list() == [11.0]
            reader.close()
            os.remove(os.path.join(root, "_catalog", "catalog.duckdb"))  # the next one starts cold
    finally:
        done.set()
        thread.join()
        lake.close()
    assert not errors
    half = Path(checkpoint.newest(lake.storage)[0])
    (half / "checkpoint.json").unlink()  # as if its writer were killed before the stamp
    reader = runlake.Lake(root)
    reader.reader.catalog._start_relist = False
    assert reader.runs().height == 20
    reader.close()


@pytest.mark.slow
def test_an_old_root_without_a_log_reads_by_listing_and_upgrades(tmp_path):
    root = tmp_path / "root"
    lake = runlake.Lake(str(root))
    for i in range(3):
        run = lake.init("p", id=f"r{i}")
        run.log({"x": float(i)})
        run.finish()
    lake.close()
    shutil.rmtree(root / "_log")  # as a release before the log wrote it
    shutil.rmtree(root / "_catalog", ignore_errors=True)
    old = runlake.Lake(str(root))
    assert old.runs().height == 3
    assert old.reader.catalog.tail.state.mode == "list"  # no origin: listed whole, as before
    old.close()
    out = subprocess.run(
        [sys.executable, "-m", "runlake.cli", "--root", str(root), "catalog", "upgrade"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "checkpoint of 3 runs" in out.stdout
    assert (root / "_log" / "origin.json").exists() and checkpoint.newest(runlake.Lake(str(root)).storage)
    shutil.rmtree(root / "_catalog")
    new = runlake.Lake(str(root))
    assert new.runs().height == 3 and new.reader.catalog.tail.state.mode == "log"
    run = new.init("p", id="after")
    run.log({"x": 9.0})
    run.finish()
    assert new.history("after")["x"].to_list() == [9.0]
    new.close()


@pytest.mark.slow
def test_compaction_removes_log_entries_a_checkpoint_made_old(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNLAKE_LOG_GRACE", "0")
    monkeypatch.setenv("RUNLAKE_LOG_WINDOW", str(WINDOW))
    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    for i in range(4):
        run = lake.init("p", id=f"r{i}")
        run.log({"x": float(i)})
        run.finish()
    before = glob.glob(f"{root}/_log/2*/**/*.json", recursive=True)
    last = time.time()
    wait_for(lambda: time.time() > last + 2 * WINDOW, "the entries to be older than the window")
    lake.compact(progress=False, grace=0)
    after = glob.glob(f"{root}/_log/2*/**/*.json", recursive=True)
    assert before and not set(before) & set(after)  # older than the checkpoint: gone
    lake.compact(progress=False, grace=0)
    lake.compact(progress=False, grace=0)
    lake.compact(progress=False, grace=0)
    assert len(checkpoint.newest(lake.storage)) == checkpoint.KEEP
    lake.close()
    fresh = runlake.Lake(root)
    assert fresh.runs().height == 4 and fresh.history("r2")["x"].to_list() == [2.0]
    fresh.close()


def test_a_running_local_reader_lists_no_run_directory(tmp_path, monkeypatch):
    """The local backend's refresh is O(changes) too: a warm reader reads the log's newest
    bucket, not every run's directory."""
    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    for i in range(30):
        lake.init("p", id=f"r{i:02d}").finish()
    assert lake.runs().height == 30
    listed: list[str] = []
    real = os.scandir

    def spy(path="."):
        listed.append(str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", spy)
    lake.init("p", id="new").finish()
    assert lake.runs().height == 31
    monkeypatch.setattr(os, "scandir", real)
    assert not [p for p in listed if "/runs/" in p or p.endswith("/runs")], listed
    lake.close()


def test_a_refresh_that_follows_the_log_compares_only_what_changed(tmp_path, monkeypatch):
    """In Python too a refresh costs what changed: a warm reader compares the manifests the
    log's new entries named, not every manifest of the root (at 100,000 runs that comparison
    alone took a second, every second, in the web app). Counted at two sizes: the same."""
    calls: list[str] = []

    class Seen(dict):  # the manifests a catalog has folded: every look-up counted
        def get(self, path, *default):
            calls.append(path)
            return super().get(path, *default)

        def __contains__(self, path):
            calls.append(path)
            return super().__contains__(path)

    def compared(runs: int) -> int:
        root = str(tmp_path / f"root{runs}")
        lake = runlake.Lake(root)
        for i in range(runs):
            lake.init("p", id=f"r{i:04d}").finish()
        assert lake.runs().height == runs
        lake.runs()  # a second refresh: the first after a full listing
        catalog = lake.reader.catalog
        catalog.state.seen = Seen(catalog.state.seen)
        calls.clear()
        lake.init("p", id="new").finish()
        assert lake.runs().height == runs + 1  # the new run is seen
        lake.close()
        return len(calls)

    small, big = compared(20), compared(200)
    assert small == big and big < 40, (small, big)


def test_log_entries_carry_what_a_reader_needs_and_only_valid_paths_are_applied(tmp_path):
    root = tmp_path / "root"
    lake = runlake.Lake(str(root))
    run = lake.init("p", id="a", config={"lr": 0.1})
    run.log({"x": 1.0})
    run.finish()
    assert lake.runs().height == 1
    entries = sorted(glob.glob(f"{root}/_log/2*/**/*.json", recursive=True))
    changes = [c for e in entries for c in json.loads(Path(e).read_text())["changes"]]
    state = [c for c in changes if c["path"] == "runs/p/a/meta/state.json"][-1]
    assert state["doc"]["config"]["lr"] == 0.1 and state["doc"]["state"] == "finished"
    assert any(c["op"] == "part" and c["path"].startswith("history/project=p/run_id=a/") for c in changes)
    # an entry naming a path outside the root's layout is skipped with a warning, never read
    hostile = Path(entries[-1]).with_name(f"{time.time_ns():019d}-{'e' * 12}-00000001.json")
    hostile.write_text(
        json.dumps({"v": 1, "changes": [{"op": "put", "path": "runs/../../etc/meta/x.json", "doc": {}}]})
    )
    with pytest.warns(RuntimeWarning, match="invalid path"):
        assert lake.runs().height == 1
    lake.close()


@pytest.mark.slow
def test_a_reader_away_longer_than_the_logs_retention_starts_from_a_newer_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNLAKE_LOG_WINDOW", str(WINDOW))
    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    lake.init("p", id="before").finish()
    assert lake.runs().height == 1
    lake.close()  # its copy of the catalog remembers its position in the log
    writer = runlake.Lake(root)
    for i in range(3):
        writer.init("p", id=f"while-away-{i}").finish()
    last = time.time()
    wait_for(lambda: time.time() > last + 2 * WINDOW, "the entries to be older than the window")
    monkeypatch.setenv("RUNLAKE_LOG_GRACE", "0")
    writer.compact(progress=False, grace=0)  # the entries after its position are removed
    writer.close()
    back = runlake.Lake(root)
    back.reader.catalog._start_relist = False  # only the log and checkpoints, as on object storage
    assert sorted(back.runs()["run_id"].to_list()) == [
        "before",
        "while-away-0",
        "while-away-1",
        "while-away-2",
    ]
    back.close()
