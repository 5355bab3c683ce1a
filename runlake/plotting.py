"""Fork-tree charts: each run's effective history, the shared prefix drawn once, fork points marked.

PNG through matplotlib, or a self-contained interactive HTML file through plotly (opens offline).
Both come with the `plot` extra: pip install 'runlake[plot]'.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from .errors import RunlakeError
from .read.charts import MAX_LABELS, Plot, build
from .read.reader import Reader

PathLike = str | os.PathLike[str]


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
