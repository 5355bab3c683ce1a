"""`runlake ui` (#13) in a real browser: the server started on 127.0.0.1 as a user starts it,
Debian's Chromium driven by Playwright; assertions on what the page shows (rows, lineage nodes,
chart series and their point counts, fork markers), screenshots; a run logged by another
process grows on the page; hostile names stay text; a token guards a non-loopback server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from servers import answers, free_port, wait_for
from trees import Branch, grow

import runlake

pytestmark = [pytest.mark.slow, pytest.mark.ui]
HOSTILE = "<img src=x onerror=alert(1)>"
SHOTS = os.environ.get("RUNLAKE_SCREENSHOTS")  # a directory: keep the screenshots there (README)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ui") / "root")
    lake = runlake.Lake(path)
    attrs = {"name": HOSTILE, "group": "g1", "tags": ["baseline", "<b>tag</b>"], "config": {"lr": 0.1}}
    grow(
        lake,
        "demo",
        Branch(
            "base",
            60,
            lambda step: {"loss": 1.0 / (step + 1), "train/acc": step / 60, "<b>key</b>": float(step)},
            init=attrs,
        ),
        Branch(
            "hot",
            30,
            lambda i: {"loss": 0.01, "train/acc": 0.9},
            "base?_step=20",
            init={"config": {"lr": 0.5}},
        ),
        Branch(
            None,
            10,
            lambda i: {"loss": 0.5, "train/acc": 0.5, "<b>key</b>": 1.0},
            resume_from="base?_step=40",
        ),
    )
    # a small population: 4 members, 2 generations of forks (g1 from m3, g2 from g1); then, as
    # Ray's PBT does, a trial continues from a better member's checkpoint as a new segment of itself
    grow(
        lake,
        "pbt",
        *(Branch(f"m{i}", 10, lambda _, i=i: {"score": float(i)}) for i in range(4)),
        Branch("g1", 5, lambda _: {"score": 11.0}, fork_from="m3?_step=9"),
        Branch("g2", 5, lambda _: {"score": 12.0}, fork_from="g1?_step=9"),
        Branch("m0", 1, lambda _: {"score": 3.5}, fork_from="m3?_step=7", init={"resume": "allow"}),
    )
    lake.close()
    return path


@pytest.fixture(scope="module")
def server(root):
    port = free_port()
    log = open(os.path.join(os.path.dirname(root), "server.log"), "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "runlake.cli", "--root", root, "ui", "--port", str(port)],
        stdout=log,
        stderr=log,
    )
    wait_for(lambda: answers(port) or proc.poll() is not None, "the server")
    assert proc.poll() is None, open(log.name).read()
    yield f"http://127.0.0.1:{port}/"
    proc.kill()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    # the app's own CSP forbids eval, which Playwright's wait_for_function uses: the tests bypass
    # it; test_the_page_works_under_its_own_policy checks the page with the policy enforced
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_default_timeout(120_000)  # generous: busy cores make everything slower
    yield page
    assert dialogs == [], f"a page script ran: {dialogs}"  # a hostile name must never execute
    context.close()


def _stop(proc) -> None:
    proc.kill()
    proc.wait(timeout=30)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _open(page, url):
    """Go to `url` and wait until the page has drawn it (a new hash on the same page too)."""
    if page.url.split("#")[0] == url.split("#")[0]:
        page.evaluate("document.body.dataset.ready = ''")
    page.goto(url)
    page.wait_for_function("document.body.dataset.ready")


def _shot(page, name, tmp_path):
    target = os.path.join(SHOTS or str(tmp_path), name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    page.screenshot(path=target, full_page=True)
    assert os.path.getsize(target) > 10_000


def test_runs_table_filters_sorts_and_escapes(server, page, tmp_path):
    _open(page, server + "#/?project=demo")
    rows = page.locator("#runs-body tr")
    assert rows.count() == 2
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.run)")) == ["base", "hot"]
    base = page.locator('#runs-body tr[data-run="base"]')
    assert HOSTILE in base.inner_text()  # shown as text
    assert base.locator("img").count() == 0 and page.locator("#runs-body b").count() == 0
    assert page.locator('#runs-body tr[data-run="hot"]').inner_text().count("base@20") == 1
    page.fill("#search", "hot")
    page.press("#search", "Enter")
    page.wait_for_function("document.querySelectorAll('#runs-body tr').length === 1")
    assert page.locator("#runs-body tr").get_attribute("data-run") == "hot"
    _open(page, server + "#/?project=pbt&sort=run_id&order=asc")
    assert page.locator("#runs-body tr").evaluate_all("rs => rs.map(r => r.dataset.run)") == [
        "g1",
        "g2",
        "m0",
        "m1",
        "m2",
        "m3",
    ]
    _shot(page, "fixture-runs.png", tmp_path)


def test_a_run_with_a_fork_and_a_rewind(server, page, tmp_path):
    _open(page, server + "#/run/base")
    assert HOSTILE in page.locator("#run-title").inner_text()
    nodes = page.locator("#lineage .lineage-node")
    assert nodes.evaluate_all("ns => ns.map(n => [n.dataset.run, n.dataset.kind])") == [
        ["base", "root"],
        ["base", "rewind"],
        ["hot", "fork"],
    ]
    assert "archived segments: 0" in page.locator("#lineage").inner_text()
    page.wait_for_function("document.querySelectorAll('.chart .chart-body[data-points]').length === 3")
    loss = page.locator('.chart[data-key="loss"] .chart-body')
    # effective history: steps 0..40 from segment 0, 41..50 after the rewind: 51 points, a rewind
    # marker, and all of them its own (#29: a rewound run's earlier steps were drawn as inherited)
    assert loss.get_attribute("data-total") == "51" and loss.get_attribute("data-points") == "51"
    assert loss.get_attribute("data-markers") == "1" and loss.get_attribute("data-inherited") == "0"
    assert page.locator('.chart[data-key="<b>key</b>"] h3').inner_text() == "<b>key</b>"
    assert page.locator(".chart canvas").count() == 3
    _shot(page, "fixture-run.png", tmp_path)
    _open(page, server + "#/run/hot")
    hot = page.locator('.chart[data-key="loss"] .chart-body')
    page.wait_for_function("document.querySelector('.chart[data-key=\"loss\"] .chart-body')?.dataset.points")
    assert hot.get_attribute("data-inherited") == "21" and hot.get_attribute("data-total") == "51"
    assert hot.get_attribute("data-markers") == "1"
    # pick runs to compare from the lineage tree: hot is ticked, tick its parent too
    assert page.locator('#lineage li[data-run="hot"] input.pick').is_checked()
    page.locator('#lineage li[data-run="base"] input.pick').first.check()
    page.locator("#compare-picked").click()
    page.wait_for_function("location.hash.startsWith('#/compare')")
    page.wait_for_function(
        "document.querySelector('#compare-chart')?.dataset.lines"
    )  # drawn: no longer in flight
    assert sorted(
        page.evaluate("new URLSearchParams(location.hash.split('?')[1]).get('runs')").split(",")
    ) == [
        "base",
        "hot",
    ]
    # archived segments on demand
    _open(page, server + "#/run/base?archived=1")
    page.wait_for_function("document.querySelector('.chart[data-key=\"loss\"] .chart-body')?.dataset.points")
    assert page.locator('.chart[data-key="loss"] .u-legend th').count() >= 3  # inherited, own, segment 0


def test_compare_draws_the_shared_prefix_once(server, page):
    _open(page, server + "#/compare?runs=base,hot&key=loss")
    chart = page.locator("#compare-chart")
    page.wait_for_function("document.querySelector('#compare-chart')?.dataset.lines")
    # base's segment 0 (up to the rewind), its segment 1, and hot's own branch
    assert chart.get_attribute("data-lines") == "3" and chart.get_attribute("data-markers") == "2"
    assert int(chart.get_attribute("data-points")) == 41 + 11 + 31  # a branch starts at its parent's point
    assert chart.get_attribute("data-x-label") == "step"
    # wall time on the x-axis: the same lines, against each point's _timestamp
    page.select_option("#compare-x", "wall")
    page.wait_for_function("document.querySelector('#compare-chart')?.dataset.xLabel === 'wall'")
    assert page.locator("#compare-chart").get_attribute("data-lines") == "3"


def test_population_view(server, page, tmp_path):
    _open(page, server + "#/population?project=pbt&metric=score")
    members = page.locator("#population g.member")
    assert members.count() == 6
    # lanes in fork-forest order: a fork right under its parent (g1 under m3, g2 under g1)
    assert members.evaluate_all("gs => gs.map(g => g.dataset.run)") == ["m0", "m1", "m2", "m3", "g1", "g2"]
    forks = page.locator("#population line.fork")
    assert forks.count() == 2
    assert forks.evaluate_all("ls => ls.map(l => l.dataset.from + '>' + l.dataset.run)") == ["m3>g1", "g1>g2"]
    exploit = page.locator("#population path.exploit")
    assert exploit.count() == 1
    assert (exploit.get_attribute("data-from"), exploit.get_attribute("data-run")) == ("m3", "m0")
    assert "exploited m3 @7" in exploit.locator("title").text_content()
    # m0's lane: its first segment, then the one continued from m3's step 7 (one exploit round)
    assert page.locator('#population g.segment[data-run="m0"]').count() == 2
    assert page.locator("#population .round-label").all_text_contents() == ["exploit round 1 (1)"]
    assert "1 exploit in 1 round (dashed" in page.locator(".toolbar").inner_text()
    # lanes on one step axis: g1 (forked from m3 at 9) and g2 (from g1 at 9, a step g1 inherited)
    # both start at step 10, right of m3's start and of the fork line at step 9
    starts = {
        run: float(page.locator(f'#population g.segment[data-run="{run}"] rect').first.get_attribute("x"))
        for run in ("m3", "g1", "g2")
    }
    fork_x = float(forks.first.get_attribute("x1"))
    assert starts["m3"] < fork_x < starts["g1"] == starts["g2"]
    # m0's first segment past step 7 is abandoned (the exploit continued from m3's step 7)
    assert page.locator('#population g.segment[data-run="m0"][data-segment="0"] rect.abandoned').count() == 2
    _shot(page, "fixture-population.png", tmp_path)
    page.locator('#population g.member[data-run="g2"] circle').click()
    page.wait_for_function("location.hash.startsWith('#/run/g2')")


def test_sql_console_reads_and_refuses_writes(server, page):
    _open(page, server + "#/sql")
    page.fill(
        "#sql-input", "SELECT run_id, count(*) AS n FROM history WHERE key = 'loss' GROUP BY 1 ORDER BY 1"
    )
    page.click("#sql-run")
    page.wait_for_selector("#sql-result table")
    cells = page.locator("#sql-result tbody tr").evaluate_all(
        "rs => rs.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert cells == [["base", "51"], ["hot", "51"]]
    page.fill("#sql-input", "COPY (SELECT 1) TO '/tmp/x.csv'")
    page.click("#sql-run")
    assert "refused" in page.wait_for_selector("#sql-error").inner_text()
    with page.expect_download() as download:
        page.fill("#sql-input", "SELECT run_id FROM runs ORDER BY 1")
        page.click("#sql-csv")
    with open(download.value.path()) as fh:
        assert fh.read().split() == ["run_id", "base", "g1", "g2", "hot", "m0", "m1", "m2", "m3"]


def test_live_a_run_logged_by_another_process_grows_on_the_page(server, root, page, tmp_path):
    go, first = tmp_path / "go", tmp_path / "first"
    code = f"""
