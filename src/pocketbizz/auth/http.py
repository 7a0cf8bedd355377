"""What every auth endpoint shares: GoTrue's response and error shapes, body parsing, the
caller's claims, and the session body."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

import orjson
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from pocketbizz.auth import revocation, service
from pocketbizz.errors import (
    AUTH_API_VERSION,
    AuthCode,
    BadRequest,
    Forbidden,
    Unauthorized,
    Unprocessable,
)
from pocketbizz.gateway.identity import bearer_token, key_identity
from pocketbizz.gateway.tokens import TokenError, decode_token
from pocketbizz.state import AppState, app_state

Handler = Callable[[Request], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"X-Supabase-Api-Version": AUTH_API_VERSION, **(headers or {})},
    )


def auth_endpoint(handler: Handler, *, key_required: bool = True) -> Handler:
    """Auth endpoints need the project's API key (all but the mailed link, which a browser
    opens bare). Their errors reach the sub-app's one exception handler (GoTrue's shape)."""
    if not key_required:
        return handler

    @wraps(handler)
    async def wrapper(request: Request) -> Response:
        key_identity(request)
        return await handler(request)

    return wrapper


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("Could not parse request body as JSON", code=AuthCode.BAD_JSON) from exc


def parse(model: type[M], payload: Any) -> M:
    if not isinstance(payload, dict):
        raise BadRequest("Request body must be a JSON object", code=AuthCode.BAD_JSON)
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(
            f"Invalid {where}: {first['msg']}", code=AuthCode.VALIDATION_FAILED
        ) from exc


def normalise_email(email: str | None) -> str:
    if not email:
        raise BadRequest("An email address is required", code=AuthCode.VALIDATION_FAILED)
    try:
        valid = validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise BadRequest(
            "Unable to validate email address: invalid format", code=AuthCode.EMAIL_ADDRESS_INVALID
        ) from exc
    return valid.normalized.lower()


def check_password(state: AppState, password: str | None) -> str:
    minimum = state.settings.password_min_length
    if not password:
        raise BadRequest("Signup requires a valid password", code=AuthCode.VALIDATION_FAILED)
    if len(password) < minimum:
        raise Unprocessable(
            f"Password should be at least {minimum} characters.",
            code=AuthCode.WEAK_PASSWORD,
            extra={"weak_password": {"reasons": ["length"]}},
        )
    if len(password.encode()) > 1024:
        raise Unprocessable(
            "Password is too long.",
            code=AuthCode.WEAK_PASSWORD,
            extra={"weak_password": {"reasons": ["length"]}},
        )
    return password


def client(request: Request) -> tuple[str | None, str | None]:
    ip = request.client.host if request.client else None
    return request.headers.get("user-agent"), ip


def bearer_claims(request: Request, *, key_allowed: bool = False) -> dict[str, Any]:
    """The verified claims of the bearer token (401 without one, 403 when it is bad). The
    project key sent as the bearer counts only where `key_allowed` (the admin API)."""
    bearer = bearer_token(request)
    settings = app_state(request).settings
    if bearer is None or (bearer == request.headers.get("apikey") and not key_allowed):
        raise Unauthorized(
            "This endpoint requires a valid Bearer token", code=AuthCode.NO_AUTHORIZATION
        )
    try:
        return decode_token(bearer, settings.secret)
    except TokenError as exc:
        raise Forbidden(
            f"invalid JWT: unable to parse or verify signature, {exc}", code=AuthCode.BAD_JWT
        ) from exc


def user_claims(request: Request) -> tuple[UUID, UUID | None]:
    claims = bearer_claims(request)
    try:
        user_id = UUID(str(claims.get("sub")))
    except ValueError as exc:
        raise Forbidden("invalid claim: missing sub claim", code=AuthCode.BAD_JWT) from exc
    session_id = claims.get("session_id")
    try:
        return user_id, UUID(session_id) if session_id else None
    except ValueError as exc:
        raise Forbidden("invalid claim: session_id", code=AuthCode.BAD_JWT) from exc


def session_body(state: AppState, issued: service.IssuedSession) -> dict[str, Any]:
    settings = state.settings
    return service.session_json(
        issued,
        secret=settings.secret,
        issuer=f"{settings.url}/auth/v1",
        expiry=settings.jwt_expiry_seconds,
        operators=settings.operator_email_set,
    )


def remember_revoked(
    state: AppState, *, sessions: list[UUID] | None = None, users: list[UUID] | None = None
) -> None:
    """Refuse the revoked tokens in this process at once; the NOTIFY reaches the others."""
    registry = revocation.registry_for(state.db)
    if registry is not None:
        registry.remember(sessions=sessions or (), users=users or ())


def redirect_target(state: AppState, requested: str | None) -> str:
    """Where an e-mailed link lands: `redirect_to` when the site URL's origin or the allow
    list (PB_URI_ALLOW_LIST, comma-separated globs) permits it, else the site URL (GoTrue's
    rule): links carry tokens, so they never go to an address the operator did not name."""
    settings = state.settings
    site = (settings.site_url or settings.url).rstrip("/")
    if not requested:
        return site
    wanted = urlsplit(requested)
    home = urlsplit(site)
    if wanted.scheme in ("http", "https") and (wanted.scheme, wanted.netloc) == (
        home.scheme,
        home.netloc,
    ):
        return requested
    for allowed in (a.strip() for a in settings.uri_allow_list.split(",")):
        if allowed and allow_list_glob(allowed).fullmatch(requested):
            return requested
    return site


def allow_list_glob(pattern: str) -> re.Pattern[str]:
    """GoTrue's allow-list globs: `*` stays within one host label or path segment (it crosses
    no `.` or `/`), `**` crosses anything, `?` is one such character."""
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    wildcard = {"**": ".*", "*": "[^./]*", "?": "[^./]"}
    return re.compile("".join(wildcard.get(p, re.escape(p)) for p in parts))
