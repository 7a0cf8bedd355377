"""JWT signing and verification (HS256 only: the algorithm is pinned, `none` is refused)."""

from __future__ import annotations

import time
from typing import Any

import jwt

ALGORITHM = "HS256"
# API keys are long-lived JWTs like Supabase's; a fixed iat keeps `pocketbizz keys` stable.
_KEY_ISSUED_AT = 1767225600  # 2026-01-01T00:00:00Z
_KEY_LIFETIME = 10 * 365 * 24 * 3600


class TokenError(Exception):
    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def encode_token(claims: dict[str, Any], secret: str) -> str:
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"typ": "JWT"})


# Verified tokens by their exact text: a client sends the same key and access token on every
# request, and verification (base64 + HMAC + claim checks) is a large share of a cheap request.
_VERIFIED: dict[str, tuple[str, dict[str, Any]]] = {}
_VERIFIED_MAX = 20_000
_LEEWAY = 5


def decode_token(token: str, secret: str, *, leeway: int = _LEEWAY) -> dict[str, Any]:
    """Verify a token. `leeway` allows for clock skew between servers; signed URLs, which this
    server both issues and checks, pass 0 so they expire exactly when they say."""
    cached = _VERIFIED.get(token)
    if cached is not None and cached[0] == secret:
        claims = cached[1]
        if claims["exp"] + leeway < time.time():
            _VERIFIED.pop(token, None)
            raise TokenError("JWT expired", expired=True)
        return dict(claims)
    claims = _verify(token, secret, leeway)
    if not isinstance(claims.get("exp"), int | float):
        raise TokenError("invalid JWT: exp must be a number")
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.pop(next(iter(_VERIFIED)))  # drop the oldest entry
    _VERIFIED[token] = (secret, claims)
    return dict(claims)


def _verify(token: str, secret: str, leeway: int) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "role"], "verify_aud": False},
            leeway=leeway,
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("JWT expired", expired=True) from exc
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid JWT: {exc}") from exc
    aud = claims.get("aud")
    if aud is not None and aud not in ("authenticated", ["authenticated"]):
        raise TokenError("invalid JWT: unexpected audience")
    return claims


def api_keys(secret: str) -> dict[str, str]:
    def key(role: str) -> str:
        claims = {
            "iss": "pocketbizz",
            "role": role,
            "iat": _KEY_ISSUED_AT,
            "exp": _KEY_ISSUED_AT + _KEY_LIFETIME,
        }
        return encode_token(claims, secret)

    return {"anon_key": key("anon"), "service_role_key": key("service_role")}