import os, time, runlake
run = runlake.init("live", root={root!r}, id="live")
for i in range(10):
    run.log({{"loss": float(i)}})
run.flush()
open({str(first)!r}, "w").close()
while not os.path.exists({str(go)!r}):
    time.sleep(0.05)
for i in range(10, 30):
    run.log({{"loss": float(i)}})
run.flush()
time.sleep(600)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "RUNLAKE_FLUSH_INTERVAL": "0.2"})
    try:
        wait_for(first.exists, "the first steps")
        _open(page, server + "#/run/live")
        page.wait_for_function(
            "document.querySelector('.chart[data-key=\"loss\"] .chart-body')?.dataset.total === '10'"
        )
        assert "running" in page.locator("#run-title").inner_text()
        go.touch()
        page.wait_for_function(
            "document.querySelector('.chart[data-key=\"loss\"] .chart-body')?.dataset.total === '30'",
            timeout=120_000,
        )  # no reload: the page polled /api/changes and redrew
    finally:
        _stop(proc)


def test_a_run_that_just_started_is_found_though_the_catalog_was_just_refreshed(server, root):
    def get(path):
        with urllib.request.urlopen(server + path, timeout=120) as response:
            return json.load(response)

    get("api/runs?project=demo")  # the server's catalog is refreshed now, and kept for a second
    run = runlake.init("fresh", root=root, id="fresh")
    run.log({"loss": 1.0})
    run.finish()
    assert get("api/runs/fresh")["run"]["run_id"] == "fresh"  # not a 404 from a catalog 1 s old
    assert get("api/runs/fresh/series?key=loss")["points"] == 1


