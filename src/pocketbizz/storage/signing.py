"""Signed download and upload URLs: short-lived JWTs naming one bucket and one object.

The token's role is `storage_url`, which the gateway accepts neither as an API key nor as a
bearer, so a leaked signed URL grants that one object and nothing else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from pocketbizz.errors import ApiError, StorageCode
from pocketbizz.gateway.tokens import TokenError, decode_token, encode_token

TOKEN_ROLE = "storage_url"
MAX_EXPIRY_SECONDS = 365 * 24 * 3600
UPLOAD_EXPIRY_SECONDS = 2 * 3600
Purpose = Literal["download", "upload"]


@dataclass(frozen=True)
class SignedGrant:
    bucket: str
    name: str
    owner: str | None
    upsert: bool


def expiry_seconds(value: Any) -> int:
    """`expiresIn` arrives as a string from the official client, as a number from others."""
    try:
        seconds = int(str(value).strip())
    except (TypeError, ValueError):
        seconds = 0
    if not 0 < seconds <= MAX_EXPIRY_SECONDS:
        raise ApiError(
            "expiresIn must be a positive number of seconds",
            status=400,
            code=StorageCode.INVALID_REQUEST,
            extra={"error": "Invalid Input"},
        )
    return seconds


def sign(
    secret: str,
    purpose: Purpose,
    bucket: str,
    name: str,
    seconds: int,
    *,
    owner: str | None = None,
    upsert: bool = False,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "role": TOKEN_ROLE,
        "purpose": purpose,
        "url": f"{bucket}/{name}",
        "iat": now,
        "exp": now + seconds,
    }
    if owner:
        claims["owner"] = owner
    if upsert:
        claims["upsert"] = True
    return encode_token(claims, secret)


def verify(secret: str, purpose: Purpose, token: str | None, bucket: str, name: str) -> SignedGrant:
    """The grant in `token` if it is valid for exactly this purpose, bucket and object."""
    if not token:
        raise _invalid("Missing token")
    try:
        claims = decode_token(token, secret, leeway=0)
    except TokenError as exc:
        raise _invalid("jwt expired" if exc.expired else "Invalid signature") from exc
    if (
        claims.get("role") != TOKEN_ROLE
        or claims.get("purpose") != purpose
        or claims.get("url") != f"{bucket}/{name}"
    ):
        raise _invalid("The token does not match this object")
    owner = claims.get("owner")
    return SignedGrant(bucket, name, str(owner) if owner else None, bool(claims.get("upsert")))


def relative_url(purpose: Purpose, bucket: str, name: str, token: str) -> str:
    """`/object/sign/{b}/{path}?token=..`: relative to /storage/v1, as the client expects."""
    route = "sign" if purpose == "download" else "upload/sign"
    path = quote(f"{bucket}/{name}", safe="/")
    return f"/object/{route}/{path}?token={token}"


def _invalid(message: str) -> ApiError:
    return ApiError(
        message, status=400, code=StorageCode.INVALID_JWT, extra={"error": "InvalidJWT"}
    )
