"""The ASGI application: the gateway middleware around one mount per service."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from pocketbizz.db import Database, pending_migrations
from pocketbizz.gateway.middleware import GatewayMiddleware
from pocketbizz.settings import Settings
from pocketbizz.state import AppState, app_state

# Each service package has a `routes` module exposing `routes` (mounted at its prefix) and may
# expose `startup(state)` / `shutdown(state)` coroutines.
SERVICES = {
    "auth": "/auth/v1",
    "rest": "/rest/v1",
    "storage": "/storage/v1",
    "functions": "/functions/v1",
    "realtime": "/realtime/v1",
}


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    state = app_state(request)
    try:
        async with state.db.pool.acquire() as conn:
            pending = await pending_migrations(cast(asyncpg.Connection, conn))
    except (OSError, asyncpg.PostgresError) as exc:
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    if pending:
        versions = [m.version for m in pending]
        return JSONResponse(
            {"status": "unavailable", "reason": "pending migrations", "pending": versions},
            status_code=503,
        )
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class _PoolCollector:
    """Reports the live pool of whichever app is running, read at scrape time."""

    def __init__(self) -> None:
        self.db: Database | None = None

    def collect(self) -> Any:
        in_use, size = self.db.pool_stats() if self.db else (0, 0)
        gauge = GaugeMetricFamily("pocketbizz_db_pool_connections", "DB pool", labels=["state"])
        gauge.add_metric(["in_use"], in_use)
        gauge.add_metric(["size"], size)
        yield gauge


_POOL_COLLECTOR = _PoolCollector()
REGISTRY.register(_POOL_COLLECTOR)


def runtime_database(settings: Settings, owner_dsn: str) -> Database:
    """The request pool: it logs in as `authenticator`, never as the owner."""
    return Database(
        owner_dsn,
        user="authenticator",
        password=settings.authenticator_secret,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        statement_cache_size=settings.statement_cache_size,
        statement_timeouts=settings.statement_timeouts,
    )


def _client_app_routes(settings: Settings) -> list[Any]:
    """The PocketBizz app's web build at /app/ (a client of this server's own API, given its
    URL and anon key), and / leading there, so a browser on the server's URL gets the app."""
    from starlette.responses import RedirectResponse

    from pocketbizz.app import AppConfig, create_web_app
    from pocketbizz.gateway.tokens import api_keys

    async def to_app(request: Request) -> Response:
        return RedirectResponse("/app/")

    config = AppConfig(backend_url=settings.url, anon_key=api_keys(settings.secret)["anon_key"])
    return [Route("/", to_app), Mount("/app", app=create_web_app(config))]


def create_app(settings: Settings, db: Database) -> Starlette:
    state = AppState(settings=settings, db=db)
    modules = {name: importlib.import_module(f"pocketbizz.{name}") for name in SERVICES}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.open()
        _POOL_COLLECTOR.db = db
        started = []
        try:
            for module in modules.values():
                hook = getattr(module, "startup", None)
                if hook is not None:
                    await hook(state)
                started.append(module)
            yield
        finally:
            for module in reversed(started):
                hook = getattr(module, "shutdown", None)
                if hook is not None:
                    await hook(state)
            await db.close()

    routes: list[Any] = [
        Route("/health", health),
        Route("/ready", ready),
        Route("/metrics", metrics),
    ]
    for name, prefix in SERVICES.items():
        service_routes = importlib.import_module(f"pocketbizz.{name}.routes").routes
        routes.append(Mount(prefix, routes=service_routes))
    routes += _client_app_routes(settings)

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.pb = state
    app.add_middleware(GatewayMiddleware, state=state)
    return app


def app_from_environment() -> Starlette:
    """The app of one worker process when `serve --workers N` runs several."""
    from pocketbizz.logging import configure_logging

    settings = Settings()
    configure_logging(settings)
    if not settings.database_url:
        raise RuntimeError("workers need DATABASE_URL (set by `pocketbizz serve`)")
    return create_app(settings, runtime_database(settings, settings.database_url))