def test_a_zoom_on_a_step_metric_below_zero(server, root):
    """lo and hi of another x-axis than the step are taken as they are (a step metric may be
    negative); a bad bound is a 400 naming it."""
    run = runlake.init("neg", root=root, id="neg")
    for i in range(20):
        run.log({"t": -float(i), "y": float(i)})
    run.finish()

    def get(path):
        with urllib.request.urlopen(server + path, timeout=120) as response:
            return json.load(response)

    zoomed = get("api/runs/neg/series?key=y&x=t&lo=-10&hi=-5")
    assert sorted(zoomed["own"]["x"]) == [-10.0, -9.0, -8.0, -7.0, -6.0, -5.0]
    compared = get("api/compare?runs=neg&key=y&x=t&lo=-10&hi=-5")
    assert sorted(compared["lines"][0]["x"]) == [-10.0, -9.0, -8.0, -7.0, -6.0, -5.0]
    with pytest.raises(urllib.error.HTTPError) as bad:
        urllib.request.urlopen(server + "api/runs/neg/series?key=y&lo=abc", timeout=120)
    assert bad.value.code == 400 and "lo and hi must be numbers" in json.load(bad.value)["error"]
    bad.value.close()


def test_a_page_opened_before_its_run_starts_shows_the_run_when_it_does(server, root, page):
    _open(page, server + "#/run/early")
    assert "does not exist" in page.locator("#page-error").inner_text()
    run = runlake.init("early", root=root, id="early")
    for i in range(5):
        run.log({"loss": float(i)})
    run.flush()
    try:  # no reload: the page polls /api/changes and looks again when the run appears
        page.wait_for_function(
            "document.querySelector('.chart[data-key=\"loss\"] .chart-body')?.dataset.total === '5'"
        )
    finally:
        run.finish()


def test_a_non_loopback_server_needs_its_token(root):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runlake.cli", "--root", root, "ui", "--host", "0.0.0.0", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        token = line.strip().rsplit("?token=", 1)[1]
        wait_for(lambda: answers(port), "the server")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/projects", timeout=120)
        assert refused.value.code == 401
        refused.value.close()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/projects", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            assert {p["project"] for p in json.load(response)} >= {"demo", "pbt"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={token}", timeout=120) as response:
            assert "runlake_token" in response.headers.get("set-cookie", "")
    finally:
        _stop(proc)


def test_a_slow_page_left_for_another_never_draws_over_it(server, page):
    _open(page, server + "#/runs")
    # the compare view's first answer (run base's page data) arrives late: held until the
    # run page the user went on to is drawn
    held = []
    page.route("**/api/runs/base", lambda route: held.append(route))
    page.evaluate("location.hash = '#/compare?runs=base,hot&key=loss'")
    wait_for(lambda: held or page.wait_for_timeout(50), "the held request")  # (lets Playwright dispatch)
    _open(page, server + "#/run/hot")
    page.wait_for_function("document.querySelector('.chart[data-key=\"loss\"] .chart-body')?.dataset.points")
    held[0].continue_()
    # the late view either draws over the run page (the bug) or says it dropped its drawing
    page.wait_for_function("document.querySelector('#compare-key') || document.body.dataset.dropped")
    assert page.locator("#run-title").count() == 1 and page.locator("#compare-key").count() == 0


def test_the_page_works_under_its_own_policy(server, browser):
    """The Content-Security-Policy (#23) enforced: the runs table, a run page and the SQL console
    work and nothing the page does is refused by it."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page.goto(server + "#/runs")
        page.wait_for_selector("table tbody tr")
        page.goto(server + "#/run/hot")
        page.wait_for_selector(".chart")
        page.goto(server + "#/sql?query=SELECT%20666%20AS%20injected")
        page.wait_for_selector("#sql-input")
        assert "666" not in page.input_value("#sql-input")  # a link never fills the console
        page.fill("#sql-input", "SELECT 41 + 1 AS answer")
        page.click("#sql-run")
        page.wait_for_selector("#sql-result table")
        assert page.inner_text("#sql-result tbody") == "42"
    finally:
        context.close()
    assert refused == []


def _own_server(root, browser):
    """A server of its own on `root` and a page for it (the caller stops both)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runlake.cli", "--root", root, "ui", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(120_000)
    return port, proc, context, page


def test_a_run_with_20000_keys_is_usable(tmp_path, browser):
    """#23.15: every key's chart was requested at once (20,000 requests) and the page never
    became usable. It shows a page of charts, fetches one when it scrolls near, and filters."""
    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    run = lake.init("wide", id="wide")
    for step in range(3):
        run.log({f"k{i:05d}": float(step + i) for i in range(20_000)})
    run.finish()
    lake.close()
    port, proc, context, page = _own_server(root, browser)
    series = []
    page.on("request", lambda r: series.append(r.url) if "/series?" in r.url else None)
    try:
        wait_for(lambda: answers(port), "the server")
        _open(page, f"http://127.0.0.1:{port}/#/run/wide")
        page.wait_for_selector("#charts-info")
        assert page.locator(".chart").count() == 60
        assert "60 of 20000 charts" in page.inner_text("#charts-info")
        page.wait_for_function("document.querySelector('.chart .chart-body')?.dataset.total === '3'")
        assert len(series) < 60  # only the charts near the view were fetched
        page.fill("#key-filter", "k1999")
        page.press("#key-filter", "Enter")
        page.wait_for_function("document.querySelectorAll('.chart').length === 10")  # k19990..k19999
        page.wait_for_function(
            "document.querySelector('.chart[data-key=\"k19999\"] .chart-body')?.dataset.total === '3'"
        )
    finally:
        context.close()
        _stop(proc)


