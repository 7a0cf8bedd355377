"""The application's skeleton without Starlette's default middleware layers.

Starlette wraps every app in a ServerErrorMiddleware and an ExceptionMiddleware, and each
service mount added another ExceptionMiddleware: three more `send` wrappers and try blocks per
request. The gateway already turns an unexpected exception into a 500 with the request id, so
here a service's exception handlers are only placed on the scope, where Starlette's endpoint
wrapper (`request_response`) looks them up; what is raised outside an endpoint (404, 405 from
routing) reaches the gateway, which answers it as Starlette's middleware did.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException, WebSocketException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket


def http_exception_response(exc: HTTPException) -> Response:
    """Starlette's answer to an HTTPException: its detail as text."""
    if exc.status_code in {204, 304}:
        return Response(status_code=exc.status_code, headers=exc.headers)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return http_exception_response(exc)


async def _websocket_exception(websocket: WebSocket, exc: Exception) -> None:
    assert isinstance(exc, WebSocketException)
    await websocket.close(code=exc.code, reason=exc.reason)


# What Starlette's ExceptionMiddleware handles when given no handlers.
_DEFAULT_HANDLERS: dict[Any, Any] = {
    HTTPException: _http_exception,
    WebSocketException: _websocket_exception,
}


class ServiceApp:
    """Routes with their exception handlers (Starlette's defaults, then the service's own),
    which render every failure raised in an endpoint in that service's protocol's shape."""

    def __init__(self, app: ASGIApp, handlers: dict[Any, Any] | None = None) -> None:
        self.app = app
        # (exception handlers, status handlers), as ExceptionMiddleware puts them on the scope.
        self.handlers: tuple[dict[Any, Any], dict[int, Any]] = (
            {**_DEFAULT_HANDLERS, **(handlers or {})},
            {},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["starlette.exception_handlers"] = self.handlers
        await self.app(scope, receive, send)


class GatewayApp(Starlette):
    """A Starlette app whose only layers are the ones added with `add_middleware` (the
    gateway): no ServerErrorMiddleware or ExceptionMiddleware of Starlette's around them."""

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = ServiceApp(self.router)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app
