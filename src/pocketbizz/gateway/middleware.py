"""The gateway: one pure-ASGI layer running small single-purpose stages in order.

CORS (a preflight is answered here) → request context (state, request id) → identity → rate
limit → body limit → the service mounts; the access log and latency metric, and the guard
that turns an unexpected exception into a 500, are around all but CORS. Every answer a stage
or a service makes (429, 413, 500) therefore carries the request id and is logged and counted.

The stages add response headers through ONE send wrapper (`_ResponseStart`) rather than one
nested wrapper each: a cheap request spends a measurable share of its Python time in each
layer a response message passes through.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Mapping
from contextlib import suppress

import structlog
from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pocketbizz.errors import ApiError, PayloadTooLarge, universal_response
from pocketbizz.gateway.asgi import http_exception_response
from pocketbizz.gateway.cors import Cors, is_preflight, merge_headers, on_api_surface
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
_NO_PARAMS: Mapping[str, str] = {}
# ToyyibPay's and Meta's callbacks: signed, no API key, in bursts from a few addresses.
_WEBHOOKS_PREFIX = "/webhooks/"


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state
        settings = state.settings
        limiter = RateLimiter(settings)
        state.services["rate_limiter"] = limiter
        self.cors = Cors(settings.cors_allowed_origins)
        self.identity = IdentityStage(settings)
        self.rate_limit = RateLimitStage(limiter)
        self.body_limit = BodyLimit(settings)
        self.access_log = AccessLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:  # lifespan
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        cors_headers = None
        if on_api_surface(path):
            request_headers = Headers(scope=scope)
            if is_preflight(scope, request_headers):
                await self.cors.preflight(request_headers, send)
                return
            cors_headers = self.cors.response_headers(request_headers.get("origin"))
        scope["pb.state"] = self.state
        request_id = _request_id(scope)
        scope["pb.request_id"] = request_id
        response = _ResponseStart(send, request_id, cors_headers)
        started = time.perf_counter()
        try:
            await self._handle(scope, receive, response, path)
        except _BodyTooLarge as exc:
            if response.started:
                raise
            await universal_response(exc.error)(scope, receive, response)
        except HTTPException as exc:
            # What Starlette's own exception middleware answers (unknown path 404, 405).
            if response.started:
                raise
            await http_exception_response(exc)(scope, receive, response)
        except Exception:
            log.exception("unhandled error", request_id=request_id, path=path)
            if response.started:
                raise
            response.limits = None  # the guard answers from outside the rate limiter
            await _internal_error(request_id)(scope, receive, response)
        finally:
            self.access_log.record(scope, response.status, time.perf_counter() - started)

    async def _handle(
        self, scope: Scope, receive: Receive, send: _ResponseStart, path: str
    ) -> None:
        if path not in _UNLIMITED_PATHS:
            self.identity.resolve(scope)
            if not path.startswith(_APP_PREFIX):
                try:
                    send.limits = await self.rate_limit.check(scope)
                except ApiError as exc:
                    await universal_response(exc)(scope, receive, send)
                    return
        await self.app(scope, self.body_limit.guard(scope, receive), send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["pb.state"] = self.state
        path: str = scope["path"]
        log.info("websocket", route=route_label(path))
        if path not in _UNLIMITED_PATHS:
            self.identity.resolve(scope)
            if not path.startswith(_APP_PREFIX):
                try:
                    await self.rate_limit.check(scope)
                except ApiError as exc:
                    log.info("websocket refused", route=route_label(path), reason=exc.code)
                    await send({"type": "websocket.close", "code": 1008})
                    return
        await self.app(scope, receive, send)


class _ResponseStart:
    """The one send wrapper: adds the stages' headers to the response's start — rate-limit
    state (unless the answer set its own), the request id, CORS — and notes the status."""

    __slots__ = ("cors", "limits", "request_id", "send", "started", "status")

    def __init__(self, send: Send, request_id: str, cors: list[tuple[bytes, bytes]] | None) -> None:
        self.send = send
        self.request_id = request_id
        self.cors = cors
        self.limits: Verdict | None = None
        self.started = False
        self.status = 500  # unless a response starts

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            headers = list(message.get("headers", []))
            if self.limits is not None:
                present = {name.lower() for name, _ in headers}
                headers += [h for h in self.limits.raw_headers() if h[0] not in present]
            headers.append((b"x-request-id", self.request_id.encode()))
            if self.cors is not None:
                headers = merge_headers(headers, self.cors)
            message["headers"] = headers
        await self.send(message)


class AccessLog:
    """One access line and one latency observation per request, labelled by route template.
    Only the path's template is logged: query strings carry API keys and tokens."""

    def __init__(self) -> None:
        # Histogram children by labels: `labels()` builds and hashes a key on every call.
        self._latency: dict[tuple[str, str, int], object] = {}

    def record(self, scope: Scope, status: int, elapsed: float) -> None:
        path: str = scope["path"]
        label = route_label(path)
        method: str = scope["method"]
        key = (label, method, status)
        child = self._latency.get(key)
        if child is None:
            child = self._latency[key] = REQUEST_LATENCY.labels(label, method, str(status))
        child.observe(elapsed)  # type: ignore[attr-defined]
        emit = log.debug if path in _POLLED_PATHS else log.info
        emit(
            "request",
            request_id=scope.get("pb.request_id"),
            method=method,
            route=label,
            status=status,
            ms=round(elapsed * 1000, 2),
        )


