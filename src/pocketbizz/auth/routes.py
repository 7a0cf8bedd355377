"""GoTrue-compatible HTTP endpoints at /auth/v1. Thin: parse, call the service, shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar
from uuid import UUID

import orjson
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pocketbizz.auth import passwords, revocation, service
from pocketbizz.db.database import AUTH_ADMIN
from pocketbizz.errors import (
    AUTH_API_VERSION,
    ApiError,
    BadRequest,
    Forbidden,
    Unauthorized,
    Unprocessable,
    auth_response,
)
from pocketbizz.gateway.identity import bearer_token, key_identity
from pocketbizz.gateway.tokens import TokenError, decode_token
from pocketbizz.state import AppState, app_state

Handler = Callable[[Request], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)


def _ok(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"X-Supabase-Api-Version": AUTH_API_VERSION},
    )


def auth_endpoint(handler: Handler) -> Handler:
    """Every auth endpoint needs the project's API key and answers errors in GoTrue's shape."""

    @wraps(handler)
    async def wrapper(request: Request) -> Response:
        try:
            key_identity(request)
            return await handler(request)
        except ApiError as exc:
            return auth_response(exc)

    return wrapper


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Credentials(_Body):
    email: str | None = None
    phone: str | None = None
    password: str | None = None
    data: dict[str, Any] | None = None


class RefreshBody(_Body):
    refresh_token: str


class UserUpdate(_Body):
    email: str | None = None
    password: str | None = None
    data: dict[str, Any] | None = None


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("Could not parse request body as JSON", code="bad_json") from exc


def _parse(model: type[M], payload: Any) -> M:
    if not isinstance(payload, dict):
        raise BadRequest("Request body must be a JSON object", code="bad_json")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(f"Invalid {where}: {first['msg']}", code="validation_failed") from exc


def _normalise_email(email: str | None) -> str:
    if not email:
        raise BadRequest("An email address is required", code="validation_failed")
    try:
        valid = validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise BadRequest(
            "Unable to validate email address: invalid format", code="email_address_invalid"
        ) from exc
    return valid.normalized.lower()


def _check_password(state: AppState, password: str | None) -> str:
    minimum = state.settings.password_min_length
    if not password:
        raise BadRequest("Signup requires a valid password", code="validation_failed")
    if len(password) < minimum:
        raise Unprocessable(
            f"Password should be at least {minimum} characters.",
            code="weak_password",
            extra={"weak_password": {"reasons": ["length"]}},
        )
    if len(password.encode()) > 1024:
        raise Unprocessable(
            "Password is too long.",
            code="weak_password",
            extra={"weak_password": {"reasons": ["length"]}},
        )
    return password


def _client(request: Request) -> tuple[str | None, str | None]:
    ip = request.client.host if request.client else None
    return request.headers.get("user-agent"), ip


def _session_body(state: AppState, issued: service.IssuedSession) -> dict[str, Any]:
    settings = state.settings
    return service.session_json(
        issued,
        secret=settings.secret,
        issuer=f"{settings.url}/auth/v1",
        expiry=settings.jwt_expiry_seconds,
    )


@auth_endpoint
async def signup(request: Request) -> Response:
    state = app_state(request)
    body = _parse(Credentials, await _json_body(request))
    if body.phone and not body.email:
        raise Unprocessable("Phone signups are disabled", code="phone_provider_disabled")
    if not body.email and not body.password:
        raise Unprocessable("Anonymous sign-ins are disabled", code="anonymous_provider_disabled")
    email = _normalise_email(body.email)
    password = _check_password(state, body.password)
    limiter = state.services["rate_limiter"]
    await limiter.enforce(limiter.sign_up, "signup", "ip", _client(request)[1] or "unknown")
    password_hash = await passwords.hash_password(password)
    user_agent, ip = _client(request)
    async with state.db.transaction(AUTH_ADMIN) as conn:
        issued = await service.sign_up(
            conn,
            email=email,
            password_hash=password_hash,
            data=body.data or {},
            user_agent=user_agent,
            ip=ip,
        )
    return _ok(_session_body(state, issued))


_INVALID_CREDENTIALS = ("Invalid login credentials", "invalid_credentials")


@auth_endpoint
async def token(request: Request) -> Response:
    state = app_state(request)
    grant_type = request.query_params.get("grant_type")
    payload = await _json_body(request)
    if grant_type == "password":
        return await _password_grant(request, state, payload)
    if grant_type == "refresh_token":
        return await _refresh_grant(state, payload)
    raise BadRequest("unsupported_grant_type", code="invalid_credentials")


async def _password_grant(request: Request, state: AppState, payload: Any) -> Response:
    body = _parse(Credentials, payload)
    if not body.email or not body.password:
        raise BadRequest(*_INVALID_CREDENTIALS[:1], code=_INVALID_CREDENTIALS[1])
    try:
        email = _normalise_email(body.email)
    except ApiError:
        email = ""
    # Sign-in is limited per client IP and per account, against password guessing.
    limiter = state.services["rate_limiter"]
    await limiter.enforce(limiter.sign_in, "signin", "ip", _client(request)[1] or "unknown")
    await limiter.enforce(limiter.sign_in, "signin", "email", email or body.email)
    async with state.db.transaction(AUTH_ADMIN) as conn:
        creds = await service.credentials(conn, email) if email else None
    ok = await passwords.verify_password(
        creds["encrypted_password"] if creds else None, body.password
    )
    if not ok or creds is None:
        raise BadRequest(_INVALID_CREDENTIALS[0], code=_INVALID_CREDENTIALS[1])
    user_agent, ip = _client(request)
    async with state.db.transaction(AUTH_ADMIN) as conn:
        issued = await service.sign_in(conn, creds["id"], user_agent, ip)
    return _ok(_session_body(state, issued))


async def _refresh_grant(state: AppState, payload: Any) -> Response:
    body = _parse(RefreshBody, payload)
    revoked: ApiError | None = None
    async with state.db.transaction(AUTH_ADMIN) as conn:
        try:
            issued = await service.refresh(
                conn,
                body.refresh_token,
                reuse_interval=state.settings.refresh_token_reuse_interval_seconds,
            )
        except service.SessionRevoked as exc:
            revoked = exc  # commit the revocation, then answer the error
    if revoked is not None:
        raise revoked
    return _ok(_session_body(state, issued))


def _user_claims(request: Request) -> tuple[UUID, UUID | None]:
    bearer = bearer_token(request)
    settings = app_state(request).settings
    if bearer is None or bearer == request.headers.get("apikey"):
        raise Unauthorized("This endpoint requires a valid Bearer token", code="no_authorization")
    try:
        claims = decode_token(bearer, settings.secret)
    except TokenError as exc:
        raise Forbidden(
            f"invalid JWT: unable to parse or verify signature, {exc}", code="bad_jwt"
        ) from exc
    try:
        user_id = UUID(str(claims.get("sub")))
    except ValueError as exc:
        raise Forbidden("invalid claim: missing sub claim", code="bad_jwt") from exc
    session_id = claims.get("session_id")
    try:
        return user_id, UUID(session_id) if session_id else None
    except ValueError as exc:
        raise Forbidden("invalid claim: session_id", code="bad_jwt") from exc


@auth_endpoint
async def user(request: Request) -> Response:
    state = app_state(request)
    user_id, session_id = _user_claims(request)
    if request.method == "GET":
        async with state.db.transaction(AUTH_ADMIN) as conn:
            row = await service.load_user(conn, user_id, session_id)
        return _ok(service.user_json(row))

    body = _parse(UserUpdate, await _json_body(request))
    email = _normalise_email(body.email) if body.email is not None else None
    password_hash = None
    if body.password is not None:
        password_hash = await passwords.hash_password(_check_password(state, body.password))
    async with state.db.transaction(AUTH_ADMIN) as conn:
        await service.load_user(conn, user_id, session_id)
        row = await service.update_user(
            conn, user_id, email=email, password_hash=password_hash, data=body.data
        )
    return _ok(service.user_json(row))


@auth_endpoint
async def logout(request: Request) -> Response:
    state = app_state(request)
    user_id, session_id = _user_claims(request)
    scope = request.query_params.get("scope", "global")
    if scope not in ("global", "local", "others"):
        raise BadRequest("scope must be global, local or others", code="validation_failed")
    async with state.db.transaction(AUTH_ADMIN) as conn:
        ended = await service.sign_out(conn, user_id, session_id, scope)
    _remember_revoked(state, sessions=ended)
    return Response(status_code=204, headers={"X-Supabase-Api-Version": AUTH_API_VERSION})


def _remember_revoked(
    state: AppState, *, sessions: list[UUID] | None = None, users: list[UUID] | None = None
) -> None:
    """Refuse the revoked tokens in this process at once; the NOTIFY reaches the others."""
    registry = revocation.registry_for(state.db)
    if registry is not None:
        registry.remember(sessions=sessions or (), users=users or ())


@auth_endpoint
async def settings(request: Request) -> Response:
    return _ok(
        {
            "external": {"email": True, "phone": False, "anonymous_users": False},
            "disable_signup": False,
            "mailer_autoconfirm": True,
            "phone_autoconfirm": False,
            "sms_provider": "",
        }
    )


async def health(request: Request) -> Response:
    return _ok({"version": "pocketbizz", "name": "GoTrue", "description": "PocketBizz auth"})


routes = [
    Route("/signup", signup, methods=["POST"]),
    Route("/token", token, methods=["POST"]),
    Route("/user", user, methods=["GET", "PUT"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/settings", settings, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
]
