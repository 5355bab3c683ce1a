"""The web app's HTTP security layer, one job: who may talk to it and what every answer
carries. `Guard` (plain ASGI) checks the Host against an allow-list (DNS rebinding), the token
(a cookie once given), and for a POST a JSON body, a same-origin Origin and the per-start
secret the page carries; it adds the security headers to every answer. Logged HTML is served
sandboxed. `Json` and `error` are the JSON answers (NaN and infinities as null)."""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import math
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "runlake_token"
SECRET_HEADER = "x-runlake-secret"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class Json(JSONResponse):
    """JSON where a NaN or an infinity (a metric may be one) is null: JSON has neither."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except ValueError:
            return super().render(_finite(content))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def host_name(value: str) -> str:
    """The name part of a Host header (`[::1]:8742` -> `::1`, `Example.org.:80` -> `example.org`)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0].rstrip(".") if value.count(":") == 1 else value.rstrip(".")


class Guard:
    """Host, token, Origin, body type and secret checks, and the security headers (above).
    A plain ASGI middleware: Starlette's BaseHTTPMiddleware would hide a client's disconnect
    from the endpoint (a stopped console query must be noticed)."""

    def __init__(self, app: ASGIApp, token: str | None, secret: str, hosts: Sequence[str] | None) -> None:
        self.app = app
        self.token = token
        self.secret = secret
        self.hosts = None if hosts is None else {host_name(h) for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        api_path = request.url.path.startswith("/api/")
        cookie = self.token is not None and bool(request.query_params.get("token"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if api_path:
                    headers.setdefault("Cache-Control", "no-store")
                if cookie and message.get("status", 500) < 400:
                    assert self.token is not None
                    headers.append("set-cookie", f"{COOKIE}={self.token}; HttpOnly; Path=/; SameSite=strict")
            await send(message)

        refused = self.refuse(request)
        if refused is not None:
            await refused(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def refuse(self, request: Request) -> Response | None:
        host = host_name(request.headers.get("host", ""))
        if self.hosts is not None and host not in self.hosts:
            return error(
                f"this server does not answer for the host {host[:100]!r} (start it with --allow-host to add one)",
                403,
            )
        if self.token is not None:
            given = (
                request.query_params.get("token")
                or request.cookies.get(COOKIE)
                or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            )
            if not given or not _same(given, self.token):
                return error("a valid token is required (?token=... or Authorization: Bearer)", 401)
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and not _same_origin(origin, request):
                return error("cross-origin requests are refused", 403)
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                return error("the body must be JSON (Content-Type: application/json)", 415)
            if not _same(request.headers.get(SECRET_HEADER, ""), self.secret):
                return error(f"the {SECRET_HEADER} header of this server's page is required", 403)
        return None


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison that takes any text (a non-ASCII str is not an error)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def _same_origin(origin: str, request: Request) -> bool:
    host = request.headers.get("host", "")
    return origin.lower() in {f"{request.url.scheme}://{host}".lower()}


MEDIA_CONTENT = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".m4a": "audio/mp4",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".html": "text/html",
    ".json": "application/json",
}
# A logged HTML page runs in a sandbox (an opaque origin: no script, no cookies, no API), and
# only this app's own page may frame it.
HTML_MEDIA_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
}


def hosts_for(host: str, extra: Sequence[str] = ()) -> list[str] | None:
    """The Host names a server bound to `host` answers: loopback names, the host itself and
    `extra`; None (any name) for a wildcard bind (0.0.0.0, ::), which always has a token."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified and not extra:
            return None
    return [*LOOPBACK, host, *extra]
