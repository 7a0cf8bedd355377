"""GoTrue-compatible HTTP endpoints at /auth/v1. Thin: parse, call the service, shape."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pocketbizz.auth import admin, emails, passwords, service, unsupported
from pocketbizz.auth.http import (
    Body,
    auth_endpoint,
    check_password,
    client,
    json_body,
    normalise_email,
    ok,
    parse,
    redirect_target,
    remember_revoked,
    session_body,
    user_claims,
)
from pocketbizz.auth.mailer import Mailer
from pocketbizz.db.database import AUTH_ADMIN
from pocketbizz.errors import (
    AUTH_API_VERSION,
    ApiError,
    AuthCode,
    BadRequest,
    Unprocessable,
    api_error_handlers,
    auth_response,
)
from pocketbizz.state import AppState, app_state


class Credentials(Body):
    email: str | None = None
    phone: str | None = None
    password: str | None = None
    data: dict[str, Any] | None = None


class RefreshBody(Body):
    refresh_token: str


class UserUpdate(Body):
    email: str | None = None
    password: str | None = None
    data: dict[str, Any] | None = None


class RecoverBody(Body):
    email: str | None = None


class VerifyBody(Body):
    type: str | None = None
    token: str | None = None
    token_hash: str | None = None
    email: str | None = None
    phone: str | None = None


class OtpBody(Body):
    email: str | None = None
    phone: str | None = None
    create_user: bool = True
    data: dict[str, Any] | None = None


class ResendBody(Body):
    type: str | None = None
    email: str | None = None
    phone: str | None = None


async def _limit_sign_in(request: Request, state: AppState, account: str) -> None:
    # Password and code guessing are limited per client IP and per account.
    limiter = state.services["rate_limiter"]
    await limiter.enforce(limiter.sign_in, "signin", "ip", client(request)[1] or "unknown")
    await limiter.enforce(limiter.sign_in, "signin", "email", account)


@auth_endpoint
async def signup(request: Request) -> Response:
    state = app_state(request)
    settings = state.settings
    body = parse(Credentials, await json_body(request))
    if body.phone and not body.email:
        raise Unprocessable("Phone signups are disabled", code=AuthCode.PHONE_PROVIDER_DISABLED)
    if not body.email and not body.password:
        raise Unprocessable(
            "Anonymous sign-ins are disabled", code=AuthCode.ANONYMOUS_PROVIDER_DISABLED
        )
    email = normalise_email(body.email)
    if email in settings.operator_email_set:
        # Operator accounts are made with the admin API: sign-up proves no ownership of an
        # address (with autoconfirm, none at all), so it would hand out the operator claim.
        # Answered as for a taken address.
        raise Unprocessable("User already registered", code=AuthCode.USER_ALREADY_EXISTS)
    password = check_password(state, body.password)
    limiter = state.services["rate_limiter"]
    await limiter.enforce(limiter.sign_up, "signup", "ip", client(request)[1] or "unknown")
    password_hash = await passwords.hash_password(password)
    user_agent, ip = client(request)
    redirect_to = redirect_target(state, request.query_params.get("redirect_to"))
    async with state.db.transaction(AUTH_ADMIN) as conn:
        row = await service.sign_up(
            conn,
            email=email,
            password_hash=password_hash,
            data=body.data or {},
            confirmed=settings.mailer_autoconfirm,
        )
        if settings.mailer_autoconfirm:
            issued = await service.start_session(conn, row["id"], user_agent, ip)
            return ok(session_body(state, issued))
        # GoTrue: the user alone (no session) until the mailed link confirms the address.
        await emails.send_token(
            conn,
            settings,
            user_id=row["id"],
            user_metadata=row["raw_user_meta_data"],
            token_type="confirmation_token",
            to=email,
            redirect_to=redirect_to,
        )
        sent = await service.user_by_id(conn, row["id"])
    return ok(service.user_json(sent or row))


_INVALID_CREDENTIALS = ("Invalid login credentials", AuthCode.INVALID_CREDENTIALS)


@auth_endpoint
async def token(request: Request) -> Response:
    state = app_state(request)
    grant_type = request.query_params.get("grant_type")
    payload = await json_body(request)
    if grant_type == "password":
        return await _password_grant(request, state, payload)
    if grant_type == "refresh_token":
        return await _refresh_grant(state, payload)
    raise BadRequest("unsupported_grant_type", code=AuthCode.INVALID_CREDENTIALS)


async def _password_grant(request: Request, state: AppState, payload: Any) -> Response:
    body = parse(Credentials, payload)
    if not body.email or not body.password:
        raise BadRequest(_INVALID_CREDENTIALS[0], code=_INVALID_CREDENTIALS[1])
    try:
        email = normalise_email(body.email)
    except ApiError:
        email = ""
    await _limit_sign_in(request, state, email or body.email)
    async with state.db.transaction(AUTH_ADMIN) as conn:
        creds = await service.credentials(conn, email) if email else None
    ok_password = await passwords.verify_password(
        creds["encrypted_password"] if creds else None, body.password
    )
    if not ok_password or creds is None:
        raise BadRequest(_INVALID_CREDENTIALS[0], code=_INVALID_CREDENTIALS[1])
    # GoTrue's answers, given only to the holder of the password (no account-state oracle).
    if service.is_banned(creds["banned_until"]):
        raise BadRequest("User is banned", code=AuthCode.USER_BANNED)
    if creds["email_confirmed_at"] is None:
        raise BadRequest("Email not confirmed", code=AuthCode.EMAIL_NOT_CONFIRMED)
    user_agent, ip = client(request)
    async with state.db.transaction(AUTH_ADMIN) as conn:
        issued = await service.start_session(conn, creds["id"], user_agent, ip)
    return ok(session_body(state, issued))


async def _refresh_grant(state: AppState, payload: Any) -> Response:
    body = parse(RefreshBody, payload)
    revoked: service.SessionRevoked | None = None
    async with state.db.transaction(AUTH_ADMIN) as conn:
        try:
            issued = await service.refresh(
                conn,
                body.refresh_token,
                reuse_interval=state.settings.refresh_token_reuse_interval_seconds,
                inactivity_timeout=state.settings.sessions_inactivity_timeout,
            )
        except service.SessionRevoked as exc:
            revoked = exc  # commit the revocation, then answer the error
    if revoked is not None:
        remember_revoked(state, sessions=[revoked.revoked_session])
        raise revoked
    return ok(session_body(state, issued))


@auth_endpoint
async def user(request: Request) -> Response:
    state = app_state(request)
    settings = state.settings
    user_id, session_id = user_claims(request)
    if request.method == "GET":
        async with state.db.transaction(AUTH_ADMIN) as conn:
            row = await service.load_user(conn, user_id, session_id)
        return ok(service.user_json(row))

    body = parse(UserUpdate, await json_body(request))
    email = normalise_email(body.email) if body.email is not None else None
    password_hash = None
    if body.password is not None:
        check_password(state, body.password)
        async with state.db.transaction(AUTH_ADMIN) as conn:
            # The session is checked first: a signed-out token must not test passwords.
            await service.load_user(conn, user_id, session_id)
            current_hash = await service.password_hash(conn, user_id)
        if await passwords.verify_password(current_hash, body.password):
            raise Unprocessable(
                "New password should be different from the old password.",
                code=AuthCode.SAME_PASSWORD,
            )
        password_hash = await passwords.hash_password(body.password)
    # With mail configured, a new address must be confirmed first (GoTrue's email change).
    confirm_change = Mailer.from_settings(settings).configured
    ended: list[UUID] = []
    async with state.db.transaction(AUTH_ADMIN) as conn:
        current = await service.load_user(conn, user_id, session_id)
        if email == current["email"]:
            email = None
        if email is not None and email in settings.operator_email_set:
            # As at sign-up: no user takes an operator's address (it carries the claim).
            raise Unprocessable(
                "A user with this email address has already been registered",
                code=AuthCode.EMAIL_EXISTS,
            )
        if email is not None and confirm_change:
            await service.request_email_change(conn, user_id, email)
            await emails.send_token(
                conn,
                settings,
                user_id=user_id,
                user_metadata=current["raw_user_meta_data"],
                token_type="email_change_token_new",
                to=email,
                redirect_to=redirect_target(state, request.query_params.get("redirect_to")),
            )
            email = None
        row = await service.update_user(
            conn, user_id, email=email, password_hash=password_hash, data=body.data
        )
        if password_hash is not None:
            # GoTrue: a new password signs out every other session.
            ended = await service.end_sessions(conn, user_id, keep=session_id)
    remember_revoked(state, sessions=ended)
    return ok(service.user_json(row))


@auth_endpoint
async def logout(request: Request) -> Response:
    state = app_state(request)
    user_id, session_id = user_claims(request)
    scope = request.query_params.get("scope", "global")
    if scope not in ("global", "local", "others"):
        raise BadRequest("scope must be global, local or others", code=AuthCode.VALIDATION_FAILED)
    async with state.db.transaction(AUTH_ADMIN) as conn:
        ended = await service.sign_out(conn, user_id, session_id, scope)
    remember_revoked(state, sessions=ended)
    return Response(status_code=204, headers={"X-Supabase-Api-Version": AUTH_API_VERSION})


@auth_endpoint
async def recover(request: Request) -> Response:
    """Mail a recovery link and code. The answer is the same whether or not the address has an
    account (no enumeration)."""
    state = app_state(request)
    body = parse(RecoverBody, await json_body(request))
    email = normalise_email(body.email)
    emails.require_mail(state.settings, "recovery_token")
    await _limit_sign_in(request, state, email)
    redirect_to = redirect_target(state, request.query_params.get("redirect_to"))
    async with state.db.transaction(AUTH_ADMIN) as conn:
        found = await service.find_user_by_email(conn, email)
        if found is not None:
            await emails.send_token(
                conn,
                state.settings,
                user_id=found["id"],
                user_metadata=found["raw_user_meta_data"],
                token_type="recovery_token",
                to=email,
                redirect_to=redirect_to,
            )
    return ok({})


@auth_endpoint
async def otp(request: Request) -> Response:
    """Sign-in by mailed link or code (GoTrue's magic link / e-mail OTP). An unknown address
    gets an account first when `create_user` (the clients' default), as GoTrue does."""
    state = app_state(request)
    settings = state.settings
    body = parse(OtpBody, await json_body(request))
    if body.phone and not body.email:
        raise Unprocessable("Phone logins are disabled", code=AuthCode.PHONE_PROVIDER_DISABLED)
    email = normalise_email(body.email)
    emails.require_mail(settings, "recovery_token")
    await _limit_sign_in(request, state, email)
    redirect_to = redirect_target(state, request.query_params.get("redirect_to"))
    async with state.db.transaction(AUTH_ADMIN) as conn:
        found = await service.find_user_by_email(conn, email)
        if found is None:
            if not body.create_user:
                raise Unprocessable("Signups not allowed for otp", code=AuthCode.OTP_DISABLED)
            # No password was chosen: a random one nobody knows (recovery can set one).
            password_hash = await passwords.hash_password(secrets.token_urlsafe(48))
            found = await service.sign_up(
                conn,
                email=email,
                password_hash=password_hash,
                data=body.data or {},
                confirmed=settings.mailer_autoconfirm,
            )
        confirmed = found["email_confirmed_at"] is not None
        await emails.send_token(
            conn,
            settings,
            user_id=found["id"],
            user_metadata=found["raw_user_meta_data"],
            token_type="recovery_token" if confirmed else "confirmation_token",
            to=email,
            redirect_to=redirect_to,
            kind="magiclink" if confirmed else None,
        )
    return ok({})


@auth_endpoint
async def resend(request: Request) -> Response:
    """Send the sign-up confirmation or the e-mail change link again."""
    state = app_state(request)
    body = parse(ResendBody, await json_body(request))
    if body.type not in ("signup", "email_change"):
        raise BadRequest(
            "Missing one of these types: signup, email_change, sms, phone_change",
            code=AuthCode.VALIDATION_FAILED,
        )
    email = normalise_email(body.email)
    emails.require_mail(state.settings, "confirmation_token")
    await _limit_sign_in(request, state, email)
    redirect_to = redirect_target(state, request.query_params.get("redirect_to"))
    async with state.db.transaction(AUTH_ADMIN) as conn:
        if body.type == "signup":
            found = await service.find_user_by_email(conn, email)
            if found is not None and found["email_confirmed_at"] is None:
                await emails.send_token(
                    conn,
                    state.settings,
                    user_id=found["id"],
                    user_metadata=found["raw_user_meta_data"],
                    token_type="confirmation_token",
                    to=email,
                    redirect_to=redirect_to,
                )
        else:
            pending = await service.find_user_by_pending_email(conn, email)
            if pending is not None:
                await emails.send_token(
                    conn,
                    state.settings,
                    user_id=pending["id"],
                    user_metadata=pending["raw_user_meta_data"],
                    token_type="email_change_token_new",
                    to=email,
                    redirect_to=redirect_to,
                )
    return ok({})


# GoTrue's verification types and the one-time tokens each may spend.
_VERIFY_TYPES: dict[str, tuple[service.TokenType, ...]] = {
    "signup": ("confirmation_token",),
    "invite": ("confirmation_token",),  # admin generate_link(type=invite)
    "recovery": ("recovery_token",),
    "magiclink": ("recovery_token",),
    "email_change": ("email_change_token_new",),
    "email": ("confirmation_token", "recovery_token"),
}


async def _verify(
    request: Request, state: AppState, kind: str | None, token_hash: str, *, from_link: bool
) -> service.IssuedSession:
    if kind not in _VERIFY_TYPES:
        raise BadRequest("Verify requires a verification type", code=AuthCode.VALIDATION_FAILED)
    user_agent, ip = client(request)
    async with state.db.transaction(AUTH_ADMIN) as conn:
        user, token_type, sent_to = await service.consume_token(
            conn,
            _VERIFY_TYPES[kind],
            token_hash,
            lifetime=state.settings.mailer_otp_exp,
            from_link=from_link,
        )
        if token_type == "email_change_token_new":
            await service.apply_email_change(conn, user["id"], sent_to)
        else:
            # Following a link sent to the address proves the address.
            await service.confirm_email(conn, user["id"])
        return await service.start_session(conn, user["id"], user_agent, ip)


@auth_endpoint
async def verify(request: Request) -> Response:
    state = app_state(request)
    body = parse(VerifyBody, await json_body(request))
    if body.phone:
        raise Unprocessable("Phone logins are disabled", code=AuthCode.PHONE_PROVIDER_DISABLED)
    if body.token_hash:
        token_hash, from_link = body.token_hash, True
    elif body.token and body.email:
        email = normalise_email(body.email)
        await _limit_sign_in(request, state, email)
        token_hash, from_link = service.link_token_hash(email, body.token.strip()), False
    elif body.token:
        token_hash, from_link = body.token, True  # a link's token posted as is
    else:
        raise BadRequest(
            "Verify requires either a token or a token hash", code=AuthCode.VALIDATION_FAILED
        )
    issued = await _verify(request, state, body.type, token_hash, from_link=from_link)
    return ok(session_body(state, issued))


async def _verify_link(request: Request) -> Response:
    """The mailed link: verify, then 303 to redirect_to with the session (or the error) in the
    URL fragment, as GoTrue's implicit flow does."""
    state = app_state(request)
    params = request.query_params
    target = redirect_target(state, params.get("redirect_to"))
    kind = params.get("type")
    try:
        issued = await _verify(request, state, kind, params.get("token") or "", from_link=True)
    except ApiError as exc:
        fragment = urlencode(
            {"error": "access_denied", "error_code": exc.code, "error_description": exc.message}
        )
        return RedirectResponse(f"{target}#{fragment}", status_code=303)
    session = session_body(state, issued)
    fragment = urlencode(
        {
            "access_token": session["access_token"],
            "expires_at": session["expires_at"],
            "expires_in": session["expires_in"],
            "refresh_token": session["refresh_token"],
            "token_type": session["token_type"],
            "type": kind,
        }
    )
    return RedirectResponse(f"{target}#{fragment}", status_code=303)


verify_link = auth_endpoint(_verify_link, key_required=False)


@auth_endpoint
async def settings(request: Request) -> Response:
    config = app_state(request).settings
    return ok(
        {
            "external": {"email": True, "phone": False, "anonymous_users": False},
            "disable_signup": False,
            "mailer_autoconfirm": config.mailer_autoconfirm,
            "phone_autoconfirm": False,
            "sms_provider": "",
            "saml_enabled": False,
        }
    )


async def health(request: Request) -> Response:
    return ok({"version": "pocketbizz", "name": "GoTrue", "description": "PocketBizz auth"})


routes: list[BaseRoute] = [
    Route("/signup", signup, methods=["POST"]),
    Route("/token", token, methods=["POST"]),
    Route("/user", user, methods=["GET", "PUT"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/recover", recover, methods=["POST"]),
    Route("/otp", otp, methods=["POST"]),
    Route("/resend", resend, methods=["POST"]),
    Route("/verify", verify_link, methods=["GET"]),
    Route("/verify", verify, methods=["POST"]),
    Route("/settings", settings, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    *admin.routes,
    *unsupported.routes,
]

# The sub-app's one exception handler: every failure in GoTrue's shape.
error_handlers = api_error_handlers(auth_response)
