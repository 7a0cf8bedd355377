"""GoTrue's admin API (/auth/v1/admin/users), for `service_role` only: what the official
clients' `auth.admin` calls. Deleting a user purges the tenant (rows and files)."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pocketbizz.auth import emails, passwords, service
from pocketbizz.auth.http import (
    Body,
    auth_endpoint,
    bearer_claims,
    check_password,
    json_body,
    normalise_email,
    ok,
    parse,
    redirect_target,
    remember_revoked,
)
from pocketbizz.db.database import AUTH_ADMIN
from pocketbizz.errors import AuthCode, BadRequest, Forbidden, NotFound, Unprocessable
from pocketbizz.state import AppState, app_state
from pocketbizz.storage.tenant_purge import purge_tenant

_MAX_PER_PAGE = 1000


class AdminUserParams(Body):
    email: str | None = None
    phone: str | None = None
    password: str | None = None
    email_confirm: bool = False
    user_metadata: dict[str, Any] | None = None
    app_metadata: dict[str, Any] | None = None
    ban_duration: str | None = None
    role: str | None = None


class GenerateLinkParams(Body):
    type: str | None = None
    email: str | None = None
    password: str | None = None
    new_email: str | None = None
    data: dict[str, Any] | None = None


class DeleteParams(Body):
    should_soft_delete: bool = False


def _require_admin(request: Request) -> AppState:
    if bearer_claims(request, key_allowed=True).get("role") != "service_role":
        raise Forbidden("User not allowed", code=AuthCode.NOT_ADMIN)
    return app_state(request)


def _user_id(request: Request) -> UUID:
    try:
        return UUID(request.path_params["user_id"])
    except ValueError as exc:
        raise BadRequest("user_id must be an UUID", code=AuthCode.VALIDATION_FAILED) from exc


def _not_found() -> NotFound:
    return NotFound("User not found", code=AuthCode.USER_NOT_FOUND)


# Go's time.ParseDuration, which GoTrue's ban_duration uses: "24h", "1h30m", "90s", "1.5h".
_GO_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def banned_until(ban_duration: str) -> datetime | None:
    """The end of a ban of `ban_duration` from now; None ("none", or no time) lifts it."""
    if ban_duration == "none":
        return None
    sign, text = (-1, ban_duration[1:]) if ban_duration.startswith("-") else (1, ban_duration)
    text = text.removeprefix("+")
    parts = _GO_DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise BadRequest(
            f'invalid format for ban duration: time: invalid duration "{ban_duration}"',
            code=AuthCode.VALIDATION_FAILED,
        )
    seconds = sign * sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds == 0:
        return None
    try:
        return datetime.now(UTC) + timedelta(seconds=seconds)
    except OverflowError as exc:
        raise BadRequest(
            "invalid format for ban duration: out of range", code=AuthCode.VALIDATION_FAILED
        ) from exc


def _check_params(params: AdminUserParams) -> None:
    if params.phone:
        raise Unprocessable("Phone logins are disabled", code=AuthCode.PHONE_PROVIDER_DISABLED)
    # Roles become database roles: only the one users have may be given.
    if params.role not in (None, "", "authenticated"):
        raise Unprocessable(
            "Only the role authenticated can be given", code=AuthCode.VALIDATION_FAILED
        )


def _positive(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise BadRequest(
            f"Bad Pagination Parameters: {name} must be a positive integer",
            code=AuthCode.VALIDATION_FAILED,
        )
    return value


@auth_endpoint
async def list_users(request: Request) -> Response:
    state = _require_admin(request)
    page = _positive(request, "page", 1)
    per_page = min(_positive(request, "per_page", 50), _MAX_PER_PAGE)
    async with state.db.transaction(AUTH_ADMIN) as conn:
        rows, total = await service.list_users(conn, page=page, per_page=per_page)
    # GoTrue's pagination headers.
    last = max((total + per_page - 1) // per_page, 1)
    base = f"{state.settings.url}/auth/v1/admin/users"
    links = [f'<{base}?page={last}&per_page={per_page}>; rel="last"']
    if page < last:
        links.insert(0, f'<{base}?page={page + 1}&per_page={per_page}>; rel="next"')
    return ok(
        {"users": [service.user_json(r) for r in rows], "aud": "authenticated"},
        headers={"X-Total-Count": str(total), "Link": ", ".join(links)},
    )


@auth_endpoint
async def create_user(request: Request) -> Response:
    state = _require_admin(request)
    params = parse(AdminUserParams, await json_body(request))
    _check_params(params)
    if not params.email:
        raise Unprocessable(
            "Cannot create a user without either an email or phone", code=AuthCode.VALIDATION_FAILED
        )
    email = normalise_email(params.email)
    # No password given: a random one, as GoTrue does (the user recovers to choose one).
    password = params.password or secrets.token_urlsafe(48)
    password_hash = await passwords.hash_password(check_password(state, password))
    until = banned_until(params.ban_duration) if params.ban_duration else None
    async with state.db.transaction(AUTH_ADMIN) as conn:
        row = await service.admin_create_user(
            conn,
            email=email,
            password_hash=password_hash,
            user_metadata=params.user_metadata or {},
            app_metadata=params.app_metadata or {},
            confirmed=params.email_confirm,
            banned_until=until,
        )
    return ok(service.user_json(row))


@auth_endpoint
async def get_user(request: Request) -> Response:
    state = _require_admin(request)
    user_id = _user_id(request)
    async with state.db.transaction(AUTH_ADMIN) as conn:
        row = await service.user_by_id(conn, user_id)
    if row is None:
        raise _not_found()
    return ok(service.user_json(row))


@auth_endpoint
async def update_user(request: Request) -> Response:
    state = _require_admin(request)
    user_id = _user_id(request)
    params = parse(AdminUserParams, await json_body(request))
    _check_params(params)
    email = normalise_email(params.email) if params.email else None
    password_hash = None
    if params.password is not None:
        password_hash = await passwords.hash_password(check_password(state, params.password))
    ban: datetime | service.Unset | None = service.UNSET
    if params.ban_duration:
        ban = banned_until(params.ban_duration)
    ended: list[UUID] = []
    async with state.db.transaction(AUTH_ADMIN) as conn:
        if await service.user_by_id(conn, user_id) is None:
            raise _not_found()
        row = await service.update_user(
            conn,
            user_id,
            email=email,
            password_hash=password_hash,
            data=params.user_metadata,
            app_data=params.app_metadata,
            confirm_email=params.email_confirm,
            banned_until=ban,
        )
        # A new password (GoTrue) or a ban (ours: refused at once, not at the token's expiry)
        # ends every session.
        if password_hash is not None or (isinstance(ban, datetime) and service.is_banned(ban)):
            ended = await service.end_sessions(conn, user_id)
    remember_revoked(state, sessions=ended)
    return ok(service.user_json(row))


@auth_endpoint
async def delete_user(request: Request) -> Response:
    """Account closure: the tenant's rows, files and account go, in one transaction (files'
    bytes right after it). Soft deletion would keep the data a closure must erase."""
    state = _require_admin(request)
    user_id = _user_id(request)
    params = parse(DeleteParams, await json_body(request))
    if params.should_soft_delete:
        raise Unprocessable(
            "Soft deletion is not supported: deleting a user erases the account and its data",
            code=AuthCode.VALIDATION_FAILED,
        )
    if not await purge_tenant(state.db, state.services["storage"], user_id):
        raise _not_found()
    remember_revoked(state, users=[user_id])
    return ok({})


@auth_endpoint
async def generate_link(request: Request) -> Response:
    """GoTrue's generate_link: the link and code a mail would carry, for the operator's own
    mailer; nothing is sent. Sign-up and invite make the (unconfirmed) account first."""
    state = _require_admin(request)
    params = parse(GenerateLinkParams, await json_body(request))
    kind = params.type
    if kind not in ("signup", "invite", "magiclink", "recovery", "email_change_new"):
        raise BadRequest(
            "Invalid type: use signup, invite, magiclink, recovery or email_change_new",
            code=AuthCode.VALIDATION_FAILED,
        )
    email = normalise_email(params.email)
    new_email = normalise_email(params.new_email) if kind == "email_change_new" else None
    password_hash = None
    if kind in ("signup", "invite"):
        password = params.password if kind == "signup" else secrets.token_urlsafe(48)
        password_hash = await passwords.hash_password(check_password(state, password))
    redirect_to = redirect_target(state, request.query_params.get("redirect_to"))
    async with state.db.transaction(AUTH_ADMIN) as conn:
        if password_hash is not None:
            row = await service.admin_create_user(
                conn,
                email=email,
                password_hash=password_hash,
                user_metadata=params.data or {},
                app_metadata={},
                confirmed=False,
                banned_until=None,
            )
        else:
            found = await service.find_user_by_email(conn, email)
            if found is None:
                raise NotFound("User with this email not found", code=AuthCode.USER_NOT_FOUND)
            row = found
        token_type: service.TokenType = "recovery_token"
        sent_to = email
        if kind in ("signup", "invite"):
            token_type = "confirmation_token"
        elif new_email is not None:
            await service.request_email_change(conn, row["id"], new_email)
            token_type, sent_to = "email_change_token_new", new_email
        issued = await service.issue_token(conn, row["id"], token_type, sent_to, max_frequency=0)
        row = await service.user_by_id(conn, row["id"]) or row
    link_type = "email_change" if kind == "email_change_new" else kind
    return ok(
        {
            **service.user_json(row),
            "action_link": emails.verify_link(
                state.settings, issued.token_hash, link_type, redirect_to
            ),
            "email_otp": issued.code,
            "hashed_token": issued.token_hash,
            "redirect_to": redirect_to,
            "verification_type": kind,
        }
    )


class InviteParams(Body):
    email: str | None = None
    data: dict[str, Any] | None = None


@auth_endpoint
async def invite(request: Request) -> Response:
    """GoTrue's invite: an unconfirmed account (no password yet) and a mailed link that signs
    the invitee in, to choose a password."""
    state = _require_admin(request)
    params = parse(InviteParams, await json_body(request))
    email = normalise_email(params.email)
    emails.require_mail(state.settings, "confirmation_token")
    password_hash = await passwords.hash_password(secrets.token_urlsafe(48))
    redirect_to = redirect_target(state, request.query_params.get("redirect_to"))
    async with state.db.transaction(AUTH_ADMIN) as conn:
        row = await service.admin_create_user(
            conn,
            email=email,
            password_hash=password_hash,
            user_metadata=params.data or {},
            app_metadata={},
            confirmed=False,
            banned_until=None,
        )
        await emails.send_token(
            conn,
            state.settings,
            user_id=row["id"],
            user_metadata=row["raw_user_meta_data"],
            token_type="confirmation_token",
            to=email,
            redirect_to=redirect_to,
            kind="invite",
        )
        row = await service.user_by_id(conn, row["id"]) or row
    return ok(service.user_json(row))


routes = [
    Route("/invite", invite, methods=["POST"]),
    Route("/admin/generate_link", generate_link, methods=["POST"]),
    Route("/admin/users", list_users, methods=["GET"]),
    Route("/admin/users", create_user, methods=["POST"]),
    Route("/admin/users/{user_id}", get_user, methods=["GET"]),
    Route("/admin/users/{user_id}", update_user, methods=["PUT"]),
    Route("/admin/users/{user_id}", delete_user, methods=["DELETE"]),
]
