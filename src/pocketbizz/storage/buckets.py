"""Bucket handlers: list and read for everyone; create, update, empty, delete by service_role
(the database refuses the rest: buckets have no write grant for clients)."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from pocketbizz.errors import ApiError
from pocketbizz.gateway import request_identity
from pocketbizz.state import app_state
from pocketbizz.storage import paths, service
from pocketbizz.storage.backend import object_key
from pocketbizz.storage.http import json_body, json_response, object_store

# Storage's size units are decimal (1 MB = 1,000,000 bytes), the number kept to 3 significant
# digits, no space before the unit: "20MB", "1.5gb", "300kb", "12b".
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(gb|mb|kb|b)$", re.IGNORECASE)
_UNIT_BYTES = {"GB": 10**9, "MB": 10**6, "KB": 10**3, "B": 1}


def _invalid_size() -> ApiError:
    return service.invalid_request("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")


def _size_limit(value: Any) -> int | None:
    """`file_size_limit` as a byte count: an integer (bytes), or a string with a unit."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _invalid_size()
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and value.strip().isdigit():
        size = int(value.strip())
    else:
        match = _SIZE.match(str(value).strip())
        if match is None:
            raise _invalid_size()
        number = Decimal(match[1])
        # Three significant digits, halves rounded up, as the storage API rounds.
        number = number.quantize(Decimal(1).scaleb(number.adjusted() - 2), ROUND_HALF_UP)
        size = int(number * _UNIT_BYTES[match[2].upper()])
    if size <= 0:
        raise service.invalid_request("file_size_limit must be positive")
    return size


def _mime_types(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise service.invalid_request("allowed_mime_types must be a list of strings")
    return value


def _query_int(request: Request, name: str, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < minimum:
        raise service.invalid_request(f"{name} must be an integer of at least {minimum}")
    return int(raw)


async def list_buckets(request: Request) -> Response:
    """GET /bucket[?limit&offset&search&sortColumn&sortOrder], as storage-js sends them."""
    identity = request_identity(request)
    query = request.query_params
    order = query.get("sortOrder", "asc")
    if order not in ("asc", "desc"):
        raise service.invalid_request("sortOrder must be asc or desc")
    async with app_state(request).db.transaction(identity) as conn:
        buckets = await service.list_buckets(
            conn,
            search=query.get("search", ""),
            sort_column=query.get("sortColumn", "name"),
            descending=order == "desc",
            limit=_query_int(request, "limit", 1),
            offset=_query_int(request, "offset", 0) or 0,
        )
    return json_response([b.as_json() for b in buckets])


async def get_bucket(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id = paths.bucket_id(request.path_params["bucket"])
    async with app_state(request).db.transaction(identity) as conn:
        bucket = await service.get_bucket(conn, bucket_id)
    return json_response(bucket.as_json())


async def create_bucket(request: Request) -> Response:
    identity = request_identity(request)
    body = await json_body(request)
    bucket_id = paths.bucket_id(body.get("id") or body.get("name"))
    name = body.get("name") or bucket_id
    if not isinstance(name, str):
        raise service.invalid_request("name must be a string")
    async with app_state(request).db.transaction(identity) as conn:
        await service.create_bucket(
            conn,
            bucket_id,
            name,
            bool(body.get("public", False)),
            _size_limit(body.get("file_size_limit")),
            _mime_types(body.get("allowed_mime_types")),
        )
    return json_response({"name": bucket_id})


async def update_bucket(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id = paths.bucket_id(request.path_params["bucket"])
    body = await json_body(request)
    changes: dict[str, Any] = {}
    if "public" in body:
        changes["public"] = bool(body["public"])
    if "file_size_limit" in body:
        changes["file_size_limit"] = _size_limit(body["file_size_limit"])
    if "allowed_mime_types" in body:
        changes["allowed_mime_types"] = _mime_types(body["allowed_mime_types"])
    async with app_state(request).db.transaction(identity) as conn:
        await service.update_bucket(conn, bucket_id, changes)
    return json_response({"message": "Successfully updated"})


async def empty_bucket(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id = paths.bucket_id(request.path_params["bucket"])
    async with app_state(request).db.transaction(identity) as conn:
        versions = await service.empty_bucket(conn, bucket_id)
    await object_store(request).delete(object_key(bucket_id, v) for v in versions)
    return json_response({"message": "Successfully emptied"})


async def delete_bucket(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id = paths.bucket_id(request.path_params["bucket"])
    async with app_state(request).db.transaction(identity) as conn:
        await service.delete_bucket(conn, bucket_id)
    return json_response({"message": "Successfully deleted"})
