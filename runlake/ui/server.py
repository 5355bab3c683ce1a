"""`runlake ui`: a Starlette app on uvicorn over one root, read-only.

Starlette because the app is a dozen JSON routes and static files: it is the ASGI toolkit
FastAPI itself is built on, without the request-model layer we do not need, and uvicorn is its
reference server. The frontend (`static/`: HTML, CSS, JavaScript and uPlot, vendored with its
licence) ships in the wheel; nothing is built at install and nothing is fetched from a CDN.

Security: binds 127.0.0.1 by default. On any other host a token is required (`--token`, or one
generated and printed), checked on every request: the `token` query parameter of the first
page (it is then kept in a cookie) or an `Authorization: Bearer` header.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import os
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import QueryError, RunlakeError, RunNotFoundError
from ..lake import Lake
from . import api

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
COOKIE = "runlake_token"


class TokenCheck(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self.token = token

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if self.token is None:
            return await call_next(request)
        given = (
            request.query_params.get("token")
            or request.cookies.get(COOKIE)
            or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        )
        if not given or not hmac.compare_digest(given, self.token):
            return JSONResponse(
                {"error": "a valid token is required (?token=... or Authorization: Bearer)"}, status_code=401
            )
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
        return response


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)  # type: ignore[arg-type]
    except ValueError:
        raise RunlakeError(f"{name} must be a whole number, got {raw!r}") from None


def _list(request: Request, name: str) -> list[str]:
    raw = request.query_params.get(name) or ""
    return [part for part in raw.split(",") if part]


def create_app(
    root: str | None = None, *, token: str | None = None, storage_options: dict[str, Any] | None = None
) -> Starlette:
    lake = Lake(root, storage_options=storage_options)
    lake.reader.refresh_every = 1.0  # many requests a second: a catalog at most 1 s old

    def endpoint(fn: Callable[[Request], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                try:
                    result = await run_in_threadpool(fn, request)
                except RunNotFoundError:
                    if not lake.reader.refresh_every:
                        raise
                    # the catalog may be up to a second old: a run started since is not yet
                    # in it (a page opened on a run that just began); look again, refreshed
                    await run_in_threadpool(lake.reader.refresh, force=True)
                    result = await run_in_threadpool(fn, request)
            except RunNotFoundError as exc:
                return JSONResponse({"error": str(exc)}, status_code=404)
            except (RunlakeError, ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return result if isinstance(result, Response) else JSONResponse(result)

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
            offset=_int(request, "offset", 0),
            limit=_int(request, "limit", 100),
            summary_keys=_list(request, "summary"),
            config_keys=_list(request, "config"),
        )

    def run(request: Request) -> Any:
        return api.run(lake, request.path_params["run_id"])

    def series(request: Request) -> Any:
        q = request.query_params
        segment = q.get("segment")
        return api.series(
            lake,
            request.path_params["run_id"],
            q.get("key") or "",
            x=q.get("x") or "step",
            buckets=_int(request, "buckets", 1000),
            lo=api.bound(q.get("lo"), steps=(q.get("x") or "step") == "step"),
            hi=api.bound(q.get("hi"), steps=(q.get("x") or "step") == "step"),
            segment=int(segment) if segment not in (None, "") else None,
        )

    def compare(request: Request) -> Any:
        return api.compare(
            lake,
            _list(request, "runs"),
            request.query_params.get("key") or "",
            _int(request, "buckets", 1000),
            x=request.query_params.get("x") or None,
            lo=api.bound(request.query_params.get("lo"), steps=False),  # filtered in numpy
            hi=api.bound(request.query_params.get("hi"), steps=False),
        )

    def population(request: Request) -> Any:
        return api.population(
            lake, request.query_params.get("project") or "", request.query_params.get("metric") or None
        )

    def changes(request: Request) -> Any:
        since = float(request.query_params.get("since") or 0)
        return api.changes(lake, since) if lake.exists() else {"now": since, "runs": []}

    async def sql(request: Request) -> Response:
        body = await request.json() if request.method == "POST" else dict(request.query_params)
        query, fmt = str(body.get("query") or ""), str(body.get("format") or "json")

        def run_query() -> Response:
            try:
                frame = lake.sql(query)
            except QueryError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            if fmt == "csv":
                return Response(
                    frame.write_csv(),
                    media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="query.csv"'},
                )
            if fmt == "parquet":
                sink = io.BytesIO()
                frame.write_parquet(sink)
                return Response(
                    sink.getvalue(),
                    media_type="application/vnd.apache.parquet",
                    headers={"Content-Disposition": 'attachment; filename="query.parquet"'},
                )
            shown = frame.head(5000)
            return JSONResponse(
                {
                    "columns": shown.columns,
                    "rows": [list(r.values()) for r in api._jsonable(shown)],
                    "total": frame.height,
                }
            )

        try:
            return await run_in_threadpool(run_query)
        except (RunlakeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    async def index(request: Request) -> Response:
        return FileResponse(os.path.join(STATIC, "index.html"))

    routes = [
        Route("/", index),
        Route("/api/projects", endpoint(projects)),
        Route("/api/runs", endpoint(runs)),
        Route("/api/runs/{run_id}", endpoint(run)),
        Route("/api/runs/{run_id}/series", endpoint(series)),
        Route("/api/compare", endpoint(compare)),
        Route("/api/population", endpoint(population)),
        Route("/api/changes", endpoint(changes)),
        Route("/api/sql", sql, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # check every file's page checksums now, in the background and biggest first, so the
        # first visit of a run does not wait for it (a read checks what is not checked yet)
        stop = threading.Event()
        checker = threading.Thread(target=api.verify_root, args=(lake, stop), name="runlake-ui-verify")
        checker.start()
        try:
            yield
        finally:
            stop.set()
            checker.join()

    app = Starlette(routes=routes, middleware=[Middleware(TokenCheck, token=token)], lifespan=lifespan)
    app.state.lake = lake
    return app


def serve(
    root: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8742,
    token: str | None = None,
    open_browser: bool = False,
    storage_options: dict[str, Any] | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Run the app until interrupted (the `runlake ui` command)."""
    import uvicorn

    local = host in ("127.0.0.1", "localhost", "::1")
    if not local and token is None:
        token = secrets.token_urlsafe(24)
    app = create_app(root, token=token, storage_options=storage_options)
    url = f"http://{host}:{port}/" + (f"?token={token}" if token else "")
    echo(f"runlake ui: {app.state.lake.url} at {url}")
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, [url]).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")
