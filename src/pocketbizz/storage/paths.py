"""Bucket ids and object names: what is accepted before anything reaches SQL or the disk."""

from __future__ import annotations

import re

from pocketbizz.errors import ApiError, StorageCode

MAX_NAME_BYTES = 1024
_BUCKET_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
# Route words under /object/: a bucket with one of these ids could never be addressed.
RESERVED_BUCKET_IDS = frozenset(
    {
        "sign",
        "public",
        "list",
        "list-v2",
        "info",
        "move",
        "copy",
        "upload",
        "authenticated",
        "render",
    }
)


def invalid_key(message: str) -> ApiError:
    return ApiError(
        message, status=400, code=StorageCode.INVALID_KEY, extra={"error": "InvalidKey"}
    )


def bucket_id(value: object) -> str:
    if not isinstance(value, str) or not _BUCKET_ID.match(value) or value in RESERVED_BUCKET_IDS:
        raise ApiError(
            "Bucket name invalid",
            status=400,
            code=StorageCode.INVALID_BUCKET_NAME,
            extra={"error": "Invalid Input"},
        )
    return value


def object_name(value: object) -> str:
    """A relative object key: no traversal, no empty segments, no control bytes, ≤ 1024 bytes."""
    if not isinstance(value, str) or not value:
        raise invalid_key("Object name is empty")
    if len(value.encode()) > MAX_NAME_BYTES:
        raise invalid_key(f"Object name is longer than {MAX_NAME_BYTES} bytes")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value) or "\\" in value:
        raise invalid_key(f"Invalid key: {value!r}")
    if value.startswith("/"):
        raise invalid_key(f"Invalid key: {value!r} is absolute")
    for segment in value.split("/"):
        if segment in ("", ".", ".."):
            raise invalid_key(f"Invalid key: {value!r}")
    return value


def folder_prefix(value: object) -> str:
    """A list prefix as a folder: "" for the root, otherwise the folder path plus "/"."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise invalid_key("prefix must be a string")
    trimmed = value.strip("/")
    if not trimmed:
        return ""
    return object_name(trimmed) + "/"