def test_media_alerts_and_tables_are_shown_on_the_run_page(tmp_path, browser):
    """#25: images (alone, in a list, in a table cell), audio, a GIF video, sandboxed HTML, a
    histogram, a chart's table and the run's alerts are drawn; none gets an empty line chart."""
    import urllib.parse

    import numpy as np

    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    run = lake.init("media", id="med")
    table = runlake.Table(columns=["id", "image"])
    table.add_data(1, runlake.Image(np.full((6, 6, 3), 200, dtype=np.uint8)))
    run.log(
        {
            "loss": 0.5,
            "sample": runlake.Image(np.zeros((6, 6, 3), dtype=np.uint8), caption="zeros"),
            "batch": [runlake.Image(np.full((4, 4), i * 60, dtype=np.uint8)) for i in range(3)],
            "cells": table,
            "tone": runlake.Audio(np.sin(np.linspace(0, 100, 800)), sample_rate=8000),
            "clip": runlake.Video(np.zeros((2, 3, 4, 4), dtype=np.uint8), fps=2),
            "page": runlake.Html("<p id='inside'>hello</p><script>alert(1)</script>"),
            "weights": runlake.Histogram(np.arange(20.0), num_bins=5),
            "cm": runlake.plot.confusion_matrix(y_true=[0, 1], preds=[0, 0], class_names=["a", "b"]),
        }
    )
    run.alert("diverging", "loss went up", level="WARN")
    run.finish()
    lake.close()
    port, proc, context, page = _own_server(root, browser)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        wait_for(lambda: answers(port), "the server")
        base = f"http://127.0.0.1:{port}/"
        _open(page, base + "#/run/med")
        page.wait_for_selector("#media")
        keys = page.eval_on_selector_all("#media .chart", "els => els.map(e => e.dataset.key)")
        assert keys == ["batch", "cells", "clip", "cm_table", "page", "sample", "tone", "weights"]
        charts = page.eval_on_selector_all("#charts .chart", "els => els.map(e => e.dataset.key)")
        assert charts == ["loss"]  # media never get an empty line chart
        page.wait_for_function(
            "[...document.querySelectorAll('#media img')].filter(i => i.complete && i.naturalWidth > 0).length >= 6"
        )
        assert page.locator("#media .chart[data-key=batch] img").count() == 3
        page.wait_for_selector("#media .chart[data-key=cells] table img")  # an image in a table cell
        page.wait_for_selector("#media .chart[data-key=cm_table] table td")
        assert "wandb/confusion_matrix/v1" in page.inner_text("#media .chart[data-key=cm_table]")
        page.wait_for_selector("#media .chart[data-key=cm_table] .spec-body[data-drawn=confusion_matrix]")
        assert (
            page.locator("#media audio").count() == 1
            and page.locator("#media svg.histogram rect").count() == 5
        )
        assert page.locator("#media iframe[sandbox]").count() == 1
        assert page.locator("#summary svg.histogram rect").count() == 5  # a picture, not JSON
        assert "image 6×6 · zeros" in page.inner_text("#summary")
        assert "diverging" in page.inner_text("#alerts") and "loss went up" in page.inner_text("#alerts")
        _shot(page, "media.png", tmp_path)
        # the files: served by path, HTML sandboxed, anything outside media/ refused
        html_path = page.get_attribute("#media iframe", "src").split("path=")[1]
        with urllib.request.urlopen(base + "api/media?path=" + html_path) as response:
            assert "sandbox" in response.headers["Content-Security-Policy"]
            assert response.headers["Content-Type"].startswith("text/html")
        for bad in (
            "runs/media/med/meta/state.json",
            "media/../runs/x/y/z.png",
            "/etc/passwd",
            "media/a/b/images/../../x.png",
        ):
            try:
                urllib.request.urlopen(base + "api/media?" + urllib.parse.urlencode({"path": bad}))
                raise AssertionError(f"{bad} was served")
            except urllib.error.HTTPError as exc:
                assert exc.code == 400, bad
    finally:
        context.close()
        _stop(proc)
    assert dialogs == []  # the logged page's script never ran


