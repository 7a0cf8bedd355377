"""Plumbing shared by the Storage handlers: JSON replies, request bodies, the error shape."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
import structlog
from starlette.requests import Request
from starlette.responses import Response

from pocketbizz.db import Identity
from pocketbizz.errors import ApiError, StorageCode, Unauthorized, from_postgres, storage_response
from pocketbizz.state import app_state
from pocketbizz.storage import paths, service
from pocketbizz.storage.backend import ObjectMissing, ObjectStore, StoreFull

log = structlog.get_logger("pocketbizz.storage")


def json_response(body: Any, status: int = 200) -> Response:
    # default=str: asyncpg returns its own UUID type, which orjson does not know. OPT_UTC_Z:
    # timestamps end in "Z", as Storage (JavaScript's toISOString) writes them.
    return Response(
        orjson.dumps(body, default=str, option=orjson.OPT_UTC_Z),
        status_code=status,
        media_type="application/json",
    )


def object_store(request: Request) -> ObjectStore:
    store: ObjectStore = app_state(request).services["storage"]
    return store


def _storage_error(exc: asyncpg.PostgresError, identity: Identity | None) -> ApiError:
    sqlstate = getattr(exc, "sqlstate", "")
    if sqlstate == "42501":
        message = getattr(exc, "message", None) or "new row violates row-level security policy"
        return ApiError(
            message, status=403, code=StorageCode.ACCESS_DENIED, extra={"error": "Unauthorized"}
        )
    if sqlstate == "23505":
        return service.duplicate()
    if sqlstate == "23503":
        return service.bucket_not_found()
    error = from_postgres(exc, anonymous=identity is None or identity.role == "anon")
    error.extra = {"error": "Invalid Input" if error.status == 400 else "DatabaseError"}
    return error


async def render_error(request: Request, exc: Exception) -> Response:
    """The sub-app's one exception handler: every failure in Storage's error shape
    ({statusCode, error, message})."""
    if isinstance(exc, ObjectMissing):
        return storage_response(service.object_not_found())
    if isinstance(exc, StoreFull):
        log.error("storage full", error=str(exc.__cause__ or exc))
        return storage_response(service.store_full(str(exc)))
    if isinstance(exc, asyncpg.PostgresError):
        identity = request.scope.get("pb.identity")
        return storage_response(
            _storage_error(exc, identity if isinstance(identity, Identity) else None)
        )
    if not isinstance(exc, ApiError):
        raise exc
    if isinstance(exc, Unauthorized) and "error" not in exc.extra:
        # Storage names token problems InvalidJWT; the status stays the gateway's 401.
        exc.extra["error"] = StorageCode.INVALID_JWT if exc.code.startswith("PGRST") else exc.code
    return storage_response(exc)


error_handlers = {
    ApiError: render_error,
    ObjectMissing: render_error,
    StoreFull: render_error,
    asyncpg.PostgresError: render_error,
}


async def route_not_found(request: Request) -> Response:
    """Any other path or method under /storage/v1 (image transforms, resumable uploads, S3 and
    vector APIs are not provided): a 404 in Storage's error shape, worded as its router words it,
    rather than a bare page the clients cannot parse."""
    raise ApiError(
        f"Route {request.method}:/{request.path_params['path']} not found",
        status=404,
        code=StorageCode.ROUTE_NOT_FOUND,
        extra={"error": "Not Found"},
    )


async def json_body(request: Request) -> dict[str, Any]:
    """The JSON object body; an empty body reads as {} (DELETE and POST may send none)."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise service.invalid_request("The request body must be JSON") from exc
    if not isinstance(body, dict):
        raise service.invalid_request("The request body must be a JSON object")
    return body


def target(request: Request) -> tuple[str, str]:
    """The validated (bucket, object name) of a `/{bucket}/{path}` route."""
    return (
        paths.bucket_id(request.path_params["bucket"]),
        paths.object_name(request.path_params["path"]),
    )
