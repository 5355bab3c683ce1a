"""The chart data behind `runlake ui` (#13), without a browser: a key reduced where its rows
are (DuckDB keeps each step bucket's first, last, lowest and highest point) and again per
pixel bucket, checked against the key's full history read by `history()`: no spike lost, the
first and last points kept, a zoom at full resolution, the inherited part apart from the own
part, text and NaN points, the same answer before and after compaction and on every backend."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from trees import Branch, grow

import runlake
from runlake.read.charts import downsample
from runlake.ui import api

STEPS = 30_000


def _fresh(lake) -> None:
    lake.charts.clear()


def _walk(seed: int, n: int) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).normal(size=n))


def _points(part: dict) -> list[tuple[float, float | None]]:
    return list(zip(part["x"], part["y"], strict=True))


def _m4_reference(x: np.ndarray, y: np.ndarray, buckets: int) -> list[tuple[float, float, float, float]]:
    """Per pixel bucket of the key's own x range: (min, max, first y, last y)."""
    lo, hi = x[0], x[-1]
    width = (hi - lo) / buckets
    bucket = np.minimum(((x - lo) / width).astype(int), buckets - 1)
    out = []
    for b in np.unique(bucket):
        ys = y[bucket == b]
        out.append((ys.min(), ys.max(), ys[0], ys[-1]))
    return out


@pytest.fixture
def spiky(root):
    lake = runlake.Lake(root)
    values = _walk(1, STEPS)
    values[12_345] = 1e6  # a spike up and one down: neither may vanish
    values[23_456] = -1e6
    run = lake.init("charts", id="spiky")
    for step, value in enumerate(values):
        run.log({"loss": float(value)}, step=step)
    run.finish()
    yield lake, values
    lake.close()


def test_a_big_key_keeps_its_spikes_its_ends_and_every_buckets_extremes(spiky):
    lake, values = spiky
    _fresh(lake)
    out = api.series(lake, "spiky", "loss", buckets=300)
    assert out["points"] == STEPS and out["own_from"] is None and out["inherited"]["x"] == []
    own = _points(out["own"])
    assert 300 <= len(own) <= 4 * 300 and out["shown"] == len(own)
    assert (12_345.0, 1e6) in own and (23_456.0, -1e6) in own
    assert own[0] == (0.0, values[0]) and own[-1] == (STEPS - 1.0, values[-1])
    xs = [x for x, _ in own]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    # every point drawn is a point of the history, and each pixel bucket's min and max are drawn
    for x, y in own:
        assert values[int(x)] == y
    drawn = np.array([y for _, y in own])
    drawn_x = np.array(xs)
    edges = np.linspace(0, STEPS - 1, 301)
    for (lo_b, hi_b, _, _), a, b in zip(
        _m4_reference(np.arange(STEPS, dtype=float), values, 300), edges[:-1], edges[1:], strict=False
    ):
        inside = drawn[(drawn_x >= math.floor(a)) & (drawn_x <= math.ceil(b))]
        assert lo_b in inside and hi_b in inside


def test_a_zoom_is_read_at_full_resolution(spiky):
    lake, values = spiky
    _fresh(lake)
    out = api.series(lake, "spiky", "loss", buckets=300, lo=10_000.5, hi=10_999.2)
    assert out["points"] == STEPS  # the key's total, not the window's
    assert _points(out["own"]) == [(float(s), values[s]) for s in range(10_001, 11_000)]
    wide = api.series(lake, "spiky", "loss", buckets=100, lo=5_000, hi=15_000)
    xs = wide["own"]["x"]
    assert xs[0] == 5_000 and xs[-1] == 15_000 and len(xs) <= 400 and (12_345.0, 1e6) in _points(wide["own"])
    # after the whole chart (its total known), a zoom reads only the files of its window: same answer
    _fresh(lake)
    api.series(lake, "spiky", "loss", buckets=300)
    assert api.series(lake, "spiky", "loss", buckets=100, lo=5_000, hi=15_000) == wide
    assert _points(
        api.series(lake, "spiky", "loss", buckets=300, lo=10_000.5, hi=10_999.2)["own"]
    ) == _points(out["own"])


