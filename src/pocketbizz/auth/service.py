"""Accounts, sessions and rotating refresh tokens. All SQL of the auth service lives here;
it runs as role `pb_auth`, which can touch the `auth` schema and nothing else."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from pocketbizz.errors import ApiError, BadRequest, Forbidden, Unprocessable
from pocketbizz.gateway.tokens import encode_token

_USER_COLUMNS = """id, aud, role, email, email_confirmed_at, last_sign_in_at, raw_app_meta_data,
                   raw_user_meta_data, banned_until, created_at, updated_at"""


@dataclass(frozen=True)
class IssuedSession:
    user: asyncpg.Record
    session_id: UUID
    session_created_at: datetime
    refresh_token: str


def _one(row: asyncpg.Record | None) -> asyncpg.Record:
    if row is None:
        raise RuntimeError("expected a row")
    return row


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def user_json(row: asyncpg.Record) -> dict[str, Any]:
    uid = str(row["id"])
    created = _iso(row["created_at"])
    identity = {
        "identity_id": uid,
        "id": uid,
        "user_id": uid,
        "identity_data": {"sub": uid, "email": row["email"], "email_verified": True},
        "provider": "email",
        "created_at": created,
        "updated_at": _iso(row["updated_at"]),
        "last_sign_in_at": _iso(row["last_sign_in_at"]),
        "email": row["email"],
    }
    return {
        "id": uid,
        "aud": row["aud"],
        "role": row["role"],
        "email": row["email"],
        "phone": "",
        "email_confirmed_at": _iso(row["email_confirmed_at"]),
        "confirmed_at": _iso(row["email_confirmed_at"]),
        "last_sign_in_at": _iso(row["last_sign_in_at"]),
        "app_metadata": row["raw_app_meta_data"],
        "user_metadata": row["raw_user_meta_data"],
        "identities": [identity],
        "created_at": created,
        "updated_at": _iso(row["updated_at"]),
        "is_anonymous": False,
    }


def session_json(issued: IssuedSession, *, secret: str, issuer: str, expiry: int) -> dict[str, Any]:
    now = int(time.time())
    user = issued.user
    claims = {
        "iss": issuer,
        "sub": str(user["id"]),
        "aud": user["aud"],
        "exp": now + expiry,
        "iat": now,
        "email": user["email"],
        "phone": "",
        "app_metadata": user["raw_app_meta_data"],
        "user_metadata": user["raw_user_meta_data"],
        "role": user["role"],
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": int(issued.session_created_at.timestamp())}],
        "session_id": str(issued.session_id),
        "is_anonymous": False,
    }
    return {
        "access_token": encode_token(claims, secret),
        "token_type": "bearer",
        "expires_in": expiry,
        "expires_at": now + expiry,
        "refresh_token": issued.refresh_token,
        "user": user_json(user),
    }


async def _new_refresh_token(
    conn: asyncpg.Connection, user_id: UUID, session_id: UUID, parent: UUID | None
) -> str:
    token = secrets.token_urlsafe(32)
    await conn.execute(
        """insert into auth.refresh_tokens (token_hash, user_id, session_id, parent)
           values ($1, $2, $3, $4)""",
        _hash_token(token),
        user_id,
        session_id,
        parent,
    )
    return token


async def _start_session(
    conn: asyncpg.Connection, user_id: UUID, user_agent: str | None, ip: str | None
) -> IssuedSession:
    session = _one(
        await conn.fetchrow(
            """insert into auth.sessions (user_id, user_agent, ip) values ($1, $2, $3)
           returning id, created_at""",
            user_id,
            user_agent,
            ip,
        )
    )
    user = _one(
        await conn.fetchrow(
            f"update auth.users set last_sign_in_at = now() where id = $1 returning {_USER_COLUMNS}",
            user_id,
        )
    )
    token = await _new_refresh_token(conn, user_id, session["id"], None)
    return IssuedSession(user, session["id"], session["created_at"], token)


async def sign_up(
    conn: asyncpg.Connection,
    *,
    email: str,
    password_hash: str,
    data: dict[str, Any],
    user_agent: str | None,
    ip: str | None,
) -> IssuedSession:
    row = await conn.fetchrow(
        f"""insert into auth.users (email, encrypted_password, email_confirmed_at,
                                   raw_app_meta_data, raw_user_meta_data)
           values ($1, $2, now(), '{{"provider": "email", "providers": ["email"]}}', $3)
           on conflict (email) do nothing
           returning {_USER_COLUMNS}""",
        email,
        password_hash,
        data,
    )
    if row is None:
        raise Unprocessable("User already registered", code="user_already_exists")
    return await _start_session(conn, row["id"], user_agent, ip)


async def credentials(conn: asyncpg.Connection, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "select id, encrypted_password, banned_until from auth.users where email = $1", email
    )


async def sign_in(
    conn: asyncpg.Connection, user_id: UUID, user_agent: str | None, ip: str | None
) -> IssuedSession:
    return await _start_session(conn, user_id, user_agent, ip)


_TOKEN_NOT_FOUND = ("Invalid Refresh Token: Refresh Token Not Found", "refresh_token_not_found")


async def refresh(conn: asyncpg.Connection, token: str, *, reuse_interval: int) -> IssuedSession:
    """Rotate a refresh token. A spent token replayed within the reuse interval (concurrent
    refreshes from one device) gets the session's current token; later, it revokes the session."""
    row = await conn.fetchrow(
        """select t.id, t.user_id, t.session_id, t.revoked,
                  extract(epoch from now() - t.updated_at) as idle_seconds,
                  s.created_at as session_created_at
           from auth.refresh_tokens t join auth.sessions s on s.id = t.session_id
           where t.token_hash = $1
           for update of t, s""",
        _hash_token(token),
    )
    if row is None:
        raise BadRequest(_TOKEN_NOT_FOUND[0], code=_TOKEN_NOT_FOUND[1])
    user = _one(
        await conn.fetchrow(f"select {_USER_COLUMNS} from auth.users where id = $1", row["user_id"])
    )
    if user["banned_until"] is not None and user["banned_until"] > datetime.now(UTC):
        raise BadRequest("User is banned", code="user_banned")

    if row["revoked"]:
        if row["idle_seconds"] <= reuse_interval:
            # Hand out a fresh child of the session's live token rather than the live token
            # itself: we keep only hashes, so the live token's text is not recoverable.
            live = await conn.fetchrow(
                """select id from auth.refresh_tokens
                   where session_id = $1 and not revoked
                   order by created_at desc limit 1""",
                row["session_id"],
            )
            if live is not None:
                await conn.execute(
                    "update auth.refresh_tokens set revoked = true, updated_at = now() "
                    "where id = $1",
                    live["id"],
                )
                new_token = await _new_refresh_token(
                    conn, row["user_id"], row["session_id"], live["id"]
                )
                return IssuedSession(user, row["session_id"], row["session_created_at"], new_token)
        await conn.execute("delete from auth.sessions where id = $1", row["session_id"])
        raise _SessionRevoked(
            "Invalid Refresh Token: Already Used", code="refresh_token_already_used"
        )

    await conn.execute(
        "update auth.refresh_tokens set revoked = true, updated_at = now() where id = $1",
        row["id"],
    )
    await conn.execute(
        "update auth.sessions set refreshed_at = now(), updated_at = now() where id = $1",
        row["session_id"],
    )
    new_token = await _new_refresh_token(conn, row["user_id"], row["session_id"], row["id"])
    return IssuedSession(user, row["session_id"], row["session_created_at"], new_token)


