"""`runlake ui`: a Starlette app on uvicorn over one root, read-only.

Starlette because the app is a dozen JSON routes and static files: it is the ASGI toolkit
FastAPI itself is built on, without the request-model layer we do not need, and uvicorn is its
reference server. The frontend (`static/`: HTML, CSS, JavaScript and uPlot, vendored with its
licence) ships in the wheel; nothing is built at install and nothing is fetched from a CDN.

Security (the README's threat model says more): a page on another site must not be able to use
the app, and whoever can reach a non-loopback port must hold the token.
- Host: only the names the server was started for (loopback names, the host it binds, and
  `allowed_hosts`): a DNS-rebinding page sends its own name and is refused (403).
- POST (the SQL console, the only endpoint that runs user input as a query): a JSON body
  (`Content-Type: application/json`, else 415), a same-origin `Origin` when the browser sends
  one, and the per-start secret the server puts in its own page (`X-Runlake-Secret`, as
  Jupyter's XSRF token): another origin cannot read the page, so it cannot send it. A
  cross-origin fetch with that header needs a CORS preflight, which is never granted.
- Token: binding another interface than loopback needs one (`--token`, or one generated and
  printed), checked on every request: the `token` query parameter of the first page (then
  kept in an HttpOnly SameSite=Strict cookie) or an `Authorization: Bearer` header.
- Headers: the page cannot be framed (CSP frame-ancestors 'none', X-Frame-Options DENY),
  scripts come only from the server itself.
- SQL runs in the read-only sandbox (`read/sandbox.py`) with a time limit, a result limit and
  at most `sql_workers` queries at once (more get 429); a query whose client went away is
  stopped. Every refusal is a 4xx JSON error; an unexpected fault is a JSON 500 without details.
The Host, Origin, token and secret checks and the headers are `guard.py`'s; this module is the routes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import json
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import QueryError, RunlakeError, RunNotFoundError
from ..lake import Lake
from . import api, panels
from .guard import HTML_MEDIA_HEADERS, LOOPBACK, MEDIA_CONTENT, Guard, Json, error, hosts_for
from .population import population as population_of

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


def _int(request: Request, name: str, default: int, lo: int = -(2**62), hi: int = 2**62) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)  # type: ignore[arg-type]
    except ValueError:
        raise RunlakeError(f"{name} must be a whole number, got {raw[:40]!r}") from None  # type: ignore[index]
    if not lo <= value <= hi:
        raise RunlakeError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _list(request: Request, name: str) -> list[str]:
    raw = request.query_params.get(name) or ""
    return [part for part in raw.split(",") if part]


def create_app(
    root: str | None = None,
    *,
    token: str | None = None,
    storage_options: dict[str, Any] | None = None,
    allowed_hosts: Sequence[str] | None = LOOPBACK,
    sql_timeout: float = 30.0,
    sql_max_rows: int = 1_000_000,
    sql_max_bytes: int = 256 << 20,
    sql_workers: int = 2,
    sql_per_minute: int = 120,
    sql_memory: str = "2GB",
) -> Starlette:
    """The app over one root. `allowed_hosts`: the Host names it answers (None: any, for a
    server behind a token on every interface); the sql_* limits bound one console query."""
    # many requests a second: a catalog at most 1 s old
    lake = Lake(root, storage_options=storage_options, refresh_every=1.0, sql_memory=sql_memory)
    secret = secrets.token_urlsafe(32)  # per start: the page carries it, other origins cannot read it
    slots = threading.BoundedSemaphore(sql_workers)
    recent: collections.deque[float] = collections.deque()  # when the last minute's queries came

    def endpoint(fn: Callable[[Request], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                try:
                    result = await run_in_threadpool(fn, request)
                except RunNotFoundError:
                    if not lake.refresh_every:
                        raise
                    # the catalog may be up to a second old: a run started since is not yet
                    # in it (a page opened on a run that just began); look again, refreshed
                    await run_in_threadpool(lake.refresh, force=True)
                    result = await run_in_threadpool(fn, request)
            except RunNotFoundError as exc:
                return error(str(exc), 404)
            except (RunlakeError, ValueError, TypeError, OverflowError) as exc:
                return error(str(exc), 400)
            return result if isinstance(result, Response) else Json(result)

        return handle

    def projects(request: Request) -> Any:
        return api.projects(lake) if lake.exists() else []

    def runs(request: Request) -> Any:
        q = request.query_params
        if not lake.exists():
            return {"total": 0, "offset": 0, "limit": 0, "rows": [], "summary_keys": []}
        return api.runs(
            lake,
            project=q.get("project") or None,
            q=q.get("q") or None,
            state=q.get("state") or None,
            group=q.get("group") or None,
            tag=q.get("tag") or None,
            sort=q.get("sort") or "created_at",
            order=q.get("order") or "desc",
            offset=_int(request, "offset", 0, 0),
            limit=_int(request, "limit", 100, 1, 10_000),
            summary_keys=_list(request, "summary"),
            config_keys=_list(request, "config"),
            filters=q.get("filters") or None,
        )

    def run(request: Request) -> Any:
        return api.run(lake, request.path_params["run_id"])

    def console(request: Request) -> Any:
        q = request.query_params
        return panels.console(
            lake,
            request.path_params["run_id"],
            q.get("grep"),
            q.get("label"),
            _int(request, "limit", 2000, 1, 100_000),
        )

    def steps(request: Request) -> Any:
        q = request.query_params
        return panels.steps_of(
            lake, request.path_params["run_id"], q.get("key") or "", _int(request, "limit", 200, 2, 2000)
        )

    def workspace(request: Request) -> Any:
        q = request.query_params
        return api.workspace_runs(lake, _list(request, "runs"), q.get("keys") or None, q.get("sweep") or None)

    def artifacts(request: Request) -> Any:
        return panels.run_artifacts(lake, request.path_params["run_id"])

    def artifact_files(request: Request) -> Any:
        q = request.query_params
        return panels.artifact_files(
            lake, q.get("project") or "", q.get("name") or "", _int(request, "version", 0, 0)
        )

    def panel(request: Request) -> Any:
        q = request.query_params
        return panels.panel(
            lake,
            _list(request, "runs"),
            q.get("key") or "",
            _int(request, "buckets", 400, 10, 1000),
            q.get("x") or None,
            lo=api.bound(q.get("lo"), steps=False),
            hi=api.bound(q.get("hi"), steps=False),
        )

    def group(request: Request) -> Any:
        q = request.query_params
        return panels.group_lines(
            lake,
            _list(request, "runs"),
            q.get("key") or "",
            q.get("by") or "group",
            q.get("band") or "std",
            _int(request, "buckets", 200, 10, 2000),
            q.get("x") or None,
        )

    def system(request: Request) -> Any:
        return panels.system(lake, request.path_params["run_id"])

    def series(request: Request) -> Any:
        q = request.query_params
        segment = q.get("segment")
        return api.series(
            lake,
            request.path_params["run_id"],
            q.get("key") or "",
            x=q.get("x") or "step",
            buckets=_int(request, "buckets", 1000, 1, 100_000),
            lo=api.bound(q.get("lo"), steps=(q.get("x") or "step") == "step"),
            hi=api.bound(q.get("hi"), steps=(q.get("x") or "step") == "step"),
            segment=_int(request, "segment", 0, 0) if segment not in (None, "") else None,
        )

    def compare(request: Request) -> Any:
        return api.compare(
            lake,
            _list(request, "runs"),
            request.query_params.get("key") or "",
            _int(request, "buckets", 1000, 1, 100_000),
            x=request.query_params.get("x") or None,
            lo=api.bound(request.query_params.get("lo"), steps=False),  # filtered in numpy
            hi=api.bound(request.query_params.get("hi"), steps=False),
        )

    def population(request: Request) -> Any:
        return population_of(
            lake, request.query_params.get("project") or "", request.query_params.get("metric") or None
        )

    def media(request: Request) -> Any:
        """A logged media file; HTML is served sandboxed (no script, no same-origin access)."""
        path = request.query_params.get("path") or ""
        try:
            data = lake.media(path)
        except FileNotFoundError as exc:
            return error(str(exc), 404)
        kind = MEDIA_CONTENT.get(os.path.splitext(path)[1].lower(), "application/octet-stream")
        headers = {"Cache-Control": "private, max-age=3600"}  # named by content: never changes
        if kind == "text/html":
            headers.update(HTML_MEDIA_HEADERS)
        return Response(data, media_type=kind, headers=headers)

    def sweeps(request: Request) -> Any:
        return api.sweeps(lake, request.query_params.get("project") or None) if lake.exists() else []

    def table(request: Request) -> Any:
        return api.table(
            lake,
            request.query_params.get("path") or "",
            _int(request, "limit", 50, 1, api.TABLE_ROWS),
            _int(request, "offset", 0, 0),
        )

    def changes(request: Request) -> Any:
        since = api.bound(request.query_params.get("since"), steps=False) or 0.0
        return api.changes(lake, since) if lake.exists() else {"now": since, "runs": []}

    async def sql(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            return error(f"the body is not valid JSON: {exc}", 400)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return error('the body must be a JSON object {"query": "...", "format": "json|csv|parquet"}', 400)
        query, fmt = body["query"], body.get("format") or "json"
        if fmt not in ("json", "csv", "parquet"):
            return error(f"format must be json, csv or parquet, got {str(fmt)[:40]!r}", 400)
        now = time.monotonic()
        while recent and recent[0] < now - 60:
            recent.popleft()
        if len(recent) >= sql_per_minute:
            return error(f"more than {sql_per_minute} queries in a minute: try again shortly", 429)
        recent.append(now)
        if not slots.acquire(blocking=False):
            return error(f"{sql_workers} queries are running already: try again when one has finished", 429)
        cancel = threading.Event()
        try:
            work = asyncio.ensure_future(run_in_threadpool(_answer, lake, query, fmt, cancel, limits))
            while not work.done():
                done, _ = await asyncio.wait({work}, timeout=0.25)
                if not done and await request.is_disconnected():
                    cancel.set()  # the client went away: stop its query (the answer is dropped)
            return work.result()
        finally:
            slots.release()

    limits = {"timeout": sql_timeout, "max_rows": sql_max_rows, "max_bytes": sql_max_bytes}

    with open(os.path.join(STATIC, "index.html"), encoding="utf-8") as fh:
        page = fh.read().replace("{{secret}}", secret)

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html", headers={"Cache-Control": "no-store"})

    routes = [
        Route("/", index),
        Route("/api/projects", endpoint(projects)),
        Route("/api/runs", endpoint(runs)),
        Route("/api/runs/{run_id}", endpoint(run)),
        Route("/api/runs/{run_id}/series", endpoint(series)),
        Route("/api/runs/{run_id}/console", endpoint(console)),
        Route("/api/runs/{run_id}/steps", endpoint(steps)),
        Route("/api/runs/{run_id}/system", endpoint(system)),
        Route("/api/runs/{run_id}/artifacts", endpoint(artifacts)),
        Route("/api/artifact-files", endpoint(artifact_files)),
        Route("/api/compare", endpoint(compare)),
        Route("/api/group", endpoint(group)),
        Route("/api/workspace", endpoint(workspace)),
        Route("/api/panel", endpoint(panel)),
        Route("/api/population", endpoint(population)),
        Route("/api/changes", endpoint(changes)),
        Route("/api/media", endpoint(media)),
        Route("/api/table", endpoint(table)),
        Route("/api/sweeps", endpoint(sweeps)),
        Route("/api/sql", sql, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # read the catalog and check every file's page checksums now, in the background and
        # biggest first, so the first visit does not wait for it (a read checks what is not yet)
        stop = threading.Event()
        checker = threading.Thread(target=api.warm_up, args=(lake, stop), name="runlake-ui-warm-up")
        checker.start()
        try:
            yield
        finally:
            stop.set()
            checker.join()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(str(exc.detail), exc.status_code)

    async def fault(request: Request, exc: Exception) -> Response:
        return error("internal error (the server's log has the details)", 500)

    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, token=token, secret=secret, hosts=allowed_hosts)],
        exception_handlers={HTTPException: http_error, Exception: fault},
        lifespan=lifespan,
    )
    app.state.lake = lake
    app.state.secret = secret
    return app


def _answer(lake: Lake, query: str, fmt: str, cancel: threading.Event, limits: dict[str, Any]) -> Response:
    """One console query's answer, in the format asked for."""
    try:
        result = lake.query(query, cancel=cancel, **limits)
    except (QueryError, ValueError) as exc:
        return error(str(exc), 400)
    except RunlakeError as exc:
        return error(str(exc), 400)
    frame = result.frame
    cut = {"X-Runlake-Truncated": str(frame.height)} if result.truncated else {}
    if fmt == "csv":
        return Response(
            frame.write_csv(),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="query.csv"', **cut},
        )
    if fmt == "parquet":
        sink = io.BytesIO()
        frame.write_parquet(sink)
        return Response(
            sink.getvalue(),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": 'attachment; filename="query.parquet"', **cut},
        )
    shown = frame.head(5000)
    return Json(
        {
            "columns": shown.columns,
            "rows": [list(r.values()) for r in api.json_rows(shown)],
            "total": frame.height,
            "truncated": result.truncated,
        }
    )


def serve(
    root: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8742,
    token: str | None = None,
    open_browser: bool = False,
    storage_options: dict[str, Any] | None = None,
    allowed_hosts: Sequence[str] = (),
    sql_timeout: float = 30.0,
    echo: Callable[[str], None] = print,
) -> None:
    """Run the app until interrupted (the `runlake ui` command)."""
    import uvicorn

    local = host in LOOPBACK
    if not local and token is None:
        token = secrets.token_urlsafe(24)
    app = create_app(
        root,
        token=token,
        storage_options=storage_options,
        allowed_hosts=hosts_for(host, allowed_hosts),
        sql_timeout=sql_timeout,
    )
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    echo(f"runlake ui: {app.state.lake.url} at {url}")
    if open_browser:
        import webbrowser

        threading.Timer(1.0, webbrowser.open, [url]).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")