def test_logged_charts_are_drawn_as_their_charts(tmp_path, browser):
    """#29: a chart logged with `wandb.plot.*` was shown as its table. Each is drawn as the
    chart its spec names — lines, scatters, line series and PR/ROC curves with one series per
    line or class, bars and histograms as bars, a confusion matrix as a grid of counts —, its
    data one click away; a chart nobody can draw shows its table; a table is paged."""
    import numpy as np

    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    run = lake.init("charts", id="ch")
    points = runlake.Table(columns=["x", "y"], data=[[i, i * i] for i in range(30)])
    scores = np.random.default_rng(0).random((40, 2))
    truth = [0, 1] * 20
    probas = np.column_stack([1 - scores[:, 0], scores[:, 0]])
    bars = runlake.Table(columns=["name", "n"], data=[["a", 3], ["b", 5], ["c", -1]])
    run.log(
        {
            "curve": runlake.plot.line(points, "x", "y", title="y over x"),
            "cloud": runlake.plot.scatter(points, "x", "y"),
            "counts": runlake.plot.bar(bars, "name", "n"),
            "spread": runlake.plot.histogram(
                runlake.Table(columns=["v"], data=[[float(v)] for v in range(100)]), "v"
            ),
            "two": runlake.plot.line_series([0, 1, 2], [[1, 2, 3], [3, 2, 1]], keys=["up", "down"]),
            "cm": runlake.plot.confusion_matrix(
                y_true=[0, 1, 1, 0, 1], preds=[0, 1, 0, 0, 1], class_names=["a", "b"]
            ),
            "pr": runlake.plot.pr_curve(truth, probas, labels=["neg", "pos"]),
            "roc": runlake.plot.roc_curve(truth, probas, labels=["neg", "pos"]),
            "odd": runlake.plot_table("someone/custom/v3", bars, {"name": "name"}),
            "long": runlake.Table(columns=["i"], data=[[i] for i in range(45)]),
        }
    )
    run.finish()
    lake.close()
    port, proc, context, page = _own_server(root, browser)
    try:
        wait_for(lambda: answers(port), "the server")
        _open(page, f"http://127.0.0.1:{port}/#/run/ch")

        def drawn(key):
            body = f"#media .chart[data-key={key}_table] .spec-body"
            page.wait_for_selector(body + "[data-drawn]", state="attached")
            return page.locator(body)

        line = drawn("curve")
        assert line.locator("canvas").count() >= 1
        assert (line.get_attribute("data-series"), line.get_attribute("data-points")) == ("1", "30")
        assert "y over x" in page.inner_text("#media .chart[data-key=curve_table]")
        assert drawn("cloud").get_attribute("data-points") == "30"
        counts = drawn("counts")
        assert counts.locator("rect.bar").count() == 3
        assert counts.locator("rect.bar title").all_text_contents() == ["a: 3", "b: 5", "c: -1"]
        assert drawn("spread").locator("rect.bar").count() == 20  # 100 values in 20 bins
        assert drawn("two").get_attribute("data-series") == "2"
        grid = drawn("cm")
        assert grid.get_attribute("data-cells") == "4"
        assert sorted(grid.locator("td").all_inner_texts()) == ["0", "1", "2", "2"]
        assert drawn("pr").get_attribute("data-series") == "2"  # a curve per class
        assert drawn("roc").get_attribute("data-series") == "2"
        odd = drawn("odd")
        assert "no drawing for chart someone/custom/v3" in odd.inner_text()
        page.wait_for_selector("#media .chart[data-key=odd_table] .spec-data table td")  # its data, open
        # the data of a drawn chart is one click away
        page.click("#media .chart[data-key=counts_table] .spec-data summary")
        page.wait_for_selector("#media .chart[data-key=counts_table] .spec-data table td")
        # a table of 45 rows, 20 at a time
        table = page.locator("#media .chart[data-key=long] .media-table")
        page.wait_for_selector("#media .chart[data-key=long] .table-range")
        assert table.locator(".table-range").inner_text() == "rows 1–20 of 45 × 1 columns"
        table.locator(".table-next").click()
        page.wait_for_function(
            "document.querySelector('#media .chart[data-key=long] .table-range').textContent.startsWith('rows 21')"
        )
        assert table.locator("td").first.inner_text() == "20"
        # the summary says what each value is, never its JSON
        summary = page.inner_text("#summary")
        assert "chart wandb/bar/v0" in summary and "table, 45 rows × 1 columns" in summary
        assert '"_type"' not in summary
        _shot(page, "fixture-charts.png", tmp_path)
    finally:
        context.close()
        _stop(proc)


def test_artifacts_tab_and_a_workspace_picked_from_a_sweep_or_a_lineage_tree(tmp_path, browser):
    """#29: a run page lists the artifacts it logged and used (versions, type, size, files on
    demand, who logged what it used); a sweep in the runs table opens a workspace of its runs;
    the lineage tree's ticked runs open a workspace."""
    root = str(tmp_path / "root")
    config = {
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"lr": {"values": [0.1, 0.01, 0.001]}},
    }
    sweep_id = runlake.sweep(config, project="sw", root=root)

    def train():
        run = runlake.init(root=root)
        for epoch in range(5):
            run.log({"loss": run.config["lr"] * (5 - epoch), "acc": epoch / 5})

    assert runlake.agent(sweep_id, function=train, root=root) == 3
    lake = runlake.Lake(root)
    producer = lake.init("sw", id="producer")
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 2048)
    artifact = runlake.Artifact("model", type="model")
    artifact.add_file(str(weights))
    artifact.add_file(str(weights), name="copy/weights.bin")
    producer.log_artifact(artifact)
    producer.log({"loss": 1.0})
    producer.finish()
    consumer = lake.init("sw", id="consumer", fork_from="producer?_step=0")
    consumer.use_artifact("model:latest")
    consumer.log({"loss": 0.5})
    consumer.finish()
    lake.close()
    port, proc, context, page = _own_server(root, browser)
    try:
        wait_for(lambda: answers(port), "the server")
        base = f"http://127.0.0.1:{port}/"
        _open(page, base + "#/run/producer")
        logged = page.locator('#artifacts details.artifact[data-direction="output"]')
        logged.wait_for()
        assert logged.get_attribute("data-artifact") == "model:v0"
        assert "model · 4.0 KiB · 2 files" in logged.inner_text()
        logged.locator("summary").click()
        page.wait_for_selector("#artifacts table.artifact-files td")
        assert page.locator("#artifacts table.artifact-files tr td:first-child").all_inner_texts() == [
            "copy/weights.bin",
            "weights.bin",
        ]
        _open(page, base + "#/run/consumer")
        used = page.locator('#artifacts details.artifact[data-direction="input"]')
        used.wait_for()
        assert "logged by producer" in used.inner_text()
        # the lineage tree: tick both, open them as a workspace
        page.locator('#lineage input.pick[value="producer"]').check()
        page.click("#workspace-picked")
        page.wait_for_function("location.hash.startsWith('#/workspace')")
        page.wait_for_selector("#ws-legend .ws-run")
        assert sorted(
            page.eval_on_selector_all("#ws-legend .ws-run", "els => els.map(e => e.dataset.run)")
        ) == [
            "consumer",
            "producer",
        ]
        # a sweep's runs as a workspace, from the runs table's sweeps
        _open(page, base + "#/?project=sw")
        page.click(f'#sweeps tr[data-sweep="{sweep_id}"] a.sweep-workspace')
        page.wait_for_function(
            "document.querySelectorAll('.ws-panel .chart-body[data-series]').length === 2"
            " && [...document.querySelectorAll('.ws-panel .chart-body')].every(b => b.dataset.series === '3')"
        )
        assert f"3 runs of sweep {sweep_id}" in page.inner_text("h1")
        for query, code in (
            ("api/runs/nope/artifacts", 404),
            ("api/workspace?sweep=nope", 404),
            ("api/artifact-files?project=sw&name=model&version=x", 400),
        ):
            try:
                urllib.request.urlopen(base + query)
                raise AssertionError(f"{query} was answered")
            except urllib.error.HTTPError as exc:
                assert exc.code == code, query
    finally:
        context.close()
        _stop(proc)