def test_compaction_changes_nothing_drawn(spiky):
    lake, _ = spiky
    _fresh(lake)
    before = api.series(lake, "spiky", "loss", buckets=250)
    lake.compact()
    _fresh(lake)
    after = api.series(lake, "spiky", "loss", buckets=250)
    assert after == before


def _parent_and_fork(tmp_path, parent, child, steps, cut, until):
    """A parent logging m = step for `steps` steps, and a child forked at `cut` logging
    m = -step from cut + 1 until `until`."""
    lake = runlake.Lake(str(tmp_path / "root"))
    grow(
        lake,
        "charts",
        Branch(parent, range(steps), lambda step: {"m": float(step)}),
        Branch(
            child, range(cut + 1, until), lambda step: {"m": -float(step)}, fork_from=f"{parent}?_step={cut}"
        ),
    )
    return lake


def test_a_fork_is_drawn_as_its_parents_part_then_its_own(tmp_path):
    lake = _parent_and_fork(tmp_path, "parent", "child", 5_000, 2_999, 6_000)
    _fresh(lake)
    out = api.series(lake, "child", "m", buckets=200)
    assert out["points"] == 6_000 and out["own_from"] == 2_999
    inherited, own = _points(out["inherited"]), _points(out["own"])
    assert inherited[0] == (0.0, 0.0) and inherited[-1] == (2_999.0, 2_999.0)
    assert own[0] == (3_000.0, -3_000.0) and own[-1] == (5_999.0, -5_999.0)
    assert all(x <= 2_999 for x, _ in inherited) and all(x >= 3_000 for x, _ in own)
    assert [(m["kind"], m["step"], m["from"], m["x"], m["label"]) for m in out["markers"]] == [
        ("fork", 2_999, "parent", 2_999.0, "fork @2999 ← parent")
    ]
    # the page's prefetch (one scan for every key, finer step buckets) draws the same ends,
    # markers and counts, and exactly what M4 over every point draws
    _fresh(lake)
    lake.charts.prefetch("child", ["m"])
    pre = api.series(lake, "child", "m", buckets=200)
    for part in ("inherited", "own"):
        assert (
            _points(pre[part])[0] == _points(out[part])[0]
            and _points(pre[part])[-1] == _points(out[part])[-1]
        )
        steps = np.arange(3_000, dtype=float) + (3_000 if part == "own" else 0)
        x, y = downsample(steps, steps * (1 if part == "inherited" else -1), 200)
        assert _points(pre[part]) == list(zip(x.tolist(), y.tolist(), strict=True))
    assert (pre["points"], pre["markers"], pre["own_from"]) == (
        out["points"],
        out["markers"],
        out["own_from"],
    )


def test_text_and_nan_points_are_never_a_min_or_a_max(tmp_path):
    lake = runlake.Lake(str(tmp_path / "root"))
    run = lake.init("charts", id="mixed")
    for step in range(2_000):
        value: object = float(step % 7)
        if step % 100 == 50:
            value = "diverged"
        elif step % 100 == 60:
            value = float("nan")
        run.log({"m": value}, step=step)
    run.finish()
    _fresh(lake)
    out = api.series(lake, "mixed", "m", buckets=20)
    assert out["points"] == 2_000
    ys = [y for _, y in _points(out["own"])]
    numbers = [y for y in ys if y is not None]
    assert min(numbers) == 0.0 and max(numbers) == 6.0  # neither NaN nor text won a bucket
    # a window small enough is shown whole: text and NaN steps have no value
    window = dict(_points(api.series(lake, "mixed", "m", buckets=20, lo=40, hi=70)["own"]))
    assert sorted(window) == list(range(40, 71))
    assert window[50] is None and window[60] is None and window[49] == 0.0


def test_wall_time_and_a_missing_key(spiky):
    lake, _ = spiky
    _fresh(lake)
    out = api.series(lake, "spiky", "loss", x="wall", buckets=100)
    assert out["points"] == STEPS and out["x_label"] == "wall"
    # buckets of wall time: as many as the logging's pace filled (a busy machine logs in bursts)
    history = lake.history("spiky", ["loss"])
    x, y = history["_timestamp"].to_numpy(), history["loss"].to_numpy()
    edges = x[0] + (x[-1] - x[0]) / 100 * np.arange(1, 100)  # 100 equal spans of wall time
    bucket = np.searchsorted(edges, x, side="right")
    filled = np.unique(bucket)
    assert len(filled) <= out["shown"] <= 4 * len(filled)
    drawn = set(out["own"]["y"])
    for b in filled:  # each filled bucket's lowest and highest point is drawn
        assert y[bucket == b].min() in drawn and y[bucket == b].max() in drawn
    none = api.series(lake, "spiky", "nope", buckets=100)
    assert none["points"] == 0 and none["shown"] == 0


