"""The gateway: small pure-ASGI middlewares, one job each, composed by `GatewayMiddleware`.

Outermost first: request context (state, request id) → access log and latency metrics →
the 500 guard → identity → rate limit → body limit → the service mounts. Every response an
inner layer makes (429, 413, 500) therefore carries the request id and is logged and counted.
"""

from __future__ import annotations

import time
import uuid
from contextlib import suppress

import structlog
from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pocketbizz.errors import ApiError, PayloadTooLarge, universal_response
from pocketbizz.gateway.identity import identify
from pocketbizz.gateway.metrics import REQUEST_LATENCY, route_label
from pocketbizz.gateway.ratelimit import RateLimiter, Verdict
from pocketbizz.settings import Settings
from pocketbizz.state import AppState

log = structlog.get_logger("pocketbizz.access")

_UNLIMITED_PATHS = frozenset({"/health", "/ready", "/metrics"})
# Probes and scrapes poll all day; their access lines are debug so they do not drown the log.
_POLLED_PATHS = _UNLIMITED_PATHS
# The web app's own files and its UI socket: one page load fetches dozens of assets, and shop
# devices behind one NAT share an IP. Its API calls are limited like any client's.
_APP_PREFIX = "/app/"


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, state: AppState) -> None:
        limiter = RateLimiter(state.settings)
        state.services["rate_limiter"] = limiter
        inner: ASGIApp = BodyLimitMiddleware(app, state.settings)
        inner = RateLimitMiddleware(inner, limiter)
        inner = IdentityMiddleware(inner, state.settings)
        inner = ServerErrorMiddleware(inner)
        inner = AccessLogMiddleware(inner)
        self.app = RequestContextMiddleware(inner, state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class RequestContextMiddleware:
    """Makes the app state reachable from the scope; gives each HTTP request an id (the
    caller's X-Request-Id when it is sane) and echoes it on the response."""

    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope["pb.state"] = self.state
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope["pb.request_id"] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


class AccessLogMiddleware:
    """One access line and one latency observation per request, labelled by route template.
    Only the path's template is logged: query strings carry API keys and tokens."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            log.info("websocket", route=route_label(scope["path"]))
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            elapsed = time.perf_counter() - started
            path: str = scope["path"]
            label = route_label(path)
            REQUEST_LATENCY.labels(label, scope["method"], str(status)).observe(elapsed)
            emit = log.debug if path in _POLLED_PATHS else log.info
            emit(
                "request",
                request_id=scope.get("pb.request_id"),
                method=scope["method"],
                route=label,
                status=status,
                ms=round(elapsed * 1000, 2),
            )


class ServerErrorMiddleware:
    """An unexpected exception becomes a 500 naming the request id, logged with its stack;
    never a stack in the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            request_id = str(scope.get("pb.request_id", ""))
            log.exception("unhandled error", request_id=request_id, path=scope["path"])
            if started:
                raise
            await _internal_error(request_id)(scope, receive, send)


class IdentityMiddleware:
    """Resolves the caller (apikey + bearer) once and caches it on the scope for the rate
    limiter and the handlers. A bad token is not answered here: each service answers it in
    its own protocol's shape."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"] not in _UNLIMITED_PATHS:
            with suppress(ApiError):
                scope["pb.identity"] = identify(
                    Headers(scope=scope),
                    QueryParams(scope.get("query_string", b"")),
                    self.settings.secret,
                )
        await self.app(scope, receive, send)


class RateLimitMiddleware:
    """Counts each request against its user (verified JWT subject) or client IP: 429 with
    Retry-After over the limit (a websocket is closed with 1008), RateLimit-* headers below."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] not in ("http", "websocket")
            or path in _UNLIMITED_PATHS
            or path.startswith(_APP_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        key = ("ip", scope["client"][0] if scope.get("client") else "unknown")
        identity = scope.get("pb.identity")
        if identity is not None and identity.user_id is not None:
            key = ("user", str(identity.user_id))
        try:
            verdict = await self.limiter.enforce(self.limiter.general, "api", *key)
        except ApiError as exc:
            if scope["type"] == "websocket":
                log.info("websocket refused", route=route_label(scope["path"]), reason=exc.code)
                await send({"type": "websocket.close", "code": 1008})
            else:
                await universal_response(exc)(scope, receive, send)
            return
        if verdict is None or scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _with_limit_headers(send, verdict))


def _with_limit_headers(send: Send, verdict: Verdict) -> Send:
    extra = [(name.lower().encode(), value.encode()) for name, value in verdict.headers().items()]

    async def send_with_limits(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers += [(name, value) for name, value in extra if name not in present]
            message["headers"] = headers
        await send(message)

    return send_with_limits


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for a body over the limit (uploads have their own), whether declared by
    Content-Length or found while streaming."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/storage/v1/object"):
            limit = self.settings.max_upload_bytes
        else:
            limit = self.settings.max_body_bytes
        started = False
        received = 0

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                raise _BodyTooLarge
            await self.app(scope, receive_counted, send_tracked)
        except _BodyTooLarge:
            if started:
                raise
            too_large = PayloadTooLarge(
                f"Request body is larger than the limit of {limit} bytes",
                code="request_too_large",
            )
            await universal_response(too_large)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if 0 < len(candidate) <= 64 and candidate.replace("-", "").isalnum():
                return str(candidate)
    return str(uuid.uuid4())


def _internal_error(request_id: str) -> Response:
    exc = ApiError(
        f"Internal server error (request id {request_id})", status=500, code="internal_error"
    )
    return universal_response(exc)
