"""Object handlers: upload (multipart, raw, signed), download (authenticated, public, signed),
info, list, remove, move and copy.

Bytes are written to the store before their metadata row commits and removed after a row that
pointed at them is gone, so a crash leaves at worst unreferenced bytes, never a dangling row.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid4

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pocketbizz.db import Identity
from pocketbizz.db.database import SERVICE
from pocketbizz.errors import ApiError, StorageCode
from pocketbizz.gateway import request_identity
from pocketbizz.state import app_state
from pocketbizz.storage import paths, service, signing
from pocketbizz.storage.backend import object_key
from pocketbizz.storage.http import json_body, json_response, object_store, target
from pocketbizz.storage.uploads import read_upload

# ---------------------------------------------------------------------------------------------
# Uploads


_MULTIPART_SLACK = 64 * 1024
# list-v2 pages hold at most this many entries (folders and objects together), as list does.
_LIST_V2_MAX = 1000


def _too_large() -> ApiError:
    return ApiError(
        "The object exceeded the maximum allowed size",
        status=413,
        code=StorageCode.ENTITY_TOO_LARGE,
        extra={"error": "Payload too large"},
    )


async def _store_upload(
    request: Request,
    identity: Identity,
    bucket_id: str,
    name: str,
    *,
    mode: str,
    owner: UUID | None = None,
) -> Response:
    db = app_state(request).db
    store = object_store(request)
    # Refuse early (no bucket, not the caller's folder, already there) before reading bytes.
    async with db.transaction(identity) as conn:
        bucket = await service.get_bucket(conn, bucket_id)
        if mode == "replace":
            await service.find_object(conn, bucket_id, name)
        elif owner is None:
            await service.check_can_create(conn, bucket_id, name, upsert=mode == "upsert")
    limit = bucket.file_size_limit
    declared = request.headers.get("content-length", "")
    # A body far over the limit is refused before it is read (the slack covers multipart framing).
    if limit is not None and declared.isdigit() and int(declared) > limit + _MULTIPART_SLACK:
        raise _too_large()
    incoming = await read_upload(request)
    try:
        if limit is not None and incoming.size > limit:
            raise _too_large()
        if not bucket.accepts_mime(incoming.mimetype):
            raise ApiError(
                f"mime type {incoming.mimetype} is not supported",
                status=415,
                code=StorageCode.INVALID_MIME_TYPE,
                extra={"error": "invalid_mime_type"},
            )
        version = uuid4()
        key = object_key(bucket_id, version)
        stored = await store.put(key, incoming.file, incoming.mimetype)
    finally:
        await incoming.close()
    metadata = service.object_metadata(
        stored.size, stored.etag, incoming.mimetype, incoming.cache_control
    )
    try:
        async with db.transaction(identity) as conn:
            saved = await service.save_object(
                conn,
                bucket_id,
                name,
                version,
                metadata,
                incoming.user_metadata,
                mode=mode,
                owner=owner,
            )
    except BaseException:
        await store.delete([key])
        raise
    if saved.replaced_version is not None:
        await store.delete([object_key(bucket_id, saved.replaced_version)])
    return json_response({"Key": f"{bucket_id}/{name}", "Id": saved.id})


async def upload_object(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id, name = target(request)
    upsert = request.headers.get("x-upsert", "false").strip().lower() == "true"
    return await _store_upload(
        request, identity, bucket_id, name, mode="upsert" if upsert else "create"
    )


async def update_object(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id, name = target(request)
    return await _store_upload(request, identity, bucket_id, name, mode="replace")


async def sign_upload(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id, name = target(request)
    upsert = request.headers.get("x-upsert", "false").strip().lower() == "true"
    async with app_state(request).db.transaction(identity) as conn:
        await service.get_bucket(conn, bucket_id)
        await service.check_can_create(conn, bucket_id, name, upsert=upsert)
    owner = identity.user_id
    token = signing.sign(
        app_state(request).settings.secret,
        "upload",
        bucket_id,
        name,
        signing.UPLOAD_EXPIRY_SECONDS,
        owner=str(owner) if owner else None,
        upsert=upsert,
    )
    return json_response(
        {"url": signing.relative_url("upload", bucket_id, name, token), "token": token}
    )


async def upload_signed(request: Request) -> Response:
    bucket_id, name = target(request)
    grant = signing.verify(
        app_state(request).settings.secret,
        "upload",
        request.query_params.get("token"),
        bucket_id,
        name,
    )
    # The signer's rights were checked when the URL was made; the grant names the owner.
    owner = UUID(grant.owner) if grant.owner else None
    return await _store_upload(
        request,
        SERVICE,
        bucket_id,
        name,
        mode="upsert" if grant.upsert else "create",
        owner=owner,
    )


# ---------------------------------------------------------------------------------------------
# Downloads


def served_type(mimetype: str) -> str:
    """The Content-Type an object is served with. HTML is served as plain text, as Storage does:
    an uploaded page must never run as a page of this origin (public and signed URLs need no
    login, so a tenant could otherwise plant script for others to open)."""
    return "text/plain" if "text/html" in mimetype.lower() else mimetype


def content_disposition(download: str) -> str:
    """`?download` (empty: keep the object's name) or `?download=NAME`, as Storage answers it:
    the name percent-encoded as JavaScript's encodeURIComponent does, in both parameters."""
    if not download:
        return "attachment;"
    encoded = quote(download, safe="!'()*~")
    return f"attachment; filename={encoded}; filename*=UTF-8''{encoded};"


async def _download(request: Request, row: service.StoredRow) -> Response:
    meta = row.metadata
    etag = str(meta.get("eTag") or "")
    headers = {
        "ETag": etag,
        "Cache-Control": str(meta.get("cacheControl") or "no-cache"),
        "Last-Modified": str(meta.get("lastModified") or ""),
    }
    if etag and request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    download = request.query_params.get("download")
    if download is not None:
        headers["Content-Disposition"] = content_disposition(download)
    if meta.get("size") is not None:
        headers["Content-Length"] = str(meta["size"])
    chunks = await object_store(request).open(object_key(row.bucket_id, row.version))
    return StreamingResponse(chunks, media_type=served_type(row.mimetype), headers=headers)


async def download_object(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id, name = target(request)
    async with app_state(request).db.transaction(identity) as conn:
        row = await service.find_object(conn, bucket_id, name)
    return await _download(request, row)


async def download_public(request: Request) -> Response:
    bucket_id, name = target(request)
    async with app_state(request).db.transaction(SERVICE) as conn:
        row = await service.find_public_object(conn, bucket_id, name)
    return await _download(request, row)


async def download_signed(request: Request) -> Response:
    bucket_id, name = target(request)
    signing.verify(
        app_state(request).settings.secret,
        "download",
        request.query_params.get("token"),
        bucket_id,
        name,
    )
    async with app_state(request).db.transaction(SERVICE) as conn:
        row = await service.find_object(conn, bucket_id, name)
    return await _download(request, row)


async def object_info(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id, name = target(request)
    async with app_state(request).db.transaction(identity) as conn:
        row = await service.find_object(conn, bucket_id, name)
    return json_response(row.info_json())


async def object_info_public(request: Request) -> Response:
    """Info of an object in a public bucket, for anyone (as its bytes are)."""
    bucket_id, name = target(request)
    async with app_state(request).db.transaction(SERVICE) as conn:
        row = await service.find_public_object(conn, bucket_id, name)
    return json_response(row.info_json())


async def sign_download(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id, name = target(request)
    seconds = signing.expiry_seconds((await json_body(request)).get("expiresIn"))
    async with app_state(request).db.transaction(identity) as conn:
        await service.find_object(conn, bucket_id, name)
    token = signing.sign(app_state(request).settings.secret, "download", bucket_id, name, seconds)
    return json_response({"signedURL": signing.relative_url("download", bucket_id, name, token)})


async def sign_downloads(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id = paths.bucket_id(request.path_params["bucket"])
    body = await json_body(request)
    seconds = signing.expiry_seconds(body.get("expiresIn"))
    names = body.get("paths")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise service.invalid_request("paths must be a list of object names")
    secret = app_state(request).settings.secret
    async with app_state(request).db.transaction(identity) as conn:
        await service.get_bucket(conn, bucket_id)
        found = await service.existing_names(conn, bucket_id, names)
    results = []
    for name in names:
        if name in found:
            token = signing.sign(secret, "download", bucket_id, name, seconds)
            url = signing.relative_url("download", bucket_id, name, token)
            results.append({"error": None, "path": name, "signedURL": url})
        else:
            results.append(
                {
                    "error": "Either the object does not exist or you do not have access to it",
                    "path": name,
                    "signedURL": None,
                }
            )
    return json_response(results)


# ---------------------------------------------------------------------------------------------
# Listing, removing, moving, copying


async def list_objects(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id = paths.bucket_id(request.path_params["bucket"])
    body = await json_body(request)
    sort = body.get("sortBy") or {}
    search = body.get("search") or ""
    try:
        limit = min(max(int(body.get("limit", 100)), 1), 1000)
        offset = max(int(body.get("offset", 0)), 0)
    except (TypeError, ValueError) as exc:
        raise service.invalid_request("limit and offset must be integers") from exc
    if not isinstance(sort, dict) or not isinstance(search, str):
        raise service.invalid_request("sortBy must be an object and search a string")
    async with app_state(request).db.transaction(identity) as conn:
        items = await service.list_objects(
            conn,
            bucket_id,
            paths.folder_prefix(body.get("prefix")),
            search=search,
            limit=limit,
            offset=offset,
            sort_column=str(sort.get("column") or "name"),
            descending=str(sort.get("order") or "asc").lower() == "desc",
        )
    return json_response(items)


def _encode_cursor(request_key: dict[str, Any], position: service.ListPosition) -> str:
    ts = position.ts.isoformat() if position.ts else None
    payload = {**request_key, "n": position.name, "t": ts}
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode()


def _decode_cursor(cursor: str, request_key: dict[str, Any]) -> service.ListPosition:
    """The position a cursor resumes from. A cursor is opaque to clients but not trusted: it is
    refused unless it was made for this same listing (prefix, delimiter, sort)."""
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(payload, dict) or any(
            payload.get(k) != v for k, v in request_key.items()
        ):
            raise ValueError("made for another listing")
        name, ts = payload["n"], payload["t"]
        if not isinstance(name, str) or (ts is not None and not isinstance(ts, str)):
            raise ValueError("malformed position")
        return service.ListPosition(datetime.fromisoformat(ts) if ts else None, name)
    except (ValueError, KeyError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise service.invalid_request("Invalid continuation token") from exc


async def list_objects_v2(request: Request) -> Response:
    """POST /object/list-v2/{bucket}: {prefix, limit, cursor, with_delimiter, sortBy} →
    {hasNext, folders, objects, nextCursor}. Names are full keys; folders end with "/"."""
    identity = request_identity(request)
    bucket_id = paths.bucket_id(request.path_params["bucket"])
    body = await json_body(request)
    prefix = body.get("prefix") or ""
    delimited = body.get("with_delimiter", False)
    sort = body.get("sortBy") or {}
    cursor = body.get("cursor")
    limit = body.get("limit", 1000)
    if not isinstance(prefix, str) or len(prefix.encode()) > paths.MAX_NAME_BYTES:
        raise service.invalid_request("prefix must be a string of at most 1024 bytes")
    if not isinstance(delimited, bool) or not isinstance(sort, dict):
        raise service.invalid_request("with_delimiter must be a boolean and sortBy an object")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise service.invalid_request("limit must be a positive integer")
    if cursor is not None and not isinstance(cursor, str):
        raise service.invalid_request("cursor must be a string")
    column = str(sort.get("column") or "name")
    order = str(sort.get("order") or "asc").lower()
    if order not in ("asc", "desc"):
        raise service.invalid_request("sortBy.order must be asc or desc")
    request_key = {"p": prefix, "d": delimited, "s": column, "o": order}
    async with app_state(request).db.transaction(identity) as conn:
        page = await service.list_objects_v2(
            conn,
            bucket_id,
            prefix,
            delimited=delimited,
            limit=min(limit, _LIST_V2_MAX),
            sort_column=column,
            descending=order == "desc",
            after=_decode_cursor(cursor, request_key) if cursor else None,
        )
    result: dict[str, Any] = {
        "hasNext": page.next_position is not None,
        "folders": page.folders,
        "objects": page.objects,
    }
    if page.next_position is not None:
        result["nextCursor"] = _encode_cursor(request_key, page.next_position)
    return json_response(result)


async def remove_objects(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id = paths.bucket_id(request.path_params["bucket"])
    prefixes = (await json_body(request)).get("prefixes")
    if not isinstance(prefixes, list) or not prefixes or len(prefixes) > 1000:
        raise service.invalid_request("prefixes must be a list of 1 to 1000 object names")
    names = [paths.object_name(p) for p in prefixes]
    async with app_state(request).db.transaction(identity) as conn:
        await service.get_bucket(conn, bucket_id)
        removed = await service.delete_objects(conn, bucket_id, names)
    await object_store(request).delete(object_key(bucket_id, r["version"]) for r in removed)
    return json_response(removed)


async def remove_object(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id, name = target(request)
    async with app_state(request).db.transaction(identity) as conn:
        removed = await service.delete_objects(conn, bucket_id, [name])
    if not removed:
        raise service.object_not_found()
    await object_store(request).delete([object_key(bucket_id, removed[0]["version"])])
    return json_response({"message": "Successfully deleted"})


async def _move_request(request: Request) -> tuple[str, str, str]:
    body = await json_body(request)
    bucket_id = paths.bucket_id(body.get("bucketId"))
    destination_bucket = body.get("destinationBucket")
    if destination_bucket not in (None, bucket_id):
        raise service.invalid_request("Moving or copying between buckets is not supported")
    return (
        bucket_id,
        paths.object_name(body.get("sourceKey")),
        paths.object_name(body.get("destinationKey")),
    )


async def move_object(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id, source, target = await _move_request(request)
    async with app_state(request).db.transaction(identity) as conn:
        await service.move_object(conn, bucket_id, source, target)
    return json_response({"message": "Successfully moved"})


async def copy_object(request: Request) -> Response:
    identity = request_identity(request)
    bucket_id, source, target = await _move_request(request)
    db = app_state(request).db
    store = object_store(request)
    async with db.transaction(identity) as conn:
        row = await service.find_object(conn, bucket_id, source)
        await service.check_can_create(conn, bucket_id, target, upsert=False)
    version = uuid4()
    key = object_key(bucket_id, version)
    await store.copy(object_key(bucket_id, row.version), key)
    try:
        async with db.transaction(identity) as conn:
            object_id = await service.insert_copy(conn, row, target, version)
    except BaseException:
        await store.delete([key])
        raise
    return json_response({"Key": f"{bucket_id}/{target}", "Id": object_id})