class IdentityStage:
    """Resolves the caller (apikey + bearer) once and caches it on the scope for the rate
    limiter and the handlers. A bad token is not answered here: each service answers it in
    its own protocol's shape."""

    def __init__(self, settings: Settings) -> None:
        self.secret = settings.secret

    def resolve(self, scope: Scope) -> None:
        headers = Headers(scope=scope)
        # The query string is parsed only for a key sent there (the realtime socket's way).
        query: Mapping[str, str] = (
            _NO_PARAMS if headers.get("apikey") else QueryParams(scope.get("query_string", b""))
        )
        with suppress(ApiError):
            scope["pb.identity"] = identify(headers, query, self.secret)


class RateLimitStage:
    """Counts each request against its user (verified JWT subject) or client IP; raises 429
    with Retry-After over the limit (a websocket is then closed with 1008). Webhook senders
    have a bucket of their own per IP. The client IP is the peer's, or behind a trusted proxy
    (PB_TRUSTED_PROXIES) the one uvicorn took from X-Forwarded-For."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def check(self, scope: Scope) -> Verdict | None:
        ip = scope["client"][0] if scope.get("client") else "unknown"
        if scope["path"].startswith(_WEBHOOKS_PREFIX):
            return await self.limiter.enforce(self.limiter.webhooks, "webhooks", "webhook", ip)
        key = ("ip", ip)
        identity = scope.get("pb.identity")
        if identity is not None and identity.user_id is not None:
            key = ("user", str(identity.user_id))
        return await self.limiter.enforce(self.limiter.general, "api", *key)


class _BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.error = PayloadTooLarge(
            f"Request body is larger than the limit of {limit} bytes", code="request_too_large"
        )


class BodyLimit:
    """413 for a body over the limit (uploads have their own), whether declared by
    Content-Length or found while streaming."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def guard(self, scope: Scope, receive: Receive) -> Receive:
        """`receive`, counting the body; raises _BodyTooLarge at once for a declared excess."""
        path: str = scope["path"]
        if path.startswith("/storage/v1/object"):
            limit = self.settings.max_upload_bytes
        else:
            limit = self.settings.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            raise _BodyTooLarge(limit)
        received = 0

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        return receive_counted


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# Request ids in the UUID format: a random prefix per process and a counter, unique without
# drawing 16 random bytes and formatting a UUID per request.
_ID_PREFIX = str(uuid.uuid4())[:24]
_id_counter = itertools.count(1)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if 0 < len(candidate) <= 64 and candidate.replace("-", "").isalnum():
                return str(candidate)
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFFFFFF:012x}"


def _internal_error(request_id: str) -> Response:
    exc = ApiError(
        f"Internal server error (request id {request_id})", status=500, code="internal_error"
    )
    return universal_response(exc)
