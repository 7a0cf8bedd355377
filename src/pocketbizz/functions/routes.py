"""Routes of Functions at /functions/v1/{name}: JSON in, JSON out, errors as {"error": ...}."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pocketbizz.errors import (
    BadRequest,
    NotFound,
    Unauthorized,
    api_error_handlers,
    from_postgres,
    functions_response,
)
from pocketbizz.functions.context import Document, FunctionContext, RawJson, WithStatus
from pocketbizz.functions.registry import FUNCTIONS
from pocketbizz.gateway import request_identity
from pocketbizz.state import app_state


def _encode(value: Any) -> str:
    """What orjson cannot encode: Decimal money as its exact string, asyncpg's UUID as text."""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("The request body must be valid JSON", code="invalid_json") from exc


async def invoke(request: Request) -> Response:
    identity = request_identity(request)
    name = request.path_params["name"]
    function = FUNCTIONS.get(name)
    if function is None:
        raise NotFound(f"Function {name!r} not found", code="not_found")
    body = await _json_body(request)
    if function.requires_user and identity.user_id is None:
        raise Unauthorized("This function needs a signed-in user", code="no_user")
    state = app_state(request)
    try:
        async with state.db.transaction(identity) as conn:
            ctx = FunctionContext(
                conn, identity, body, request.query_params, state.settings, request.method
            )
            result = await function.handler(ctx)
    except asyncpg.PostgresError as exc:
        raise from_postgres(exc, anonymous=identity.role == "anon") from exc
    if isinstance(result, Document):
        disposition = f'inline; filename="{result.filename}"'
        return Response(
            result.content,
            media_type=result.media_type,
            headers={"Content-Disposition": disposition},
        )
    status = 200
    if isinstance(result, WithStatus):
        result, status = result.body, result.status
    if isinstance(result, RawJson):
        content = result.text.encode()
    else:
        content = orjson.dumps(result, default=_encode)
    return Response(content, status_code=status, media_type="application/json")


routes = [Route("/{name}", invoke, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
# The sub-app's one exception handler: every failure as {"error": …, "code": …}.
error_handlers = api_error_handlers(functions_response)
