"""#23 security: user SQL cannot write, read outside the root or fetch; the web app answers only
its own page (Host, Origin, JSON bodies, the per-start secret), stops queries whose client went
away, and answers hostile input with a 4xx JSON error, never a 500 or a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import duckdb
import pytest
from servers import answers, free_port, wait_for

import runlake
from runlake.errors import QueryError


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    lake = runlake.Lake(str(tmp_path_factory.mktemp("security") / "root"))
    run = lake.init("p", id="a")
    for step in range(20):
        run.log({"x": float(step)})
    run.finish()
    yield lake
    lake.close()


WRITES = [
    "EXPLAIN ANALYZE COPY (SELECT 'echo pwned') TO '{evil}'",
    "explain analyse COPY (SELECT 1) TO '{evil}' (FORMAT csv)",
    "/* x */ -- y\n EXPLAIN ANALYZE COPY (SELECT 1) TO '{evil}'",
    "EXPLAIN (FORMAT json) COPY (SELECT 1) TO '{evil}'",
    "EXPLAIN ANALYZE EXPLAIN ANALYZE COPY (SELECT 1) TO '{evil}'",
    "SELECT 1; COPY (SELECT 1) TO '{evil}'",
    "COPY (SELECT 1) TO '{inside}'",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{inside}'",
    "EXPLAIN ANALYZE DELETE FROM run_meta",
    "EXPLAIN ANALYZE CREATE OR REPLACE VIEW runs AS SELECT 1 AS run_id",
    "DELETE FROM run_meta",
    "CREATE OR REPLACE VIEW runs AS SELECT 1 AS run_id",
    "PIVOT (SELECT 1 AS a) ON a",
    "SET enable_external_access = true",
    "RESET allowed_directories",
    "SET VARIABLE runlake_parts = ['/etc/passwd']",
    "ATTACH '{evil}' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "PRAGMA enable_profiling",
    "CALL pragma_version()",
    "CHECKPOINT",
]


@pytest.mark.parametrize("template", WRITES)
def test_sql_that_would_write_is_refused_and_writes_nothing(lake, tmp_path, template):
    evil = tmp_path / "pwned.txt"
    inside = os.path.join(lake.url, "x.csv")
    before = lake.runs()
    with pytest.raises(QueryError, match="only reads|syntax error"):
        lake.sql(template.format(evil=evil, inside=inside))
    assert not evil.exists() and not os.path.exists(inside)
    assert lake.runs().equals(before)
    assert lake.history("a")["x"].to_list() == [float(s) for s in range(20)]
    # and another process sees the same catalog
    other = runlake.Lake(lake.url)
    assert other.runs()["run_id"].to_list() == ["a"]
    other.close()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('{outside}')",
        "SELECT * FROM read_csv('{outside}')",
        "SELECT * FROM read_text('{root}/../secret.txt')",
        "SELECT * FROM glob('{root}/../*')",
        "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
        "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
        "SELECT * FROM sqlite_scan('{outside}', 't')",
    ],
)
def test_sql_reads_nothing_outside_the_root_and_fetches_nothing(lake, tmp_path, query):
    outside = tmp_path / "secret.txt"
    outside.write_text("hunter2-content\n")
    with pytest.raises(QueryError) as refused:
        lake.sql(query.format(outside=outside, root=lake.url))
    assert "hunter2" not in str(refused.value)


def test_sql_reads_the_root_and_explains_reads(lake):
    assert lake.sql("SELECT count(*) AS n FROM history WHERE key = 'x'")["n"].to_list() == [20]
    assert lake.sql("EXPLAIN ANALYZE SELECT count(*) FROM history").height == 1
    assert lake.sql("DESCRIBE runs").height > 5
    assert lake.sql("SUMMARIZE SELECT step FROM history").height == 1
    assert lake.sql("FROM range(3)").height == 3
    assert lake.sql("SELECT * FROM query('SELECT 42 AS a')")["a"].to_list() == [42]
    # the sandbox's settings stay locked whatever the query
    assert lake.sql("SELECT current_setting('enable_external_access') AS v")["v"].to_list() == [False]


def test_sql_time_and_row_limits(lake):
    with pytest.raises(QueryError, match="time limit"):
        lake.sql("SELECT count(*) FROM range(100000000000) AS a", timeout=0.2)
    assert lake.sql("SELECT * FROM range(1000000)", max_rows=7).height == 7
    result = lake.query("SELECT * FROM range(1000000)", max_rows=10)
    assert result.truncated and result.frame.height == 10
    assert not lake.query("SELECT 1").truncated
    result = lake.query("SELECT repeat('x', 1000) AS s FROM range(100000)", max_bytes=1 << 20)
    assert result.truncated and 0 < result.frame.height < 100000
    with pytest.raises(ValueError, match="timeout"):
        lake.sql("SELECT 1", timeout=-1)


def test_the_connection_of_your_own_still_writes(lake):
    con = lake.connect()  # runlake.connect() is the user's own copy: they may change it
    con.execute("DELETE FROM run_meta")
    assert lake.runs().height == 1


def test_garbled_files_never_reach_sql_as_numbers(tmp_path):
    """#23.9: DuckDB does not check page checksums; SQL checks each file once before it reads."""
    lake = runlake.Lake(str(tmp_path / "root"))
    run = lake.init("p", id="a")
    for step in range(500):
        run.log({"x": step * 0.37 + 1.0})
    run.finish()
    lake.compact(grace=0)
    (path,) = [p for (p,) in lake.reader.catalog.con.execute("SELECT DISTINCT path FROM parts").fetchall()]
    lake.close()
    with open(path, "rb") as fh:
        data = bytearray(fh.read())
    pages = [i for i in range(len(data)) if data[i : i + 4] == b"PAR1"]
    middle = (pages[0] + 4 + len(data) // 2) // 2
    for offset in range(middle, middle + 20):
        garbled = bytearray(data)
        garbled[offset] ^= 0x40
        with open(path, "wb") as fh:
            fh.write(garbled)
        fresh = runlake.Lake(str(tmp_path / "root"))
        try:
            values = fresh.sql("SELECT value FROM history WHERE key = 'x' ORDER BY step")["value"].to_list()
        except runlake.RunlakeError as exc:
            assert "cannot be read" in str(exc) or "Error" in str(exc)
        else:
            assert values == [s * 0.37 + 1.0 for s in range(500)], f"byte {offset} read as other numbers"
        finally:
            fresh.close()
            os.utime(path, ns=(time.time_ns(), time.time_ns() + offset))  # a new stamp: checked again


# ---- the web app -------------------------------------------------------------------------------


def _start(root: str, *extra: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runlake.cli", "--root", root, "ui", "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: answers(port) or proc.poll() is not None, "the server")
    assert proc.poll() is None, proc.stderr.read()
    return proc, port


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def _call(port: int, path: str, method: str = "GET", body: bytes | None = None, headers=None):
    """(status, headers, body) of one request to the server, whatever the status."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("sec") / "root")
    lake = runlake.Lake(root)
    parent = lake.init("p", id="parent")
    for step in range(10):
        parent.log({"loss": float("nan") if step == 5 else 1.0 / (step + 1), "inf": float("inf")})
    parent.finish()
    child = lake.init("p", id="child", fork_from="parent?_step=5")
    child.log({"loss": 0.1, "inf": 1.0})
    child.finish()
    lake.close()
    proc, port = _start(root, "--sql-timeout", "600")
    status, _, page = _call(port, "/")
    assert status == 200
    secret = page.decode().split('name="runlake-secret" content="', 1)[1].split('"', 1)[0]
    yield root, port, secret
    err = _stop(proc)
    assert "Traceback" not in err, err


def _sql(port: int, secret: str, query: str, **headers: str):
    body = json.dumps({"query": query}).encode()
    return _call(
        port,
        "/api/sql",
        "POST",
        body,
        {"Content-Type": "application/json", "X-Runlake-Secret": secret, **headers},
    )


@pytest.mark.slow
def test_a_cross_site_page_cannot_use_the_console(served, tmp_path):
    _, port, secret = served
    evil = tmp_path / "bashrc"
    query = json.dumps({"query": f"COPY (SELECT 'echo pwned') TO '{evil}'"}).encode()
    # a "simple" cross-site request: text/plain, no secret
    status, _, body = _call(port, "/api/sql", "POST", query, {"Content-Type": "text/plain"})
    assert status == 415 and b"JSON" in body
    status, _, _ = _call(
        port, "/api/sql", "POST", b"query=SELECT+1", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 415
    # JSON without the page's secret (a cross-origin fetch would need a preflight it never gets)
    status, _, body = _call(port, "/api/sql", "POST", query, {"Content-Type": "application/json"})
    assert status == 403 and b"secret" in body
    # a foreign Origin, even with the secret
    status, _, _ = _sql(port, secret, "SELECT 1", Origin="http://evil.example")
    assert status == 403
    # DNS rebinding: another Host name is refused on every path
    for path in ("/", "/api/projects", "/api/runs", "/static/app.js"):
        status, _, body = _call(port, path, headers={"Host": f"evil.example:{port}"})
        assert status == 403 and b"host" in body
    # GET never runs SQL
    status, _, _ = _call(port, "/api/sql?query=SELECT%201")
    assert status == 405
    # the page itself: same origin, with its secret
    status, _, body = _sql(port, secret, "SELECT 1 AS a", Origin=f"http://127.0.0.1:{port}")
    assert status == 200 and json.loads(body)["rows"] == [[1]]
    status, _, body = _sql(port, secret, f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{evil}'")
    assert status == 400 and b"only reads" in body
    assert not evil.exists()
    for name in ("localhost", "[::1]"):
        status, _, _ = _call(port, "/api/projects", headers={"Host": f"{name}:{port}"})
        assert status == 200


@pytest.mark.slow
def test_the_page_cannot_be_framed_and_never_runs_a_query_from_its_link(served):
    _, port, _ = served
    _, headers, _ = _call(port, "/")
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    app = _call(port, "/static/app.js")[2].decode()
    assert 'q.get("query")' not in app


@pytest.mark.slow
def test_hostile_parameters_get_a_4xx_json_error(served):
    _, port, secret = served
    paths = [
        "/api/runs?offset=-1",
        "/api/runs?limit=99999999999999999999",
        "/api/runs?limit=abc",
        "/api/runs?sort=%27;DROP",
        "/api/runs?project=..%2F..",
        "/api/runs/..%2F..%2Fetc/series?key=x",
        "/api/runs/parent/series?key=loss&segment=abc",
        "/api/runs/parent/series?key=loss&segment=-3",
        "/api/runs/parent/series?key=loss&buckets=-5",
        "/api/runs/parent/series?key=loss&buckets=" + "9" * 5000,
        "/api/runs/parent/series?key=loss&lo=nan",
        "/api/runs/parent/series?key=loss&x=%00",
        "/api/compare?runs=parent,child&key=loss&buckets=0",
        "/api/compare?runs=&key=",
        "/api/changes?since=abc",
        "/api/changes?since=nan",
        "/api/population?project=%ff",
        "/api/population?project=parent&metric=%27;DROP",
        "/api/workspace?runs=%00",
        "/api/workspace?runs=..%2F..%2Fetc&keys=(",
        "/api/workspace?sweep=%27;DROP",
        "/api/panel?runs=..%2Fx&key=loss",
        "/api/panel?runs=parent&key=%00",
        "/api/panel?runs=parent,child&key=loss&x=%27;DROP&lo=abc",
        "/api/panel?runs=parent&key=loss&buckets=-1&lo=nan",
        "/api/group?runs=parent&key=loss&by=config.%00&x=_runtime",
        "/api/runs/..%2Fx/artifacts",
        "/api/artifact-files?project=p&name=n&version=-1",
        "/api/artifact-files?project=p&name=n&version=" + "9" * 50,
        "/api/table?path=x.parquet&offset=-5",
        "/api/table?path=..%2F..%2Fetc%2Fpasswd.parquet&limit=10000000",
        "/api/runs?sort=summary.%27;DROP&summary=%00",
        "/api/runs/%E2%80%AE",
        "/nope",
    ]
    for path in paths:
        status, headers, body = _call(port, path)
        assert status < 500, (path, status, body)
        if status >= 400:
            assert "error" in json.loads(body), path
    for body, kind in [
        (b"\xff\xfe", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"query": 5}', "application/json"),
        (b'{"query": "SELECT 1", "format": "exe"}', "application/json"),
        (b"{" * 100_000, "application/json"),
    ]:
        status, _, answer = _call(
            port, "/api/sql", "POST", body, {"Content-Type": kind, "X-Runlake-Secret": secret}
        )
        assert 400 <= status < 500 and "error" in json.loads(answer)
    status, _, _ = _call(
        port, "/api/sql", "POST", b"{}", {"Content-Type": "application/json", "X-Runlake-Secret": "é"}
    )
    assert status == 403


@pytest.mark.slow
def test_nan_and_infinity_are_null_in_answers(served):
    _, port, _ = served
    status, _, body = _call(port, "/api/compare?runs=parent,child&key=loss")
    assert status == 200, body
    json.loads(body)  # valid JSON: NaN and inf became null
    status, _, body = _call(port, "/api/compare?runs=parent,child&key=inf")
    assert status == 200, body
    status, _, body = _call(port, "/api/runs/parent")
    assert status == 200 and b"NaN" not in body and b"Infinity" not in body


@pytest.mark.slow
def test_a_query_whose_client_went_away_is_stopped(served):
    _, port, secret = served
    body = json.dumps({"query": "SELECT count(*) FROM range(100000000000) AS a, range(1000) AS b"}).encode()
    request = (
        f"POST /api/sql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"X-Runlake-Secret: {secret}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    for _ in range(2):  # every slot taken by a query that would run for hours
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(request)
            time.sleep(0.5)  # not a timing assumption: the slots are waited on below either way
    # the server stops both (the time limit is 600 s here): a new query gets a slot again
    wait_for(lambda: _sql(port, secret, "SELECT 2 AS b")[0] == 200, "a free query slot", deadline=300)


@pytest.mark.slow
def test_a_token_server_refuses_bad_tokens_without_a_fault(served):
    root, _, _ = served
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runlake.cli",
            "--root",
            root,
            "ui",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
            "--token",
            "sesame",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: answers(port), "the server")
        for token in ("é", "x" * 10000, "", "sesame2"):
            status, _, body = _call(port, "/api/projects", headers={"Authorization": "Bearer " + token})
            assert status == 401, token
        status, _, body = _call(port, "/api/projects?token=%C3%A9%00")
        assert status == 401
        status, _, _ = _call(port, "/api/projects", headers={"Authorization": "Bearer sesame"})
        assert status == 200
    finally:
        err = _stop(proc)
    assert "Traceback" not in err, err


def test_duckdb_still_has_the_settings_the_sandbox_relies_on():
    names = {r[0] for r in duckdb.connect().execute("SELECT name FROM duckdb_settings()").fetchall()}
    assert {"allowed_directories", "enable_external_access", "lock_configuration"} <= names


# ---- paths are never globs; the export is whole or refused -----------------------------------


def test_a_root_named_like_a_glob_reads_itself_not_its_sibling(tmp_path):
    """#23.7: `exp[1]` as a glob matches `exp1`; every reader must take the path literally."""
    for name, value in (("exp1", 2.0), ("exp[1]", 1.0), ("e*p?", 3.0)):
        lake = runlake.Lake(str(tmp_path / name))
        run = lake.init("p", id="a")
        run.log({"x": value})
        run.finish()
        lake.export_catalog()
        lake.close()
    for name, value in (("exp[1]", 1.0), ("e*p?", 3.0)):
        root = str(tmp_path / name)
        lake = runlake.Lake(root)
        assert lake.history("a")["x"].to_list() == [value]
        assert lake.sql("SELECT value FROM history WHERE key = 'x'")["value"].to_list() == [value]
        assert runlake.scan(root).filter(key="x").collect()["value"].to_list() == [value]
        lake.compact(grace=0)
        assert lake.history("a")["x"].to_list() == [value]
        assert lake.sql("SELECT value FROM raw_history WHERE key = 'x'")["value"].to_list() == [value]
        lake.close()


def test_a_torn_export_is_refused_not_read_as_a_mix(tmp_path):
    """#23.8: an export killed between two tables leaves old and new tables; readers refuse them."""
    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    run = lake.init("p", id="a")
    run.log({"x": 1.0})
    run.finish()
    lake.export_catalog()
    assert runlake.scan(root).filter(key="x").collect().height == 1
    old = (tmp_path / "root" / "_catalog" / "runs.parquet").read_bytes()
    more = lake.init("p", id="b")
    more.log({"x": 2.0})
    more.finish()
    lake.export_catalog()
    (tmp_path / "root" / "_catalog" / "runs.parquet").write_bytes(old)  # as a kill after one table
    with pytest.raises(runlake.RunlakeError, match="torn"):
        runlake.scan(root)
    lake.export_catalog()
    assert runlake.scan(root).filter(key="x").collect().height == 2
    lake.close()


def test_an_export_and_a_compaction_with_a_quote_in_tmpdir(tmp_path, monkeypatch):
    """#23.12: the export once built `COPY ... TO '<tmp>'` with an f-string."""
    odd = tmp_path / "it's; DROP"
    odd.mkdir()
    monkeypatch.setenv("TMPDIR", str(odd))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    run = lake.init("p", id="a")
    for step in range(5):
        run.log({"x": float(step)})
    run.finish()
    lake.compact(grace=0)
    lake.export_catalog()
    assert runlake.scan(root).filter(key="x").collect().height == 5
    lake.close()


def test_console_queries_are_rate_limited(tmp_path):
    from starlette.testclient import TestClient

    from runlake.ui.server import create_app

    lake = runlake.Lake(str(tmp_path / "root"))
    run = lake.init("p", id="a")
    run.log({"x": 1.0})
    run.finish()
    lake.close()
    app = create_app(str(tmp_path / "root"), allowed_hosts=["testserver"], sql_per_minute=3)
    with TestClient(app) as client:
        headers = {"X-Runlake-Secret": app.state.secret}
        codes = [
            client.post("/api/sql", json={"query": "SELECT 1"}, headers=headers).status_code for _ in range(5)
        ]
    assert codes == [200, 200, 200, 429, 429]
    app.state.lake.close()