class _SessionRevoked(BadRequest):
    """Raised after the revocation is written: the caller must commit, then answer the error."""


SessionRevoked = _SessionRevoked


async def load_user(
    conn: asyncpg.Connection, user_id: UUID, session_id: UUID | None
) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"""select {_USER_COLUMNS},
                   exists (select 1 from auth.sessions s where s.id = $2 and s.user_id = u.id)
                       as has_session
            from auth.users u where u.id = $1""",
        user_id,
        session_id,
    )
    if row is None:
        raise Forbidden("User from sub claim in JWT does not exist", code="user_not_found")
    if session_id is not None and not row["has_session"]:
        raise Forbidden(
            "Session from session_id claim in JWT does not exist", code="session_not_found"
        )
    return row


async def update_user(
    conn: asyncpg.Connection,
    user_id: UUID,
    *,
    email: str | None,
    password_hash: str | None,
    data: dict[str, Any] | None,
) -> asyncpg.Record:
    try:
        row = await conn.fetchrow(
            f"""update auth.users set
                    email = coalesce($2, email),
                    encrypted_password = coalesce($3, encrypted_password),
                    raw_user_meta_data = case when $4::jsonb is null then raw_user_meta_data
                        else jsonb_strip_nulls(raw_user_meta_data || $4::jsonb) end
                where id = $1
                returning {_USER_COLUMNS}""",
            user_id,
            email,
            password_hash,
            data,
        )
    except asyncpg.UniqueViolationError as exc:
        raise Unprocessable(
            "A user with this email address has already been registered", code="email_exists"
        ) from exc
    if row is None:
        raise Forbidden("User from sub claim in JWT does not exist", code="user_not_found")
    return row


async def sign_out(
    conn: asyncpg.Connection, user_id: UUID, session_id: UUID | None, scope: str
) -> list[UUID]:
    """Delete the sessions of the scope; returns their ids (their tokens are now revoked)."""
    if scope == "global":
        rows = await conn.fetch(
            "delete from auth.sessions where user_id = $1 returning id", user_id
        )
    elif scope == "others":
        rows = await conn.fetch(
            "delete from auth.sessions where user_id = $1 and id is distinct from $2 returning id",
            user_id,
            session_id,
        )
    else:
        rows = await conn.fetch(
            "delete from auth.sessions where user_id = $1 and id = $2 returning id",
            user_id,
            session_id,
        )
    return [r["id"] for r in rows]


__all__ = ["ApiError", "IssuedSession", "SessionRevoked"]
