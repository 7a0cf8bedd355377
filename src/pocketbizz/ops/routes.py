"""Operator HTTP: `/functions/v1/admin/*` (JSON, errors as Functions' `{"error", "code"}`) and
the dashboard page at `/admin/`.

Every admin endpoint first checks the caller is service_role or an operator, then runs as
service_role: the figures count all tenants, which no tenant's role may read.
"""

from __future__ import annotations

import html
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pocketbizz.db.database import SERVICE
from pocketbizz.errors import (
    BadRequest,
    NotFound,
    api_error_handlers,
    from_postgres,
    functions_response,
)
from pocketbizz.gateway import request_identity
from pocketbizz.gateway.tokens import api_keys
from pocketbizz.ops import repository, service
from pocketbizz.ops.activity import activity_day
from pocketbizz.ops.runtime import STARTED
from pocketbizz.state import AppState, app_state

STATIC = Path(__file__).parent / "static"
SLOW_QUERIES = 10


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _operator_state(request: Request) -> AppState:
    state = app_state(request)
    service.require_operator(request_identity(request), state.settings)
    return state


async def metrics(request: Request) -> Response:
    state = _operator_state(request)
    first, last = service.parse_range(request.query_params, activity_day())
    try:
        async with state.db.transaction(SERVICE) as conn:
            figures = await repository.business_metrics(conn, first, last)
    except asyncpg.PostgresError as exc:
        raise from_postgres(exc, anonymous=False) from exc
    return _json(figures)


async def health(request: Request) -> Response:
    state = _operator_state(request)
    in_use, size = state.db.pool_stats()
    async with state.db.transaction(SERVICE) as conn:
        slow = await repository.slow_queries(conn, SLOW_QUERIES)
    started = state.services.get(STARTED, time.time())
    return _json(
        {
            "uptime_seconds": round(time.time() - started, 1),
            "pool": {
                "in_use": in_use,
                "size": size,
                "max": state.settings.pool_max_size,
                "waiting": state.db.waiting,
            },
            "requests": service.request_summary(),
            # null: pg_stat_statements is not installed (the embedded PostgreSQL has no contrib)
            "slow_queries": None if slow is None else [dict(r) for r in slow],
        }
    )


async def plans(request: Request) -> Response:
    state = _operator_state(request)
    async with state.db.transaction(SERVICE) as conn:
        rows = await repository.list_plans(conn)
    return _json([service.plan_json(dict(r)) for r in rows])


async def update_plan(request: Request) -> Response:
    state = _operator_state(request)
    code = request.path_params["code"]
    try:
        # A price is money: JSON numbers are read as Decimal, never through a float.
        body = json.loads(await request.body(), parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("The request body must be valid JSON", code="invalid_json") from None
    changes = service.plan_changes(code, body)
    try:
        async with state.db.transaction(SERVICE) as conn:
            row = await repository.update_plan(conn, code, changes)
    except asyncpg.PostgresError as exc:
        raise from_postgres(exc, anonymous=False) from exc
    if row is None:
        raise NotFound(f"no plan {code!r}", code="not_found")
    return _json(service.plan_json(dict(row)))


# Mounted at /functions/v1/admin, ahead of /functions/v1 (whose `{name}` would take "admin").
routes = [
    Route("/metrics", metrics, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route("/plans", plans, methods=["GET"]),
    Route("/plans/{code}", update_plan, methods=["PATCH"]),
]
error_handlers = api_error_handlers(functions_response)

# The page loads nothing from elsewhere: its script and styles are ours, its data comes from
# the admin API of this same origin.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


async def dashboard(request: Request) -> Response:
    """The page, with the anon key it signs in with (public by design: the app ships it too)."""
    state = app_state(request)
    anon_key = api_keys(state.settings.secret)["anon_key"]
    page = (STATIC / "index.html").read_text()
    page = page.replace("{{ANON_KEY}}", html.escape(anon_key, quote=True))
    return HTMLResponse(page, headers=_PAGE_HEADERS)


dashboard_routes = [
    Route("/", dashboard, methods=["GET"]),
    Mount("/static", app=StaticFiles(directory=STATIC), name="ops-static"),
]