def test_a_key_logged_over_a_small_part_of_the_run_keeps_its_resolution(tmp_path):
    lake = runlake.Lake(str(tmp_path / "root"))
    run = lake.init("charts", id="late")
    for step in range(20_000):
        row = {"a": float(step)}
        if step >= 19_000:
            row["b"] = float(np.sin(step / 10))
        run.log(row, step=step)
    run.finish()
    _fresh(lake)
    out = api.series(lake, "late", "b", buckets=100)
    assert out["points"] == 1_000
    xs = out["own"]["x"]
    assert xs[0] == 19_000 and xs[-1] == 19_999 and len(xs) >= 200  # ~4 a bucket, not 4 a fifth of it


def test_compare_by_wall_time_and_zoomed(tmp_path):
    lake = _parent_and_fork(tmp_path, "a", "b", 3_000, 999, 2_000)
    whole = api.compare(lake, ["a", "b"], "m", buckets=100)
    assert whole["x_label"] == "step" and len(whole["lines"]) == 2
    assert [m["x"] for m in whole["markers"]] == [999]
    zoomed = api.compare(lake, ["a", "b"], "m", buckets=100, lo=1_500, hi=1_600)
    for line in zoomed["lines"]:  # few enough points: every one of them
        assert line["x"] == [float(s) for s in range(1_500, 1_601)]
    wall = api.compare(lake, ["a", "b"], "m", buckets=100, x="wall")
    assert wall["x_label"] == "wall"
    frame = lake.history("a", ["m"])
    stamps = frame["_timestamp"].to_list()
    assert wall["lines"][0]["x"][0] == stamps[0] and wall["lines"][0]["x"][-1] == stamps[-1]


def test_what_changed_since_never_skips_a_change_a_stale_catalog_did_not_show(tmp_path):
    """The UI's catalog is kept up to a second old (longer while a refresh runs under load): a
    poll's `now` (the next poll's `since`) is when that catalog was listed, so a change it did
    not show yet comes with a later poll."""
    root = str(tmp_path / "root")
    runlake.init("live", root=root, id="before").finish()
    lake = runlake.Lake(root)
    lake.reader.refresh_every = 3600.0  # the catalog is refreshed once here, then kept
    first = api.changes(lake, 0.0)
    assert [r["run_id"] for r in first["runs"]] == ["before"]
    run = runlake.init("live", root=root, id="after")
    run.log({"loss": 1.0})
    run.finish()
    finished = time.time()
    while time.time() < finished + 1.5:  # past the poll's second of slack
        time.sleep(0.1)
    stale = api.changes(lake, first["now"])
    assert "after" not in [r["run_id"] for r in stale["runs"]]  # this catalog has not seen it
    lake.reader.refresh(force=True)
    later = api.changes(lake, stale["now"])
    found = {r["run_id"]: r for r in later["runs"]}  # (a run may come twice: harmless)
    assert found["after"]["state"] == "finished"
    lake.close()


def test_a_rewound_runs_earlier_steps_are_its_own_not_inherited(tmp_path):
    """#29: on a rewound run's page its own earlier steps were drawn as "inherited"."""
    lake = runlake.Lake(str(tmp_path / "root"))
    grow(
        lake,
        "charts",
        Branch("rw", range(100), lambda step: {"m": float(step)}),
        Branch(None, range(51, 80), lambda step: {"m": -float(step)}, resume_from="rw?_step=50"),
    )
    _fresh(lake)
    out = api.series(lake, "rw", "m", buckets=200)
    assert out["own_from"] is None and out["inherited"]["x"] == [] and out["points"] == 80
    assert [m["kind"] for m in out["markers"]] == ["rewind"]
    # a fork of it: the parent's part (both of its segments) is inherited, the fork's own is not
    grow(lake, "charts", Branch("fk", range(70, 90), lambda step: {"m": 1000.0}, fork_from="rw?_step=69"))
    _fresh(lake)
    fork = api.series(lake, "fk", "m", buckets=200)
    assert fork["own_from"] == 69 and _points(fork["inherited"])[-1] == (69.0, -69.0)


