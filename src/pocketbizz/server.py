"""The ASGI application: the gateway middleware around one mount per service."""

from __future__ import annotations

import asyncio
import gc
import hmac
import importlib
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, cast

import asyncpg
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.types import ASGIApp

from pocketbizz import observability
from pocketbizz.db import Database, pending_migrations
from pocketbizz.gateway import metrics as gateway_metrics
from pocketbizz.gateway.asgi import GatewayApp, ServiceApp
from pocketbizz.gateway.middleware import GatewayMiddleware
from pocketbizz.messages import routes as message_routes
from pocketbizz.receipts import routes as receipt_routes
from pocketbizz.settings import Settings
from pocketbizz.state import AppState, app_state

# Each service package has a `routes` module exposing `routes` (mounted at its prefix) and, for
# its one exception handler, `error_handlers`; the package may expose `startup(state)` /
# `shutdown(state)` coroutines.
SERVICES = {
    "auth": "/auth/v1",
    "rest": "/rest/v1",
    "storage": "/storage/v1",
    "functions": "/functions/v1",
    "realtime": "/realtime/v1",
}

# Packages with `startup(state)` / `shutdown(state)` not mounted as a service: the operator's
# activity recorder and gauges (its routes are mounted below), then the in-process job worker.
BACKGROUND = ("ops", "jobs")


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


log = structlog.get_logger("pocketbizz.server")


async def ready(request: Request) -> Response:
    state = app_state(request)
    try:
        async with state.db.pool.acquire(timeout=state.settings.pool_acquisition_timeout) as conn:
            pending = await pending_migrations(cast(asyncpg.Connection, conn))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # The reason (host, port, authentication) is for the operator's log, not the caller.
        log.warning("not ready: database unavailable", error=str(exc) or type(exc).__name__)
        return JSONResponse(
            {"status": "unavailable", "reason": "database unavailable"}, status_code=503
        )
    if pending:
        versions = [m.version for m in pending]
        return JSONResponse(
            {"status": "unavailable", "reason": "pending migrations", "pending": versions},
            status_code=503,
        )
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    """Not public: with PB_METRICS_TOKEN set, only `Authorization: Bearer <token>` is answered
    (401 otherwise); without it, only a loopback caller that did not come through a proxy is,
    and everyone else gets 404, as if there were no such endpoint."""
    state = app_state(request)
    token = state.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse(
                {"message": "a valid bearer token is required"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    elif not _direct_loopback(request):
        return JSONResponse({"message": "not found"}, status_code=404)
    _record_pool(state.db)
    body, content_type = gateway_metrics.exposition()
    return Response(body, media_type=content_type)


def _direct_loopback(request: Request) -> bool:
    # A reverse proxy on the same host connects from loopback too; it adds a forwarding header.
    if "x-forwarded-for" in request.headers or "forwarded" in request.headers:
        return False
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _record_pool(db: Database) -> None:
    in_use, size = db.pool_stats()
    gateway_metrics.record_pool(in_use, size, db.waiting)


async def _record_pool_periodically(db: Database) -> None:
    """With several processes a scrape reads every process's last recorded pool state."""
    while True:
        _record_pool(db)
        await asyncio.sleep(1)


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
        acquisition_timeout=settings.pool_acquisition_timeout,
        direct_dsn=settings.database_direct_url,
    )


def _service_app(module_name: str) -> ASGIApp:
    """A service's routes behind its one exception handler (`error_handlers`), which renders
    every failure in that API's own shape: GoTrue, PostgREST, Storage or Functions."""
    module = importlib.import_module(module_name)
    # Realtime has no `error_handlers`: it answers its errors itself.
    return ServiceApp(Router(routes=module.routes), getattr(module, "error_handlers", None))


def _client_app_routes(settings: Settings) -> list[Any]:
    """The PocketBizz app's web build at /app/ (a client of this server's own API, given its
    URL and anon key), and / leading there, so a browser on the server's URL gets the app."""
    from starlette.responses import RedirectResponse

    from pocketbizz.app import AppConfig, create_web_app
    from pocketbizz.gateway.tokens import api_keys

    async def to_app(request: Request) -> Response:
        return RedirectResponse("/app/")

    config = AppConfig(
        backend_url=settings.url,
        anon_key=api_keys(settings.secret)["anon_key"],
        data_dir=settings.data_dir / "app",  # the app's offline files, per signed-in user
    )
    return [Route("/", to_app), Mount("/app", app=create_web_app(config))]


def create_app(settings: Settings, db: Database) -> Starlette:
    state = AppState(settings=settings, db=db)
    modules = {
        name: importlib.import_module(f"pocketbizz.{name}") for name in (*SERVICES, *BACKGROUND)
    }

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.open()
        recorder = None
        if gateway_metrics.multiprocess_dir() is not None:
            recorder = asyncio.create_task(_record_pool_periodically(db))
        started = []
        state.notifications.start()  # subscribers join it during their startups
        try:
            for module in modules.values():
                hook = getattr(module, "startup", None)
                if hook is not None:
                    await hook(state)
                started.append(module)
            # What start-up made lives as long as the process: frozen, the collector's full
            # passes no longer walk it on every request-heavy minute.
            gc.freeze()
            yield
        finally:
            for module in reversed(started):
                hook = getattr(module, "shutdown", None)
                if hook is not None:
                    await hook(state)
            await state.notifications.close()
            if recorder is not None:
                recorder.cancel()
                with suppress(asyncio.CancelledError):
                    await recorder
            gateway_metrics.forget_this_process()
            await db.close()

    routes: list[Any] = [
        Route("/health", health),
        Route("/ready", ready),
        Route("/metrics", metrics),
    ]
    # The operator's API before /functions/v1 (whose `{name}` would take "admin"); its page.
    ops_routes = importlib.import_module("pocketbizz.ops.routes")
    routes.append(Mount("/functions/v1/admin", app=_service_app(ops_routes.__name__)))
    routes.append(Mount("/admin", routes=ops_routes.dashboard_routes))
    for name, prefix in SERVICES.items():
        routes.append(Mount(prefix, app=_service_app(f"pocketbizz.{name}.routes")))
    # The public e-receipt page a printed receipt's QR code opens (no API key needed).
    routes.append(Mount("/r", routes=receipt_routes.routes))
    routes += message_routes.routes  # /webhooks/whatsapp (signed by Meta, no API key)
    routes += importlib.import_module("pocketbizz.payments.routes").routes  # /webhooks/toyyibpay
    routes += _client_app_routes(settings)

    # The gateway is the app's one middleware (CORS is its first stage).
    app = GatewayApp(routes=routes, lifespan=lifespan)
    app.state.pb = state
    app.add_middleware(GatewayMiddleware, state=state)
    return app


def app_from_environment() -> Starlette:
    """The app of one worker process when `serve --workers N` runs several."""
    from pocketbizz.logging import configure_logging

    settings = Settings()
    configure_logging(settings)
    observability.configure(settings, "server")  # Sentry, when SENTRY_DSN is set
    if not settings.database_url:
        raise RuntimeError("workers need DATABASE_URL (set by `pocketbizz serve`)")
    return create_app(settings, runtime_database(settings, settings.database_url))
