"""Fork-tree charts: PNG through matplotlib, self-contained HTML checked in headless Chromium."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from trees import Branch, grow

import runlake


@pytest.fixture
def tree_lake(local_root):
    grow(
        runlake.Lake(local_root),
        "p",
        Branch("base0001", 100, lambda i: {"loss": 2.0 / (i + 1)}),
        Branch("forka001", 60, lambda i: {"loss": 0.05 + i / 1000}, fork_from="base0001?_step=40"),
        Branch("forkb001", 30, lambda i: {"loss": 0.2}, fork_from="forka001?_step=70"),
    )
    return local_root


def _image(path):
    import matplotlib.image as mpimg

    return mpimg.imread(path)


def _not_blank(pixels) -> bool:
    rgb = np.asarray(pixels)[..., :3]
    return float(rgb.std()) > 0.02 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 20


def test_png_has_one_line_per_branch_and_a_marker_per_fork(tree_lake, tmp_path):
    out = tmp_path / "loss.png"
    result = runlake.plot(
        ["forkb001", "forka001", "base0001"], "loss", root=tree_lake, output=out, smoothing=0.3
    )
    assert result.path == str(out)
    lineage_nodes = {
        (r, s)
        for run in ("forkb001",)
        for r, s in runlake.lineage(run, root=tree_lake).select("run_id", "segment").rows()
    }
    assert {(line.run_id, line.segment) for line in result.lines} == lineage_nodes
    assert len(result.lines) == 3  # the shared prefix is drawn once
    assert [(m.kind, m.step) for m in sorted(result.markers, key=lambda m: m.step)] == [
        ("fork", 40),
        ("fork", 70),
    ]
    assert len({line.color for line in result.lines}) == 3
    base = next(line for line in result.lines if line.run_id == "base0001")
    assert base.steps[-1] == 99  # a selected run: its whole history
    child = next(line for line in result.lines if line.run_id == "forka001")
    assert child.steps[0] == 40  # starts at the parent's point: no gap at the fork
    pixels = _image(out)
    assert pixels.shape[0] >= 400 and pixels.shape[1] >= 800
    assert _not_blank(pixels)
    fig = result.figure
    ax = fig.axes[0]
    assert len([ln for ln in ax.get_lines() if ln.get_gid() == "branch"]) == 3
    assert len([c for c in ax.collections if c.get_gid() == "fork"]) == 2


def test_ancestors_are_drawn_only_as_far_as_the_selection_uses_them(tree_lake, tmp_path):
    result = runlake.plot(["forkb001"], "loss", root=tree_lake, output=tmp_path / "b.png")
    ends = {line.run_id: (line.steps[0], line.steps[-1]) for line in result.lines}
    assert ends == {"base0001": (0, 40), "forka001": (40, 70), "forkb001": (70, 100)}


def test_log_scale_and_rewind_markers(tree_lake, tmp_path):
    runlake.init(root=tree_lake, resume_from="base0001?_step=80").finish()
    result = runlake.plot("base0001", "loss", root=tree_lake, output=tmp_path / "r.png", log_scale=True)
    assert [m.kind for m in result.markers] == ["rewind"]
    assert result.figure.axes[0].get_yscale() == "log"


def test_plot_errors(tree_lake, tmp_path):
    with pytest.raises(ValueError, match=".png or .html"):
        runlake.plot("base0001", "loss", root=tree_lake, output=tmp_path / "x.svg")
    with pytest.raises(runlake.RunlakeError, match="nothing"):
        runlake.plot("base0001", "nothing", root=tree_lake, output=tmp_path / "x.png")
    with pytest.raises(ValueError, match="smoothing"):
        runlake.plot("base0001", "loss", root=tree_lake, output=tmp_path / "x.png", smoothing=1.5)
    with pytest.raises(runlake.RunNotFoundError):
        runlake.plot("nosuchrun", "loss", root=tree_lake, output=tmp_path / "x.png")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow  # starts Chromium
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_html_is_self_contained_and_renders_in_headless_chromium(tree_lake, tmp_path):
    out = tmp_path / "loss.html"
    result = runlake.plot(["forkb001", "forka001"], "loss", root=tree_lake, output=out)
    html = out.read_text()
    assert '<script src="http' not in html and "cdn" not in html.lower().split("plotly.js")[0][:200]
    assert len(result.lines) == 3 and len(result.markers) == 2
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1100,700",
            "--virtual-time-budget=5000",
            f"--screenshot={shot}",
            out.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.exists(), proc.stderr
    pixels = _image(shot)
    assert pixels.shape[:2] == (700, 1100)
    assert _not_blank(pixels)
    rgb = (np.asarray(pixels)[..., :3] * 255).astype(int)
    # the branch colours are on the page (blue #0072B2 and orange #E69F00 from the palette)
    for colour in ((0, 114, 178), (230, 159, 0)):
        assert (np.abs(rgb - colour).sum(axis=2) < 40).sum() > 50, colour


def test_compare_descendants_tree(tree_lake):
    frame = runlake.compare(["base0001", "forkb001"], ["loss"], root=tree_lake)
    assert frame.columns == ["_step", "base0001:loss", "forkb001:loss"]
    assert frame["_step"].to_list() == list(range(101))
    assert frame["forkb001:loss"][100] == 0.2 and frame["base0001:loss"][100] is None
    below = runlake.descendants("base0001", root=tree_lake)
    assert below.select("run_id", "generation", "fork_step").rows() == [
        ("forka001", 1, 40),
        ("forkb001", 2, 70),
    ]
    forest = runlake.tree("p", root=tree_lake)
    assert forest.select("run_id", "root_run_id", "depth").rows() == [
        ("base0001", "base0001", 0),
        ("forka001", "base0001", 1),
        ("forkb001", "base0001", 2),
    ]


def test_a_twenty_member_population_plot_stays_readable(tmp_path):
    root = str(tmp_path / "root")
    ids = []
    base = runlake.init("p", root=root, id="population-based-training-member-0000-with-a-long-id")
    for i in range(50):
        base.log({"loss": 1 / (i + 1)})
    base.finish()
    ids.append(base.id)
    for k in range(20):
        run = runlake.init(
            "p",
            root=root,
            id=f"population-based-training-member-{k + 1:04d}-with-a-long-id",
            fork_from=f"{ids[-1]}?_step={10 + 2 * k}",
        )
        for _ in range(5):
            run.log({"loss": 0.5 / (k + 2)})
        run.finish()
        ids.append(run.id)
    title = "a title long enough to be clipped on both sides of a chart of this width " * 3
    plot = runlake.plot(ids, "loss", root=root, output=str(tmp_path / "pbt.png"), title=title)
    styles = [(line.color, line.dash) for line in plot.lines]
    assert len(styles) == 21 and len(set(styles)) == 21  # no colour and style repeats
    assert len({c for c, _ in styles[:16]}) == 16  # the palette is used up before styles change
    labels = [line.label for line in plot.lines]
    assert len(set(labels)) == 21 and all(len(label) <= 24 for label in labels)
    assert labels[7] == "…0007…"  # what tells the ids apart stays
    figure_title = plot.figure.axes[0].get_title()
    assert "\n" in figure_title and figure_title.replace("\n", " ").split() == title.split()  # wrapped, whole
