"""The `workspace` scenario (#29): the web app's workspace, grouping and runs table, on the
server and in Chromium.

On the server (the endpoints' functions):
- grouping 200 runs (10,000 steps each; 2,000 with --quick) into 4 bands of one key
  (`GET /api/group`, mean with ±std and with min-max), median of 5;
- the panels of a workspace of 20 runs x 12 keys, nothing cached: `GET /api/workspace` (which
  starts reading every run's panels ahead, one scan per run) and `GET /api/panel` per key.

In Chromium (Playwright, Debian's chromium; skipped without them), against `runlake ui`:
- a workspace of 20 runs x 12 keys of 100,000 steps each (10,000 with --quick), from the
  page's load until all 12 panels have drawn their 20 series: the first visit (nothing of it
  cached on the server) and again (median of 3);
- the 200 runs grouped into 4 bands (one panel), from the page's load until the bands are drawn;
- the runs table of 100,000 runs (10,000 with --quick): a page turned, until its rows are drawn
  (median of 5 pages, across the table).
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

import runlake
from runlake.ui import api, panels

Rows = list[tuple[str, str, str]]
QUIET = {"console": "off", "x_disable_stats": True}


def _walks(lake: runlake.Lake, project: str, runs: int, steps: int, keys: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    ids = []
    for i in range(runs):
        run = lake.init(
            project, id=f"{project}{i:03d}", group=f"g{i % 4}", config={"lr": float(i % 4)}, settings=QUIET
        )
        base = rng.normal(size=(steps, keys)).cumsum(axis=0) / np.sqrt(steps)
        names = [f"k{j:02d}" for j in range(keys)]
        for row in base.tolist():
            run.log(dict(zip(names, row, strict=True)))
        run.finish()
        ids.append(run.id)
    return ids


@contextlib.contextmanager
def serve(root: str) -> Iterator[str]:
    """`runlake ui` on `root` on a free loopback port, as a user starts it; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "runlake.cli", "--root", root, "ui", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.kill()
        server.wait()


def chromium() -> str | None:
    """Debian's Chromium, when it and Playwright are installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and importlib.util.find_spec("playwright") is not None else None


def _drawn(page: Any, url: str, condition: str) -> float:
    """Load `url` in a fresh page load and wait until `condition` holds and a frame is painted."""
    page.goto("about:blank")
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_function(condition, timeout=300_000)
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    return (time.perf_counter() - started) * 1000


def _browser(root: str, wide: list[str], grouped: list[str], pages: int, out: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    panels_drawn = (
        "document.querySelectorAll('.ws-panel').length === 12 && [...document.querySelectorAll"
        "('.ws-panel .chart-body')].every(b => b.dataset.series === '20' && b.querySelector('canvas'))"
    )
    with serve(root) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        # Playwright's waits evaluate strings, which the app's own CSP forbids: bypassed here
        page = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True).new_page()
        page.goto(base + "#/?project=many")  # as a user arrives: the runs table first
        page.wait_for_selector("#runs-body tr", timeout=300_000)
        url = base + "#/workspace?runs=" + ",".join(wide)
        first = _drawn(page, url, panels_drawn)
        again = [_drawn(page, url, panels_drawn) for _ in range(3)]
        out["browser_workspace_first_ms"], out["browser_workspace_ms"] = first, statistics.median(again)
        url = base + "#/workspace?group=group&keys=^k00$&runs=" + ",".join(grouped)
        bands = "document.querySelector('.ws-panel .chart-body')?.dataset.groups === '4'"
        first = _drawn(page, url, bands)
        again = [_drawn(page, url, bands) for _ in range(3)]
        out["browser_group_first_ms"], out["browser_group_ms"] = first, statistics.median(again)
        page.goto(base + "#/?project=many")
        page.wait_for_selector("#runs-body tr", timeout=300_000)
        turns = []
        for k in np.linspace(1, pages - 1, 5).astype(int).tolist():
            started = time.perf_counter()
            page.evaluate(f"location.hash = '#/?project=many&page={k}'")
            page.wait_for_function(
                f"document.querySelector('#page-info')?.textContent.startsWith('page {k + 1} ')",
                timeout=300_000,
            )
            page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
            turns.append((time.perf_counter() - started) * 1000)
        out["browser_runs_page_ms"] = statistics.median(turns)
        browser.close()


def workspace(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    steps, wide_steps, many = (2_000, 10_000, 10_000) if quick else (10_000, 100_000, 100_000)
    root = f"{path}/root"
    lake = runlake.Lake(root)
    ids = _walks(lake, "r", 200, steps, 12, seed=3)
    out: dict[str, Any] = {"runs": len(ids), "steps": steps, "wide_steps": wide_steps, "table_runs": many}
    lake.compact(progress=False)
    for band in ("std", "minmax"):
        panels.group_lines(lake, ids, "k00", "group", band)  # warm: the catalog read once
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            groups = panels.group_lines(lake, ids, "k00", "group", band)
            times.append(time.perf_counter() - t0)
        assert len(groups["groups"]) == 4
        out[f"group_{band}_ms"] = statistics.median(times) * 1e3
    twenty = ids[:20]
    times = []
    for _ in range(3):  # as the page asks: the workspace's runs (reading ahead), then each panel
        lake.charts.clear()
        t0 = time.perf_counter()
        api.workspace_runs(lake, twenty)
        for j in range(12):
            panels.panel(lake, twenty, f"k{j:02d}", 440)
        times.append(time.perf_counter() - t0)
    out["panels_20x12_ms"] = statistics.median(times) * 1e3
    rows: Rows = [
        ("workspace", f"200 runs x {steps:,} steps into 4 bands (±std)", f"{out['group_std_ms']:.0f} ms"),
        (
            "workspace",
            f"200 runs x {steps:,} steps into 4 bands (min-max)",
            f"{out['group_minmax_ms']:.0f} ms",
        ),
        (
            "workspace",
            f"20 runs x 12 keys x {steps:,} steps: every panel's data, nothing cached",
            f"{out['panels_20x12_ms']:.0f} ms",
        ),
    ]
    if chromium() is None:
        lake.close()
        return out, rows
    wide = _walks(lake, "wide", 20, wide_steps, 12, seed=5)
    for i in range(many):
        run = lake.init("many", id=f"m{i:06d}", config={"lr": i / many}, settings=QUIET)
        run.log({"loss": 1.0 / (i + 1)})
        run.finish()
    lake.compact(progress=False)
    lake.close()
    _browser(root, wide, ids, many // 50, out)
    rows += [
        (
            "workspace",
            f"Chromium: workspace 20 runs x 12 keys x {wide_steps:,} steps, load to drawn",
            f"first {out['browser_workspace_first_ms']:.0f} ms, again {out['browser_workspace_ms']:.0f} ms",
        ),
        (
            "workspace",
            f"Chromium: 200 runs x {steps:,} steps grouped into 4 bands, load to drawn",
            f"first {out['browser_group_first_ms']:.0f} ms, again {out['browser_group_ms']:.0f} ms",
        ),
        (
            "workspace",
            f"Chromium: runs table of {many:,} runs, a page turned",
            f"{out['browser_runs_page_ms']:.0f} ms",
        ),
    ]
    return out, rows
