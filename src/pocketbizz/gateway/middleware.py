"""Pure-ASGI middleware around every request: state, request id, body limit, logs, metrics."""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pocketbizz.errors import ApiError, PayloadTooLarge, universal_response
from pocketbizz.gateway.identity import identify
from pocketbizz.gateway.metrics import REQUEST_LATENCY, route_label
from pocketbizz.gateway.ratelimit import RateLimiter, Verdict
from pocketbizz.state import AppState

log = structlog.get_logger("pocketbizz.access")


class _BodyTooLarge(Exception):
    pass


_UNLIMITED_PATHS = frozenset({"/health", "/ready", "/metrics"})
# Probes and scrapes poll all day; their access lines are debug so they do not drown the log.
_POLLED_PATHS = _UNLIMITED_PATHS


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, state: AppState) -> None:
        self.app = app
        self.state = state
        self.limiter = RateLimiter(state.settings)
        state.services["rate_limiter"] = self.limiter

    async def _rate_limit(self, scope: Scope) -> Verdict | None:
        """Count the request against its user (verified JWT subject) or client IP.

        The identity is resolved here once and cached on the scope for the handlers; a bad
        token is not an error here — the handler answers it in its own protocol's shape."""
        if scope["path"] in _UNLIMITED_PATHS:
            return None
        key = ("ip", scope["client"][0] if scope.get("client") else "unknown")
        try:
            identity = identify(
                Headers(scope=scope),
                QueryParams(scope.get("query_string", b"")),
                self.state.settings.secret,
            )
        except ApiError:
            identity = None
        if identity is not None:
            scope["pb.identity"] = identity
            if identity.user_id is not None:
                key = ("user", str(identity.user_id))
        return await self.limiter.enforce(self.limiter.general, "api", *key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope["pb.state"] = self.state
            # The path only: the query string carries the apikey (and maybe a token).
            route = route_label(scope["path"])
            try:
                await self._rate_limit(scope)
            except ApiError:
                log.info("websocket refused", route=route, reason="rate limited")
                await send({"type": "websocket.close", "code": 1008})
                return
            log.info("websocket", route=route)
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        scope["pb.state"] = self.state
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope["pb.request_id"] = request_id
        path: str = scope["path"]
        limit = self._body_limit(path)
        status_holder = {"status": 500, "started": False}
        verdict: Verdict | None = None

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                if verdict is not None:
                    names = {name.lower() for name, _ in headers}
                    for name, value in verdict.headers().items():
                        if name.lower().encode() not in names:
                            headers.append((name.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        declared = _content_length(scope)
        try:
            try:
                verdict = await self._rate_limit(scope)
            except ApiError as exc:
                await universal_response(exc)(scope, receive, send_wrapper)
                return
            if declared is not None and declared > limit:
                raise _BodyTooLarge
            received = 0

            async def receive_wrapper() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise _BodyTooLarge
                return message

            await self.app(scope, receive_wrapper, send_wrapper)
        except _BodyTooLarge:
            if status_holder["started"]:
                raise
            too_large = PayloadTooLarge(
                f"Request body is larger than the limit of {limit} bytes",
                code="request_too_large",
            )
            await universal_response(too_large)(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error", request_id=request_id, path=path)
            if status_holder["started"]:
                raise
            await _internal_error(request_id)(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            status = status_holder["status"]
            label = route_label(path)
            REQUEST_LATENCY.labels(label, scope["method"], str(status)).observe(elapsed)
            emit = log.debug if path in _POLLED_PATHS else log.info
            emit(
                "request",
                request_id=request_id,
                method=scope["method"],
                route=label,
                status=status,
                ms=round(elapsed * 1000, 2),
            )

    def _body_limit(self, path: str) -> int:
        settings = self.state.settings
        if path.startswith("/storage/v1/object"):
            return settings.max_upload_bytes
        return settings.max_body_bytes


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
