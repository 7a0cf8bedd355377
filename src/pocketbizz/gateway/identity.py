"""Who is calling: the `apikey` names the project and its default role; a user JWT in
`Authorization: Bearer` narrows it to `authenticated` with that user's claims."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import HTTPConnection

from pocketbizz.auth.revocation import revoked_in_memory
from pocketbizz.db import Identity
from pocketbizz.errors import PostgrestCode, Unauthorized
from pocketbizz.gateway.tokens import TokenError, decode_token
from pocketbizz.state import AppState, app_state

_KEY_ROLES = frozenset({"anon", "service_role"})
_TOKEN_ROLES = frozenset({"anon", "authenticated", "service_role"})


def _looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2


def api_key_identity(apikey: str | None, secret: str) -> Identity:
    if not apikey:
        raise Unauthorized("No API key found in request", code="no_api_key")
    try:
        claims = decode_token(apikey, secret)
    except TokenError as exc:
        raise Unauthorized("Invalid API key", code="invalid_api_key") from exc
    role = claims.get("role")
    if role not in _KEY_ROLES:
        raise Unauthorized("Invalid API key", code="invalid_api_key")
    return Identity(str(role), claims)


def identify(headers: Mapping[str, str], query: Mapping[str, str], secret: str) -> Identity:
    """Resolve the caller's role and claims, or raise 401 (PGRST301/PGRST303 codes)."""
    apikey = headers.get("apikey") or query.get("apikey")
    key_identity = api_key_identity(apikey, secret)
    bearer = _bearer(headers.get("authorization"))
    # The clients send the key itself as the bearer until a user signs in.
    if bearer is None or bearer == apikey or not _looks_like_jwt(bearer):
        return key_identity
    try:
        claims: dict[str, Any] = decode_token(bearer, secret)
    except TokenError as exc:
        if exc.expired:
            raise Unauthorized("JWT expired", code=PostgrestCode.JWT_CLAIMS) from exc
        raise Unauthorized(str(exc), code=PostgrestCode.JWT_INVALID) from exc
    role = claims.get("role")
    if role not in _TOKEN_ROLES:
        raise Unauthorized("JWT role is not allowed", code=PostgrestCode.JWT_INVALID)
    if role == "authenticated" and not claims.get("sub"):
        raise Unauthorized("JWT has no subject", code=PostgrestCode.JWT_INVALID)
    return Identity(str(role), claims)


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def bearer_token(conn: HTTPConnection) -> str | None:
    return _bearer(conn.headers.get("authorization"))


def key_identity(conn: HTTPConnection) -> Identity:
    """The role of the project key alone, ignoring any bearer (auth endpoints need this)."""
    apikey = conn.headers.get("apikey") or conn.query_params.get("apikey")
    return api_key_identity(apikey, app_state(conn).settings.secret)


def request_identity(conn: HTTPConnection) -> Identity:
    """The identity of a Starlette request or WebSocket, computed once and cached on it."""
    state = app_state(conn)
    cached = conn.scope.get("pb.identity")
    if isinstance(cached, Identity):
        identity = cached
    else:
        identity = identify(conn.headers, conn.query_params, state.settings.secret)
        conn.scope["pb.identity"] = identity
    refuse_revoked(identity, state)
    return identity


def refuse_revoked(identity: Identity, state: AppState) -> None:
    """A still-valid token whose session was revoked or whose user was deleted is refused on
    every surface (401 PGRST303, with GoTrue's wording). Supabase's PostgREST would accept it
    until `exp`; for a shop, a signed-out device or a closed account must lose access at once."""
    if revoked_in_memory(state.db, identity.claims):
        if identity.claims.get("session_id") and not _user_deleted(identity, state):
            raise Unauthorized(
                "Session from session_id claim in JWT does not exist", code=PostgrestCode.JWT_CLAIMS
            )
        raise Unauthorized(
            "User from sub claim in JWT does not exist", code=PostgrestCode.JWT_CLAIMS
        )


def _user_deleted(identity: Identity, state: AppState) -> bool:
    return revoked_in_memory(state.db, {**identity.claims, "session_id": None})