def test_small_values_get_readable_ticks_and_a_constant_a_band(server, page):
    """#29: a constant 3e-4 was labelled "0.001, 0, 0, 0" on its y axis."""
    _open(page, server + "#/")
    ticks = page.evaluate("tickText([0.00028, 0.00029, 0.0003, 0.00031, 0.00032])")
    assert len(set(ticks)) == 5 and all("e-4" in t for t in ticks), ticks
    assert page.evaluate("tickText([0, 0.25, 0.5, 0.75, 1])") == ["0.00", "0.25", "0.50", "0.75", "1.00"]
    assert page.evaluate("tickText([0, 20000, 40000])") == ["0", "20000", "40000"]
    assert page.evaluate("tickText([1000000, 2000000])") == ["1.0e+6", "2.0e+6"]
    low, high = page.evaluate("yRange(null, 0.0003, 0.0003)")
    assert low < 0.0003 < high and high - low < 0.0001


def test_the_all_projects_table_says_each_runs_project(server, page):
    """#29: the all-projects runs table had no project column."""
    _open(page, server + "#/")
    heads = page.locator("#runs-table th").all_inner_texts()
    assert "project" in [h.strip() for h in heads]
    projects = set(page.locator("#runs-body td.project-cell").all_inner_texts())
    assert {"demo", "pbt"} <= projects
    _open(page, server + "#/?project=demo")
    assert page.locator("#runs-body td.project-cell").count() == 0  # one project: no column


def test_config_columns_can_be_shown_in_the_runs_table(server, page):
    """#29: config columns could not be shown."""
    _open(page, server + "#/?project=demo")
    options = page.locator("#add-config-column option").all_inner_texts()
    assert "lr" in options
    page.select_option("#add-config-column", "lr")
    page.wait_for_function("location.hash.includes('config=lr')")
    page.wait_for_selector("#runs-body td.config-cell")
    assert "config.lr" in page.locator("#runs-table th").all_inner_texts()
    values = page.locator("#runs-body tr[data-run=hot] td.config-cell").all_inner_texts()
    assert values == ["0.5"]


def test_system_charts_and_the_console_tab_on_the_run_page(tmp_path, browser, capsys):
    """#30: a run's system metrics are drawn one chart per key, and its console lines are shown
    (stderr marked) and searchable; a bad pattern is a 400, never a traceback."""
    import sys
    import urllib.parse

    from runlake.write.system_stats import Probe

    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    run = lake.init("sys", id="talk", settings={"x_stats_sampling_interval": 3600})
    probe = Probe()
    for step in range(5):
        run.log({"loss": 1.0 / (step + 1)})
        print(f"step {step} done")
        run._syncer.streams.sample(probe)
    print("something broke", file=sys.stderr)
    run.finish()
    lake.close()
    capsys.readouterr()
    port, proc, context, page = _own_server(root, browser)
    try:
        wait_for(lambda: answers(port), "the server")
        base = f"http://127.0.0.1:{port}/"
        _open(page, base + "#/run/talk")
        page.wait_for_selector("#system .system-chart")
        keys = page.eval_on_selector_all("#system .system-chart", "els => els.map(e => e.dataset.key)")
        assert "system.cpu" in keys and "system.memory_percent" in keys
        page.wait_for_function("document.querySelectorAll('#console .console-line').length === 6")
        assert page.locator("#console .console-line.stderr").inner_text() == "something broke"
        page.fill("#console-search", r"step [24]")
        page.press("#console-search", "Enter")
        page.wait_for_function("document.querySelectorAll('#console .console-line').length === 2")
        assert page.locator("#charts .chart").count() == 1  # system keys never get a history chart
        try:
            urllib.request.urlopen(base + "api/runs/talk/console?" + urllib.parse.urlencode({"grep": "("}))
            raise AssertionError("a bad pattern was answered")
        except urllib.error.HTTPError as exc:
            assert exc.code == 400 and "regular expression" in json.loads(exc.read())["error"]
    finally:
        context.close()
        _stop(proc)


