"""Chart data, one home for `runlake.plot` and the web app: a metric of several runs resolved
as a fork tree (each lineage node drawn once, joined to its parent's point, fork and rewind
markers, a define_metric step metric as the x-axis), M4 downsampling, and the web app's
per-run chart reads with their bounded caches (`Charts`, owned by a Lake)."""

from __future__ import annotations

import json
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..store.metric_rules import Metric, matching
from ..store.names import check_name
from .lineage import own_start
from .reader import Reader

# Colour-blind-safe (Okabe-Ito first, then tab10): one colour per branch.
PALETTE = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
]


@dataclass
class Line:
    """One branch: the own rows of one node (run_id, segment), joined to its parent's point."""

    label: str
    run_id: str
    segment: int
    steps: list[float]  # steps, or the step metric's values
    values: list[float]
    color: str
    dash: str = "-"  # a line style once the palette is used up


@dataclass
class Marker:
    """A fork or rewind point on the chart."""

    kind: str
    step: float  # the fork step (or the step metric's value there)
    value: float | None
    label: str
    color: str
    run_id: str = ""
    segment: int = 0


@dataclass
class Plot:
    key: str
    lines: list[Line] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    path: str | None = None
    figure: Any = None
    x_key: str = "step"  # the x-axis: the step, or the metric's define_metric step_metric


LINE_STYLES = ["-", "--", ":", "-."]  # after the palette: colours again, with another style
MAX_LABELS = 6  # more fork points than this: markers are numbered, the legend says which


def short(run_id: str, width: int = 24) -> str:
    """A long run id shortened in the middle (its start and end stay recognisable)."""
    if len(run_id) <= width:
        return run_id
    keep = (width - 1) // 2
    return f"{run_id[:keep]}…{run_id[-keep:]}"


def shortener(run_ids: Sequence[str], width: int = 24) -> Callable[[str], str]:
    """Labels for a set of long run ids: the part they share at the start and the end is
    elided, so what tells them apart stays (PBT members named `...-member-0007-...`)."""
    ids = list(dict.fromkeys(run_ids))
    if all(len(r) <= width for r in ids) or len(ids) < 2:
        return lambda r: short(r, width)
    prefix = os.path.commonprefix(ids)
    suffix = os.path.commonprefix([r[::-1] for r in ids])[::-1]
    # cut at a separator, so a label keeps whole words ("…0007…", not "…07…")
    prefix = prefix[: max((prefix.rfind(c) + 1 for c in "-_./"), default=0)]
    suffix = suffix[min((i for i, c in enumerate(suffix) if c in "-_./"), default=len(suffix)) :]
    head = min(len(prefix), max(0, min(len(r) for r in ids) - len(suffix)))

    def label(run_id: str) -> str:
        middle = run_id[head : len(run_id) - len(suffix)] if len(run_id) > head + len(suffix) else run_id
        text = ("…" if head else "") + middle + ("…" if suffix else "")
        return short(text, width)

    return label