def test_a_workspace_panel_puts_every_run_on_one_grid_with_its_extremes(tmp_path):
    """#29: a workspace panel is each run's effective history on one x grid shared by all runs
    (per bucket each run's lowest and highest point, in the order they came): a spike is never
    lost, every value drawn is the run's own value in that bucket, a fork's inherited part is
    apart from its own, a zoom is shown point by point; the workspace's read-ahead (one scan
    per run for all its keys) draws the same extremes."""
    from runlake.ui import panels

    lake = _parent_and_fork(tmp_path, "a", "child", 10_000, 4_999, 8_000)
    run = lake.init("charts", id="b")
    walk = _walk(3, 10_000)
    walk[4_321] = -1e6  # a spike down
    for step, value in enumerate(walk):
        run.log({"m": float(value)}, step=step)
    run.finish()
    truth = {"a": np.arange(10_000, dtype=float), "b": walk}

    def check(out, buckets):
        grid = np.asarray(out["x"])
        assert len(grid) == 2 * buckets and bool(np.all(np.diff(grid) > 0))
        width = (grid[-1] - grid[0]) / (2 * buckets - 1) * 2
        lines = {(line["run_id"], line["part"]): np.asarray(line["y"], dtype=float) for line in out["lines"]}
        assert sorted(lines) == [("a", "own"), ("b", "own"), ("child", "inherited"), ("child", "own")]
        for (run_id, part), ys in lines.items():
            shown = ~np.isnan(ys)
            assert 0 < shown.sum() <= 2 * buckets
            steps = np.arange(10_000) if run_id != "child" else np.arange(8_000)
            values = truth.get(run_id, np.where(steps <= 4_999, steps, -steps).astype(float))
            mine = (
                (steps <= 4_999)
                if part == "inherited"
                else (steps > 4_999 if run_id == "child" else steps >= 0)
            )
            for x, y in zip(grid[shown], ys[shown], strict=True):  # a value of that run, near x
                near = mine & (np.abs(steps - x) <= width)
                assert y in set(values[near].tolist()), (run_id, part, x, y)
            assert ys[shown].max() == values[mine].max() and ys[shown].min() == values[mine].min()
        assert lines[("b", "own")][~np.isnan(lines[("b", "own")])].min() == -1e6  # the spike
        return lines

    _fresh(lake)
    out = panels.panel(lake, ["a", "b", "child"], "m", buckets=100)
    cold = check(out, 100)
    assert [(m["kind"], m["step"], m["run_id"], m["label"]) for m in out["markers"]] == [
        ("fork", 4_999, "child", "fork @4999 ← a")
    ]
    # read ahead as a workspace opens (each run's keys in one scan): the same extremes
    _fresh(lake)
    api.workspace_runs(lake, ["a", "b", "child"])
    warm = check(panels.panel(lake, ["a", "b", "child"], "m", buckets=100), 100)
    for line in cold:
        assert np.nanmax(cold[line]) == np.nanmax(warm[line]) and np.nanmin(cold[line]) == np.nanmin(
            warm[line]
        )
    # a zoom with few points: every point as it is
    zoom = panels.panel(lake, ["a", "b"], "m", buckets=100, lo=4_300, hi=4_340)
    assert zoom["x"] == list(range(4_300, 4_341))
    by_run = {line["run_id"]: line["y"] for line in zoom["lines"]}
    assert by_run["a"] == [float(s) for s in range(4_300, 4_341)]
    assert by_run["b"][21] == -1e6
    # relative time on x: the same runs, x in seconds since each run began
    timed = panels.panel(lake, ["a", "b"], "m", buckets=50, x="_runtime")
    assert timed["x_label"] == "_runtime" and len(timed["lines"]) == 2 and timed["x"][0] >= 0
    for bad in ([], [f"r{i}" for i in range(panels.PANEL_RUNS + 1)]):
        with pytest.raises(ValueError):
            panels.panel(lake, bad, "m")
    lake.close()
