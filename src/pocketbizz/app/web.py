"""The app as a web (PWA) build: an ASGI app to mount at `/app` or to serve alone.

Flet runs each browser tab's `main(page)` here, on the server, and the browser draws it with
the Flutter web bundle shipped in `flet-web` (`no_cdn=True`: nothing is fetched from the
internet). `config.json` publishes the backend's public settings for standalone apps.
"""

from __future__ import annotations

from typing import Any

import flet_web.fastapi as flet_fastapi
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from pocketbizz.app.config import AppConfig
from pocketbizz.app.main import make_main


class _StartsFlet:
    """Starts Flet's session housekeeping (expired sessions are evicted) on the first request:
    a mounted app gets no lifespan events of its own."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.started and scope["type"] in ("http", "websocket"):
            self.started = True
            await flet_fastapi.app_manager.start()
        await self.app(scope, receive, send)


def create_web_app(config: AppConfig) -> Starlette:
    async def public_config(request: Request) -> Response:
        return JSONResponse(config.public())

    flet_app = flet_fastapi.app(
        make_main(config),
        no_cdn=True,
        app_name="PocketBizz",
        app_short_name="PocketBizz",
        app_description="Sell, stock and customers for a small business",
    )
    return Starlette(
        routes=[
            Route("/config.json", public_config),
            Mount("", app=_StartsFlet(flet_app)),
        ]
    )