def build(reader: Reader, run_ids: Sequence[str], key: str, x: str | None = None) -> Plot:
    """Resolve the branches to draw: every node of the runs' lineages, each drawn once, from
    its own rows (one refresh and one scan for the whole chart). The x-axis: `x` = "step",
    "wall" (each point's `_timestamp`) or a key (its value at or before each step); None: the
    key's define_metric step metric if a run has one, else the step."""
    if isinstance(run_ids, str):
        run_ids = [run_ids]
    if not run_ids:
        raise ValueError("plot() needs at least one run id")
    for run_id in run_ids:
        check_name(run_id, "run id")
    nodes = reader.fork_tree(list(run_ids), key)
    own = {(info["run_id"], info["segment"]): (info, data) for info, data in nodes}

    def point_at(node: tuple[str, int] | None, step: int) -> tuple[int, float] | None:
        return _point_at(own, node, step)

    plot = Plot(key=key)
    name = shortener([node[0] for node in own])
    # ancestors first, so a branch's colour order follows the tree
    ordered = sorted(own.items(), key=lambda kv: (kv[1][0]["step_lo"], kv[0]))
    for index, (node, (info, data)) in enumerate(ordered):
        color = PALETTE[index % len(PALETTE)]
        dash = LINE_STYLES[(index // len(PALETTE)) % len(LINE_STYLES)]
        run_id, segment = node
        parent = (
            None if info["parent_run_id"] is None else (info["parent_run_id"], int(info["parent_segment"]))
        )
        start = (
            point_at(parent, info["cutoff"]) if parent is not None and info["cutoff"] is not None else None
        )
        steps = [] if data is None else data[0].tolist()
        values = [] if data is None else [float(v) for v in data[1].tolist()]
        if start is not None:  # start at the parent's point so the branch is continuous
            steps, values = [start[0], *steps], [start[1], *values]
        label = (
            name(run_id)
            if info["kind"] != "rewind" and segment == 0
            else f"{name(run_id)} (segment {segment})"
        )
        if steps:
            plot.lines.append(Line(label, run_id, segment, steps, values, color, dash))
        if info["kind"] in ("fork", "rewind"):
            verb = "fork" if info["kind"] == "fork" else "rewind"
            plot.markers.append(
                Marker(
                    info["kind"],
                    int(info["cutoff"]),
                    None if start is None else start[1],
                    f"{verb} @{info['cutoff']} → {label}",
                    color,
                    run_id,
                    segment,
                )
            )
    step_metric = step_metric_of(reader, list(run_ids), key) if x is None else None if x == "step" else x
    if step_metric is not None:
        _to_step_metric(plot, reader, list(run_ids), "_timestamp" if step_metric == "wall" else step_metric)
        plot.x_key = step_metric
    return plot


Own = dict[tuple[str, int], tuple[dict[str, Any], Any]]


def _point_at(own: Own, node: tuple[str, int] | None, step: int) -> tuple[int, float] | None:
    """The value at the last logged step <= `step` of a node's effective history."""
    while node is not None and node in own:
        info, data = own[node]
        if data is not None:
            steps, values = data[0], data[1]
            i = int(np.searchsorted(steps, step, side="right")) - 1
            if i >= 0 and steps[i] > info["step_lo"]:
                return int(steps[i]), float(values[i])
        parent = info["parent_run_id"]
        node = None if parent is None else (parent, int(info["parent_segment"]))
        step = min(step, info["step_lo"])
    return None


def step_metric_of(reader: Reader, run_ids: list[str], key: str) -> str | None:
    """The x-axis `define_metric(key, step_metric=...)` set for `key` in the first of the runs
    that defines one (W&B's rule: the key's own definition, else the longest matching glob)."""
    found = reader.sql(
        "SELECT run_id, metrics FROM runs WHERE run_id IN (SELECT unnest(?)) AND metrics IS NOT NULL",
        [run_ids],
    )
    by_run = dict(found.iter_rows())
    for run_id in run_ids:
        if run_id in by_run:
            rule = matching((Metric.from_json(m) for m in json.loads(by_run[run_id])), key)
            if rule is not None and rule.step_metric and rule.step_metric != key:
                return rule.step_metric
    return None


def _to_step_metric(plot: Plot, reader: Reader, run_ids: list[str], step_metric: str) -> None:
    """Redraw against the step metric: each point's x is the step metric's value at the last
    step <= its own (W&B's step_sync), in the same node's effective history."""
    xs = {
        (info["run_id"], info["segment"]): (info, data)
        for info, data in reader.fork_tree(run_ids, step_metric)
    }

    def x_at(node: tuple[str, int], step: int) -> float:
        found = _point_at(xs, node, step)
        return math.nan if found is None else found[1]

    for line in plot.lines:
        pairs = [
            (x_at((line.run_id, line.segment), int(s)), v)
            for s, v in zip(line.steps, line.values, strict=True)
        ]
        pairs = [(x, v) for x, v in pairs if not math.isnan(x)]
        line.steps = [x for x, _ in pairs]
        line.values = [v for _, v in pairs]
    for marker in plot.markers:
        marker.step = x_at((marker.run_id, marker.segment), int(marker.step))
    plot.x_key = step_metric


def downsample(x: np.ndarray, y: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """M4: per x bucket, the first, min, max and last point (in x order), so a spike is never
    lost and the line through them looks like the line through every point. Vectorised: a few
    passes of numpy over the points, no loop over buckets. NaN (text points) is never a min or
    a max."""
    n = len(x)
    if n <= 4 * buckets or n == 0:
        return x, y
    lo, hi = float(x[0]), float(x[-1])
    width = (hi - lo) / buckets or 1.0
    if hi >= lo and bool(np.all(x[1:] >= x[:-1])):
        # x ascending (steps, usually wall time): bucket edges by binary search, not per point
        edges = np.searchsorted(x, lo + width * np.arange(1, buckets), side="left")
        starts = np.unique(np.concatenate(([0], edges)))
        starts = starts[starts < n]
    else:  # a step metric need not grow: a bucket is a run of points in the same x bucket
        bucket = np.clip(((x - lo) / width).astype(np.int64), 0, buckets - 1)
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], n] - 1
    counts = np.diff(np.r_[starts, n])
    nan = np.isnan(y)
    if bool(nan.any()):
        low, high = np.where(nan, np.inf, y), np.where(nan, -np.inf, y)
    else:
        low = high = y
    mins = np.minimum.reduceat(low, starts)
    maxs = np.maximum.reduceat(high, starts)
    at_min = np.flatnonzero(low == np.repeat(mins, counts))
    at_max = np.flatnonzero(high == np.repeat(maxs, counts))
    # the first point of each bucket that holds its min (max): unique by bucket
    first_min = at_min[np.unique(np.searchsorted(starts, at_min, side="right"), return_index=True)[1]]
    first_max = at_max[np.unique(np.searchsorted(starts, at_max, side="right"), return_index=True)[1]]
    index = np.unique(np.concatenate([starts, ends, first_min, first_max]))
    return x[index], y[index]


Points = tuple[np.ndarray, np.ndarray, np.ndarray]  # steps, x, y of one key
Drawn = tuple[int, list[tuple[np.ndarray, np.ndarray, int]]]  # points, (steps, values, in window) per part
Job = tuple[str, list[str], tuple[Any, ...], threading.Event]  # a run's keys to read ahead
# What DuckDB reduces a chart key to before Python draws it: first/last/min/max of this many
# equal step buckets (a few hundred kB of points, whatever the run's size), and again to the
# chart's pixel buckets. Independent of the chart's width, so one prefetch serves all.
FINE = 8192
# A workspace's panels (at most 1,000 px wide): a quarter of the buckets, each bucket's lowest
# and highest point only (scan.downsampled's `extremes`), about half the cost of FINE's M4
PANEL_FINE = 2048
NOTHING: Drawn = (0, [(np.empty(0, np.int64), np.empty(0), 0)] * 2)


def _nbytes(value: Any) -> int:
    """The bytes of the arrays in a cached value (tuples and lists of arrays and numbers)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, tuple | list):
        return sum(_nbytes(v) for v in value)
    return 8


class _Bounded(OrderedDict[tuple[Any, ...], Any]):
    """A cache of at most `size` entries and `budget` bytes of arrays, the oldest dropped first
    (a workspace of 20 runs x 12 keys keeps 240 keys' points; a run of 1M steps, few)."""

    def __init__(self, size: int, budget: int = 256 << 20) -> None:
        super().__init__()
        self.size, self.budget, self.bytes = size, budget, 0
        self._sizes: dict[tuple[Any, ...], int] = {}

    def keep(self, key: tuple[Any, ...], value: Any) -> None:
        self.bytes -= self._sizes.pop(key, 0)
        self[key] = value
        self._sizes[key] = _nbytes(value)
        self.bytes += self._sizes[key]
        while len(self) > self.size or (self.bytes > self.budget and len(self) > 1):
            old, _ = self.popitem(last=False)
            self.bytes -= self._sizes.pop(old, 0)

    def clear(self) -> None:
        super().clear()
        self._sizes.clear()
        self.bytes = 0


class Charts:
    """The web app's chart reads of one root, with their caches (bounded, owned here; a Lake
    has one). Every cache key holds the run's read plan (`version`): a run that grew, was
    rewound or compacted is read again."""

    def __init__(self, reader: Reader, size: int = 1024) -> None:
        self.reader = reader
        self._lock = threading.Lock()
        self._points: _Bounded = _Bounded(size)  # every point of a key: wall-time and step-metric x
        self._drawn: _Bounded = _Bounded(size)
        self._totals: _Bounded = _Bounded(size)  # a key's point count, once a whole view read it
        self._prefetch: dict[tuple[Any, ...], threading.Event] = {}

    def clear(self) -> None:
        with self._lock:
            self._points.clear()
            self._drawn.clear()
            self._totals.clear()

    def _keep(self, cache: _Bounded, key: tuple[Any, ...], value: Any) -> None:
        with self._lock:
            cache.keep(key, value)

    def plan(
        self, run_id: str, segment: int | None = None
    ) -> tuple[tuple[Any, ...], list[dict[str, Any]], int | None]:
        """What a run's points depend on (its node, its closure and the files it reads: a cache
        key that changes when the run grows, is rewound or compacted), its fork and rewind
        points, and the first step of its own rows (None: the run has no ancestors)."""
        closure, links, files = self.reader.plan(run_id, segment)
        version = (tuple(closure), hash(files), len(files))
        markers = []
        for _, node_run, node_segment, _, _ in closure:
            parent_run, _, cutoff = links[(node_run, node_segment)]
            if cutoff is not None and parent_run is not None:
                markers.append(
                    {
                        "kind": "rewind" if parent_run == node_run else "fork",
                        "step": int(cutoff),
                        "from": parent_run,
                        "run": node_run,
                        "segment": node_segment,
                    }
                )
        own_from = own_start(closure, run_id) if segment is None else None
        return version, markers, own_from

    def prefetch(self, run_id: str, keys: list[str], fine: int = FINE) -> None:
        """Reduce every chart key of a run in one scan, in the background: the run page asks for
        its charts right after its metadata, and one scan of ten keys costs far less than ten.
        `fine`: the step buckets kept (a workspace's small panels: PANEL_FINE, half the cost)."""
        self.prefetch_many([(run_id, keys)], fine)

    def prefetch_many(self, wanted: list[tuple[str, list[str]]], fine: int = FINE, workers: int = 2) -> None:
        """`prefetch` of several runs (a workspace's): each run's keys in one scan, `workers`
        runs at a time (the cores: more threads only contend), the first runs first. Every
        key is marked as being read before this returns, so a chart asked for meanwhile waits
        for its scan instead of reading it again."""
        jobs = []
        for run_id, keys in wanted:
            version = self.plan(run_id)[0]
            todo = [k for k in keys if (run_id, k, None, None, None, fine, version) not in self._drawn]
            if not todo:
                continue
            done = threading.Event()
            with self._lock:
                for key in todo:
                    self._prefetch.setdefault((run_id, key, version), done)
            jobs.append((run_id, todo, version, done))
        if not jobs:
            return
        self._work(list(reversed(jobs)), fine, workers)

    def _work(self, queue: list[Job], fine: int, workers: int) -> None:
        """Read the queued runs' keys, `workers` at a time, each run in its own scan."""

        def one(run_id: str, todo: list[str], version: tuple[Any, ...], done: threading.Event) -> None:
            try:
                found = self.reader.drawn(run_id, todo, fine=fine, extremes=fine == PANEL_FINE)
                self._store(run_id, todo, version, fine, found)
            except Exception:  # noqa: BLE001 - the chart requests read for themselves then
                pass
            finally:
                self._release(run_id, todo, version, done)

        def work() -> None:
            while True:
                with self._lock:
                    if not queue:
                        return
                    job = queue.pop()
                one(*job)

        # not daemons: a process that ends while DuckDB reads in a daemon thread aborts
        for i in range(max(1, min(workers, len(queue)))):
            threading.Thread(target=work, name=f"runlake-ui-prefetch-{i}").start()

    def _store(
        self, run_id: str, todo: list[str], version: tuple[Any, ...], fine: int, found: dict[str, Drawn]
    ) -> None:
        for key in todo:
            drawn = found.get(key, NOTHING)
            self._keep(self._drawn, (run_id, key, None, None, None, fine, version), drawn)
            if fine != PANEL_FINE:  # (extremes leave NaN and text out of the count)
                self._keep(self._totals, (run_id, key, None, version), drawn[0])

    def _release(self, run_id: str, todo: list[str], version: tuple[Any, ...], done: threading.Event) -> None:
        done.set()
        with self._lock:
            for key in todo:
                if self._prefetch.get((run_id, key, version)) is done:
                    del self._prefetch[(run_id, key, version)]

    def drawn(
        self,
        run_id: str,
        key: str,
        lo: int | None,
        hi: int | None,
        segment: int | None,
        buckets: int,
        version: tuple[Any, ...],
        extremes_ok: bool = False,
    ) -> Drawn:
        """A key reduced by DuckDB: the page's prefetch (FINE buckets) when there is one for this
        view, else four step buckets per chart bucket (cheaper to aggregate than FINE). A window
        (a zoom) of a key whose total is known reads only the files that hold its steps.
        `extremes_ok`: a workspace's read-ahead (PANEL_FINE: each bucket's lowest and highest
        point, NaN and text left out) will do (a workspace panel's; a run page counts every
        point)."""
        whole = (lo, hi) == (None, None)
        pending = self._prefetch.get((run_id, key, version)) if whole and segment is None else None
        if pending is not None:
            pending.wait(timeout=60)
        for fine in (FINE, PANEL_FINE) if extremes_ok else (FINE,):
            prefetched = self._drawn.get((run_id, key, None, None, None, fine, version))
            if whole and segment is None and prefetched and fine >= 2 * buckets:
                return prefetched  # type: ignore[no-any-return]
        cached = (run_id, key, lo, hi, segment, 4 * buckets, version)
        if cached in self._drawn:
            return self._drawn[cached]  # type: ignore[no-any-return]
        total = self._totals.get((run_id, key, segment, version))
        read = self.reader.drawn(
            run_id, [key], fine=4 * buckets, lo=lo, hi=hi, segment=segment, window_only=total is not None
        )
        out = read.get(key, NOTHING)
        if total is not None:
            out = (total, out[1])
        self._keep(self._drawn, cached, out)
        if whole:
            self._keep(self._totals, (run_id, key, segment, version), out[0])
        return out

    def points(self, run_id: str, key: str, x: str, segment: int | None, version: tuple[Any, ...]) -> Points:
        """(steps, xs, values) of one key at full resolution; kept while the run has not moved (a
        zoom, a redraw or another chart's live update reads no history again)."""
        cached = (run_id, key, x, segment, version)
        if cached in self._points:
            return self._points[cached]  # type: ignore[no-any-return]
        keys = [key] + (["_timestamp"] if x == "wall" else []) + ([x] if x not in ("step", "wall") else [])
        out = _arrays(self.reader.points(run_id, keys, segment=segment), key, x)
        self._keep(self._points, cached, out)
        return out


def _arrays(found: dict[str, Any], key: str, x: str) -> Points:
    if key not in found:
        return np.empty(0, np.int64), np.empty(0), np.empty(0)
    steps, values, texts = found[key]
    values = np.asarray(values, dtype=np.float64)
    if texts is not None:  # text points have no y
        values = np.where(np.asarray(texts.is_null()), values, np.nan)
    if x == "step":
        return steps, steps.astype(np.float64), values
    other = found.get("_timestamp" if x == "wall" else x)
    if other is None:
        xs = np.full(len(steps), np.nan)
    else:
        o_steps, o_values, _ = other
        at = np.searchsorted(o_steps, steps, side="right") - 1  # the last value at or before
        xs = np.where(at >= 0, np.asarray(o_values, dtype=np.float64)[np.maximum(at, 0)], np.nan)
    ok = ~np.isnan(xs)
    return steps[ok], xs[ok], values[ok]
