"""An upload as it arrives: a multipart form as the official clients send it, or a raw body.

Either way the bytes end up in a temporary file (spilled to disk past 1 MB), so a 50 MB upload
never sits in memory, and the store reads it from there.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request

from pocketbizz.storage.backend import no_room
from pocketbizz.storage.service import invalid_request

_SPOOL_BYTES = 1024 * 1024
DEFAULT_MIMETYPE = "application/octet-stream"


@dataclass
class IncomingFile:
    file: BinaryIO
    size: int
    mimetype: str
    cache_control: str
    user_metadata: dict[str, Any] | None
    close: Callable[[], Awaitable[None]]


def _cache_control(value: str | None) -> str:
    value = (value or "3600").strip()
    # The client sends seconds ("3600"); Storage records it as a header value.
    return f"max-age={value}" if value.isdigit() else value[:200]


def _user_metadata(value: str | None) -> dict[str, Any] | None:
    """The `metadata` form field: a JSON object."""
    if value in (None, ""):
        return None
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise invalid_request("metadata must be a JSON object") from exc
    if not isinstance(parsed, dict):
        raise invalid_request("metadata must be a JSON object")
    return parsed


def _header_metadata(value: str | None) -> dict[str, Any] | None:
    """The `x-metadata` header of a raw upload. Storage takes it base64-encoded (JSON is not
    header-safe: non-ASCII, newlines), which is what supabase-js sends; plain JSON, as older
    clients sent it, is still read. The two cannot be confused: `{` is not a base64 character."""
    if value is None or value.lstrip().startswith("{"):
        return _user_metadata(value)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_request("x-metadata must be a base64-encoded JSON object") from exc
    return _user_metadata(decoded)


async def read_upload(request: Request) -> IncomingFile:
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        return await _read_multipart(request)
    return await _read_raw(request, content_type or DEFAULT_MIMETYPE)


async def _read_multipart(request: Request) -> IncomingFile:
    try:
        form = await request.form(max_files=1, max_fields=20)
    except HTTPException as exc:  # Starlette reports a malformed form this way
        raise invalid_request(f"Malformed multipart body: {exc.detail}") from exc
    except MultiPartException as exc:
        raise invalid_request(f"Malformed multipart body: {exc.message}") from exc
    except ClientDisconnect as exc:
        raise invalid_request("The upload was interrupted") from exc
    except OSError as exc:  # a file part spooled to a full temporary directory
        if (full := no_room(exc)) is not None:
            raise full from exc
        raise
    upload = next((v for v in form.values() if isinstance(v, UploadFile)), None)
    if upload is None:
        await form.close()
        raise invalid_request("The multipart body has no file part")
    cache = form.get("cacheControl")
    metadata = form.get("metadata")
    try:
        return IncomingFile(
            file=upload.file,
            size=upload.size if upload.size is not None else _measure(upload.file),
            mimetype=upload.content_type or DEFAULT_MIMETYPE,
            cache_control=_cache_control(cache if isinstance(cache, str) else None),
            user_metadata=_user_metadata(metadata if isinstance(metadata, str) else None),
            close=form.close,
        )
    except BaseException:
        await form.close()
        raise


async def _read_raw(request: Request, mimetype: str) -> IncomingFile:
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 - closed by caller
    size = 0
    try:
        async for chunk in request.stream():
            spool.write(chunk)
            size += len(chunk)
        metadata = _header_metadata(request.headers.get("x-metadata"))
    except ClientDisconnect as exc:
        spool.close()
        raise invalid_request("The upload was interrupted") from exc
    except OSError as exc:  # past 1 MB the spool is a file in a temporary directory that is full
        spool.close()
        if (full := no_room(exc)) is not None:
            raise full from exc
        raise
    except BaseException:
        spool.close()
        raise

    async def close() -> None:
        spool.close()

    return IncomingFile(
        file=spool,  # type: ignore[arg-type]
        size=size,
        mimetype=mimetype,
        cache_control=_cache_control(request.headers.get("cache-control")),
        user_metadata=metadata,
        close=close,
    )


def _measure(handle: BinaryIO) -> int:
    handle.seek(0, 2)
    size = handle.tell()
    handle.seek(0)
    return size
