"""Fork-tree charts: each run's effective history, the shared prefix drawn once, fork points marked.

PNG through matplotlib, or a self-contained interactive HTML file through plotly (opens offline).
Both come with the `plot` extra: pip install 'runlake[plot]'.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import RunlakeError
from .read.reader import Reader
from .store.names import check_name

PathLike = str | os.PathLike[str]
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


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """W&B/TensorBoard-style exponential moving average, debiased at the start."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {weight}")
    if weight == 0:
        return list(values)
    out, last, norm = [], 0.0, 0.0
    for v in values:
        if math.isnan(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        norm = norm * weight + (1 - weight)
        out.append(last / norm)
    return out


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
    step_metric = _step_metric(reader, list(run_ids), key) if x is None else None if x == "step" else x
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


def _step_metric(reader: Reader, run_ids: list[str], key: str) -> str | None:
    """The x-axis `define_metric(key, step_metric=...)` set for `key` in the first of the runs
    that defines one (W&B's rule: the key's own definition, else the longest matching glob)."""
    from .write.metrics import Metrics

    found = reader.sql(
        "SELECT run_id, metrics FROM runs WHERE run_id IN (SELECT unnest(?)) AND metrics IS NOT NULL",
        [run_ids],
    )
    by_run = dict(found.iter_rows())
    for run_id in run_ids:
        if run_id in by_run:
            rule = Metrics(json.loads(by_run[run_id])).rule(key)
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


def plot_with(
    reader: Reader,
    run_ids: Sequence[str] | str,
    key: str,
    *,
    output: PathLike | None = None,
    log_scale: bool = False,
    smoothing: float = 0.0,
    title: str | None = None,
) -> Plot:
    """Chart one metric of several runs as a fork tree; write PNG or HTML when `output` is given.

    Args:
        output: a `.png` (matplotlib) or `.html` (self-contained plotly) path; None keeps the
            matplotlib figure in `Plot.figure` for a notebook.
        smoothing: exponential moving average weight in [0, 1), as W&B's smoothing slider.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("plot() needs the key (metric name) to draw")
    smooth([], smoothing)  # validates the weight before any work
    target = None if output is None else os.fspath(output)
    suffix = os.path.splitext(target)[1].lower() if target is not None else ".png"
    if suffix not in (".png", ".html"):
        raise ValueError(f"plot output must end in .png or .html, got {target!r}")
    result = build(reader, run_ids if not isinstance(run_ids, str) else [run_ids], key)
    if not result.lines:
        raise RunlakeError(f"none of the runs has logged {key!r}")
    title = title or f"{key}: " + ", ".join(
        dict.fromkeys(run_ids if not isinstance(run_ids, str) else [run_ids])
    )
    if target is not None and suffix == ".html":
        _html(result, title, log_scale, smoothing, target)
    else:
        _png(result, title, log_scale, smoothing, target)
    return result


def _need(module: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise RunlakeError(f"plotting needs {module.split('.')[0]}: pip install 'runlake[plot]'") from None


def _png(result: Plot, title: str, log_scale: bool, smoothing: float, path: str | None) -> None:
    matplotlib = _need("matplotlib")
    if path is not None:
        matplotlib.use("Agg")
    plt = _need("matplotlib.pyplot")
    import textwrap

    many = len(result.lines) > 12
    fig, ax = plt.subplots(figsize=(12 if many else 10, 6 if many else 5.5), dpi=100)
    for line in result.lines:
        if smoothing:
            ax.plot(line.steps, line.values, color=line.color, alpha=0.25, linewidth=1, linestyle=line.dash)
        ax.plot(
            line.steps,
            smooth(line.values, smoothing),
            color=line.color,
            linestyle=line.dash,
            linewidth=1.8,
            label=line.label,
            gid="branch",
        )
    shown = [m for m in result.markers if m.value is not None and not math.isnan(m.value)]
    numbered = len(shown) > MAX_LABELS  # too many to label in place: numbers, explained below
    for number, marker in enumerate(shown, 1):
        ax.scatter(
            [marker.step],
            [marker.value],
            s=60,
            marker="D",
            color=marker.color,
            edgecolor="black",
            zorder=5,
            gid="fork",
        )
        text = str(number) if numbered else marker.label
        # alternate above/below so neighbouring labels do not sit on each other
        offset = (6, 8 + 10 * (number % 3)) if number % 2 else (6, -14 - 10 * (number % 3))
        ax.annotate(
            text,
            (marker.step, marker.value),
            textcoords="offset points",
            xytext=offset,
            fontsize=8,
            color=marker.color,
        )
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel(result.x_key)
    ax.set_ylabel(result.key)
    ax.set_title("\n".join(textwrap.wrap(title, 90)) or title, fontsize=11)  # wrapped, never clipped
    ax.grid(True, alpha=0.3)
    columns = 1 if len(result.lines) <= 12 else 2
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, ncol=columns, frameon=False)
    if numbered:
        columns = 1 if len(result.lines) <= 12 else 2
    if numbered:  # the numbered fork points, explained beside the plot (inside the saved image)
        notes = "\n".join(f"{i}: {m.label}" for i, m in enumerate(shown, 1))
        ax.text(1.01, 0.0, notes, transform=ax.transAxes, fontsize=7, va="bottom", family="monospace")
    fig.tight_layout()
    result.figure = fig
    if path is not None:
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)
        result.path = path


def _html(result: Plot, title: str, log_scale: bool, smoothing: float, path: str) -> None:
    go = _need("plotly.graph_objects")
    fig = go.Figure()
    for line in result.lines:
        if smoothing:
            fig.add_trace(
                go.Scatter(
                    x=line.steps,
                    y=line.values,
                    mode="lines",
                    line={"color": line.color, "width": 1},
                    opacity=0.25,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
        fig.add_trace(
            go.Scatter(
                x=line.steps,
                y=smooth(line.values, smoothing),
                mode="lines",
                name=line.label,
                line={"color": line.color, "width": 2},
            )
        )
    shown = [m for m in result.markers if m.value is not None and not math.isnan(m.value)]
    if shown:
        fig.add_trace(
            go.Scatter(
                x=[m.step for m in shown],
                y=[m.value for m in shown],
                mode="markers+text",
                name="fork points",
                text=[m.label for m in shown],
                textposition="top right",
                marker={
                    "symbol": "diamond",
                    "size": 11,
                    "color": [m.color for m in shown],
                    "line": {"color": "black", "width": 1},
                },
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title=result.x_key,
        yaxis_title=result.key,
        template="plotly_white",
        yaxis_type="log" if log_scale else "linear",
        hovermode="x unified",
    )
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    result.figure = fig
    result.path = path