def test_a_workspace_of_six_runs_shows_every_key_then_two_groups_with_bands(tmp_path, browser):
    """#29: six runs picked, every key a panel with six series in one colour per run (the same
    in every panel), a run toggled off in all panels, then grouped into two groups with bands
    computed on the server."""
    import urllib.parse

    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    ids = [f"w{i}" for i in range(6)]
    for i, run_id in enumerate(ids):
        run = lake.init("ws", id=run_id, group="baseline" if i < 3 else "tuned", config={"lr": 0.1 * (i + 1)})
        for step in range(60):
            run.log({"loss": (i + 1) / (step + 1), "acc": step / 60 + i / 100, "lr": 0.1 * (i + 1)})
        run.finish()
    lake.close()
    port, proc, context, page = _own_server(root, browser)
    try:
        wait_for(lambda: answers(port), "the server")
        base = f"http://127.0.0.1:{port}/"
        _open(page, base + "#/workspace?runs=" + ",".join(ids))
        page.wait_for_function("document.querySelectorAll('.ws-panel').length === 3")
        assert page.eval_on_selector_all(".ws-panel", "els => els.map(e => e.dataset.key)") == [
            "acc",
            "loss",
            "lr",
        ]
        page.wait_for_function(
            "[...document.querySelectorAll('.ws-panel .chart-body')].every(b => b.dataset.series === '6')"
        )
        swatches = page.eval_on_selector_all("#ws-legend .swatch", "els => els.map(e => e.style.background)")
        assert len(swatches) == 6 and len(set(swatches)) == 6  # one colour per run
        strokes = page.evaluate(
            "[...document.querySelectorAll('.ws-panel')].map(p => p.querySelector('.u-legend .u-series:nth-child(2) .u-marker')?.style.borderColor)"
        )
        assert len(set(strokes)) == 1  # the first run drawn in the same colour in every panel
        _shot(page, "fixture-workspace.png", tmp_path)
        # the exact values under the cursor: one row per run, largest first
        page.hover(".ws-panel[data-key=lr] .u-over", position={"x": 150, "y": 60})
        page.wait_for_selector(".ws-panel[data-key=lr] .chart-tip", state="visible")
        tip = page.locator(".ws-panel[data-key=lr] .chart-tip b").all_inner_texts()
        assert tip == ["0.6", "0.5", "0.4", "0.3", "0.2", "0.1"]
        # x: relative time (`_runtime`), then a logged key as the step metric
        page.select_option("#ws-x", "_runtime")
        page.wait_for_function(
            "[...document.querySelectorAll('.ws-panel .chart-body')].every(b => b.dataset.xLabel === '_runtime' && b.dataset.series === '6')"
        )
        page.select_option("#ws-x", "acc")
        page.wait_for_function(
            "[...document.querySelectorAll('.ws-panel .chart-body')].every(b => b.dataset.xLabel === 'acc' && b.dataset.series === '6')"
        )
        page.select_option("#ws-x", "step")
        page.wait_for_function(
            "[...document.querySelectorAll('.ws-panel .chart-body')].every(b => b.dataset.xLabel === 'step')"
        )
        page.click("#ws-legend .ws-run[data-run=w5] input")  # off in every panel
        page.wait_for_function(
            "[...document.querySelectorAll('.ws-panel .chart-body')].every(b => b.dataset.series === '5')"
        )
        page.click("#ws-legend .ws-run[data-run=w5] input")  # and on again
        page.wait_for_function(
            "[...document.querySelectorAll('.ws-panel .chart-body')].every(b => b.dataset.series === '6')"
        )
        page.select_option("#ws-group", "group")
        page.wait_for_function(
            "[...document.querySelectorAll('.ws-panel .chart-body')].every(b => b.dataset.groups === '2' && b.dataset.bands === '2')"
        )
        assert page.get_attribute(".ws-panel[data-key=loss] .chart-body", "data-runs") == "3,3"
        _shot(page, "fixture-workspace-grouped.png", tmp_path)
        page.select_option("#ws-x", "_runtime")  # groups binned over relative time
        page.wait_for_function(
            "[...document.querySelectorAll('.ws-panel .chart-body')].every(b => b.dataset.xLabel === '_runtime' && b.dataset.groups === '2')"
        )
        for query, code in (
            ("api/group?" + urllib.parse.urlencode({"runs": "w0", "key": "loss", "by": "nonsense"}), 400),
            ("api/workspace?runs=w0,nope", 404),  # the workspace's runs, read in one request
            ("api/workspace?runs=" + ",".join(f"r{i}" for i in range(2001)), 400),
            ("api/workspace?runs=", 400),
        ):
            try:
                urllib.request.urlopen(base + query)
                raise AssertionError(f"{query[:60]} was answered")
            except urllib.error.HTTPError as exc:
                assert exc.code == code, query[:60]
                assert "error" in json.loads(exc.read())
        with urllib.request.urlopen(base + "api/workspace?runs=w1,w0") as response:
            picked = json.loads(response.read())["runs"]
        assert [(r["run_id"], r["group"], r["keys"]) for r in picked] == [
            ("w1", "baseline", ["acc", "loss", "lr"]),
            ("w0", "baseline", ["acc", "loss", "lr"]),
        ]
    finally:
        context.close()
        _stop(proc)


def test_the_readmes_screenshots_are_of_the_demo_population(tmp_path, browser, capsys):
    """#29: the README's pictures are of a realistic root (`runlake demo --population`: a
    16-member PBT population with exploits, a fine-tuning fork, images and histograms), made
    here: RUNLAKE_SCREENSHOTS=docs/screenshots keeps them."""
    from runlake import demo

    root = str(tmp_path / "root")
    ids = demo.population(root)
    capsys.readouterr()
    lake = runlake.Lake(root)
    exploited = lake.sql(
        "SELECT DISTINCT run_id FROM segments WHERE segment > 0 AND parent_run_id <> run_id ORDER BY run_id"
    )["run_id"].to_list()
    assert exploited  # members that took a better member's history (PBT's exploit)
    forked = exploited[-1]
    assert lake.runs().height == 17 and lake.lineage("finetune").height >= 2
    lake.close()
    port, proc, context, page = _own_server(root, browser)
    try:
        wait_for(lambda: answers(port), "the server")
        base = f"http://127.0.0.1:{port}/"
        _open(page, base + "#/?project=pbt-demo&summary=loss,acc")
        page.wait_for_selector("#runs-body tr")
        _shot(page, "runs.png", tmp_path)
        _open(page, base + "#/run/" + forked)
        page.wait_for_selector("#charts .chart[data-key=loss] canvas")
        page.wait_for_selector("#media img")
        _shot(page, "run.png", tmp_path)
        _open(page, base + "#/population?project=pbt-demo&metric=loss")
        page.wait_for_selector("#population g.member")
        _shot(page, "population.png", tmp_path)
        # the fine-tuning run's evaluation: its logged charts drawn as charts
        _open(page, base + "#/run/finetune")
        page.wait_for_selector("#media .spec-body[data-drawn=confusion_matrix]", state="attached")
        page.wait_for_selector("#media .spec-body[data-drawn=bar] rect.bar", state="attached")
        assert page.locator("#media .spec-body[data-drawn=bar] rect.bar").count() == 16
        target = os.path.join(SHOTS or str(tmp_path), "charts.png")
        page.locator("#media").screenshot(path=target)
        assert os.path.getsize(target) > 10_000
        _open(page, base + "#/workspace?group=group&band=minmax&keys=^(loss|acc)$&runs=" + ",".join(ids))
        page.wait_for_function(
            "[...document.querySelectorAll('.ws-panel .chart-body')].every(b => b.dataset.groups === '2')"
        )
        _shot(page, "workspace.png", tmp_path)
    finally:
        context.close()
        _stop(proc)


def test_fork_and_rewind_markers_are_labelled_and_values_shown_under_the_cursor(server, page):
    """#29: fork and rewind lines were unlabelled; a chart says what each is, and a tooltip
    gives the exact values under the cursor."""
    page.add_init_script(
        "window.__drawn = []; const fill = CanvasRenderingContext2D.prototype.fillText;"
        "CanvasRenderingContext2D.prototype.fillText = function (t, ...a) { window.__drawn.push(String(t)); return fill.call(this, t, ...a); };"
    )
    _open(page, server + "#/run/hot")
    page.wait_for_selector("#charts .chart[data-key=loss] canvas")
    page.wait_for_function("window.__drawn.some(t => t.startsWith('fork @20'))")
    assert "fork @20 ← base" in page.evaluate("window.__drawn")
    page.hover("#charts .chart[data-key=loss] .u-over", position={"x": 200, "y": 40})
    tip = page.locator("#charts .chart[data-key=loss] .chart-tip")
    tip.wait_for(state="visible")
    assert "step" in tip.inner_text() and tip.locator("b").count() >= 1


def test_the_runs_table_sorts_by_a_summary_or_config_column(server, page):
    """#29: any summary or config key is a column, and a column to sort by."""
    _open(page, server + "#/?project=demo&summary=loss&config=lr&sort=summary.loss&order=asc")
    rows = page.locator("#runs-body tr")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.run)") == ["hot", "base"]  # 0.01 < 1/60
    page.locator("#runs-table th", has_text="config.lr").click()  # descending by lr: 0.5, 0.1
    page.wait_for_function(
        "[...document.querySelectorAll('#runs-table th')].some(th => th.textContent === 'config.lr ▼')"
    )
    assert page.locator("#runs-body tr").first.get_attribute("data-run") == "hot"
    page.locator("#runs-table th", has_text="config.lr").click()  # and ascending
    page.wait_for_function("document.querySelector('#runs-body tr')?.dataset.run === 'base'")
    assert "▲" in page.locator("#runs-table th", has_text="config.lr").inner_text()


def test_the_runs_table_takes_the_apis_filter_language(server, page):
    """#29: the runs table filters with W&B's MongoDB-style filters (runlake.Api's language);
    a filter that is not JSON, or names an unknown operator, is a 400 saying so."""
    import urllib.parse

    _open(page, server + "#/?project=demo")
    page.fill("#filters", '{"config.lr": {"$gt": 0.2}}')
    page.press("#filters", "Enter")
    page.wait_for_function("document.querySelectorAll('#runs-body tr').length === 1")
    assert page.locator("#runs-body tr").get_attribute("data-run") == "hot"  # lr 0.5; base has 0.1
    for bad, said in (("{not json", "not JSON"), ('{"config.lr": {"$near": 1}}', "$near")):
        try:
            urllib.request.urlopen(
                server + "api/runs?" + urllib.parse.urlencode({"project": "demo", "filters": bad})
            )
            raise AssertionError(f"{bad} was answered")
        except urllib.error.HTTPError as exc:
            assert exc.code == 400 and said in json.loads(exc.read())["error"]


def test_a_histogram_over_steps_is_a_heat_map_and_an_image_has_a_step_slider(tmp_path, browser):
    """#29: W&B's default view of a histogram over time (bins x steps), and images by step."""
    import numpy as np

    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    run = lake.init("kinds", id="k", settings={"console": "off", "x_disable_stats": True})
    rng = np.random.default_rng(0)
    for step in range(20):
        row = {
            "weights": runlake.Histogram(rng.normal(step / 5, 1, 500), num_bins=16),
            "loss": 1 / (step + 1),
        }
        if step % 5 == 0:
            row["sample"] = runlake.Image(
                np.full((8, 8, 3), step * 10, dtype=np.uint8), caption=f"step {step}"
            )
            row["note"] = f"<b>checkpoint</b> {step}"  # text: a table of step -> text, shown as text
            row["topk"] = [step, step + 1, step + 2]  # a list: a table of step -> list
        run.log(row)
    run.finish()
    lake.close()
    port, proc, context, page = _own_server(root, browser)
    try:
        wait_for(lambda: answers(port), "the server")
        _open(page, f"http://127.0.0.1:{port}/#/run/k")
        page.wait_for_selector("#media .chart[data-key=weights] canvas.heatmap")
        canvas = page.locator("#media .chart[data-key=weights] canvas.heatmap")
        assert canvas.get_attribute("data-steps") == "20" and canvas.get_attribute("data-bins") == "32"
        page.wait_for_selector("#media .chart[data-key=sample] .step-slider")
        last = page.get_attribute("#media .chart[data-key=sample] img.stepped", "src")
        page.eval_on_selector(
            "#media .chart[data-key=sample] .step-slider",
            "s => { s.value = 0; s.dispatchEvent(new Event('input')); }",
        )
        first = page.get_attribute("#media .chart[data-key=sample] img.stepped", "src")
        assert first != last and "sample_0_" in first
        assert "step 0" in page.inner_text("#media .chart[data-key=sample] .over-steps")
        page.wait_for_selector("#media .chart[data-key=note] table.text-steps td")
        texts = page.eval_on_selector_all(
            "#media .chart[data-key=note] table.text-steps tr td:nth-child(2)",
            "ts => ts.map(t => t.textContent)",
        )
        assert texts == [f"<b>checkpoint</b> {s}" for s in (0, 5, 10, 15)]
        assert page.locator("#media b").count() == 0  # shown as text, never as markup
        page.wait_for_selector("#media .chart[data-key=topk] table.text-steps td")
        lists = page.eval_on_selector_all(
            "#media .chart[data-key=topk] table.text-steps tr td:nth-child(2)",
            "ts => ts.map(t => t.textContent)",
        )
        assert lists == [f"[{s},{s + 1},{s + 2}]" for s in (0, 5, 10, 15)]
        assert page.locator("#charts .chart").count() == 1  # loss only: no empty frames for media or text
    finally:
        context.close()
        _stop(proc)
