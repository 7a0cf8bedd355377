"""Accounts, sessions, rotating refresh tokens, mailed one-time tokens and their purge. All
SQL of the auth service lives here; it runs as role `pb_auth`, which can touch the `auth` schema
and nothing else (account closure goes through `pb_internal.purge_tenant`, see
`pocketbizz.storage.tenant_purge`)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, Literal
from uuid import UUID

import asyncpg

from pocketbizz.errors import ApiError, AuthCode, BadRequest, Forbidden, Unprocessable
from pocketbizz.gateway.tokens import encode_token

_USER_COLUMNS = """id, aud, role, email, email_confirmed_at, last_sign_in_at, raw_app_meta_data,
                   raw_user_meta_data, banned_until, created_at, updated_at,
                   confirmation_sent_at, recovery_sent_at, email_change, email_change_sent_at"""


@dataclass(frozen=True)
class IssuedSession:
    user: asyncpg.Record
    session_id: UUID
    session_created_at: datetime
    refresh_token: str


class Unset(Enum):
    """Marks an attribute an update leaves alone (None is a value: "not banned")."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET


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
    confirmed = row["email_confirmed_at"] is not None
    identity = {
        "identity_id": uid,
        "id": uid,
        "user_id": uid,
        "identity_data": {"sub": uid, "email": row["email"], "email_verified": confirmed},
        "provider": "email",
        "created_at": created,
        "updated_at": _iso(row["updated_at"]),
        "last_sign_in_at": _iso(row["last_sign_in_at"]),
        "email": row["email"],
    }
    body: dict[str, Any] = {
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
    # GoTrue leaves these out while they are unset.
    optional = {
        "confirmation_sent_at": _iso(row["confirmation_sent_at"]),
        "recovery_sent_at": _iso(row["recovery_sent_at"]),
        "new_email": row["email_change"],
        "email_change_sent_at": _iso(row["email_change_sent_at"]),
        "banned_until": _iso(row["banned_until"]),
    }
    body.update({k: v for k, v in optional.items() if v})
    return body


def session_json(
    issued: IssuedSession, *, secret: str, issuer: str, expiry: int, operators: frozenset[str]
) -> dict[str, Any]:
    now = int(time.time())
    user = issued.user
    # The operator claim comes from PB_OPERATOR_EMAILS alone: an `operator` key stored in the
    # account's app_metadata (which an admin API call could write) is never passed on.
    app_metadata = {k: v for k, v in user["raw_app_meta_data"].items() if k != "operator"}
    if user["email"] in operators:
        app_metadata["operator"] = True
    claims = {
        "iss": issuer,
        "sub": str(user["id"]),
        "aud": user["aud"],
        "exp": now + expiry,
        "iat": now,
        "email": user["email"],
        "phone": "",
        "app_metadata": app_metadata,
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
            f"update auth.users set last_sign_in_at = now() where id = $1"
            f" returning {_USER_COLUMNS}",
            user_id,
        )
    )
    token = await _new_refresh_token(conn, user_id, session["id"], None)
    return IssuedSession(user, session["id"], session["created_at"], token)


async def _reserve_email(conn: asyncpg.Connection, email: str) -> None:
    """Serialise every claim on one address (sign-up, e-mail change, admin create) for the rest
    of the transaction, so the checks below cannot race."""
    await conn.execute(
        "select pg_advisory_xact_lock(hashtextextended('pb.email:' || $1, 0))", email
    )


async def _email_taken(conn: asyncpg.Connection, email: str, *, by_other_than: UUID | None) -> bool:
    """In use, or pending for an e-mail change, by another account."""
    taken: bool = await conn.fetchval(
        """select exists (select 1 from auth.users
                          where (email = $1 or email_change = $1) and id is distinct from $2)""",
        email,
        by_other_than,
    )
    return taken


_EMAIL_EXISTS = (
    "A user with this email address has already been registered",
    AuthCode.EMAIL_EXISTS,
)


async def sign_up(
    conn: asyncpg.Connection,
    *,
    email: str,
    password_hash: str,
    data: dict[str, Any],
    confirmed: bool,
) -> asyncpg.Record:
    """Create the account (and, by trigger, the tenant). Unconfirmed accounts wait for the
    confirmation link before they can sign in."""
    await _reserve_email(conn, email)
    if await _email_taken(conn, email, by_other_than=None):
        raise Unprocessable("User already registered", code=AuthCode.USER_ALREADY_EXISTS)
    return _one(
        await conn.fetchrow(
            f"""insert into auth.users (email, encrypted_password, email_confirmed_at,
                                       raw_app_meta_data, raw_user_meta_data)
               values ($1, $2, case when $4 then now() end,
                       '{{"provider": "email", "providers": ["email"]}}', $3)
               returning {_USER_COLUMNS}""",
            email,
            password_hash,
            data,
            confirmed,
        )
    )


async def start_session(
    conn: asyncpg.Connection, user_id: UUID, user_agent: str | None, ip: str | None
) -> IssuedSession:
    return await _start_session(conn, user_id, user_agent, ip)


async def credentials(conn: asyncpg.Connection, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """select id, encrypted_password, banned_until, email_confirmed_at
           from auth.users where email = $1""",
        email,
    )


async def password_hash(conn: asyncpg.Connection, user_id: UUID) -> str | None:
    found: str | None = await conn.fetchval(
        "select encrypted_password from auth.users where id = $1", user_id
    )
    return found


def is_banned(banned_until: datetime | None) -> bool:
    return banned_until is not None and banned_until > datetime.now(UTC)


_TOKEN_NOT_FOUND = (
    "Invalid Refresh Token: Refresh Token Not Found",
    AuthCode.REFRESH_TOKEN_NOT_FOUND,
)


async def refresh(
    conn: asyncpg.Connection, token: str, *, reuse_interval: int, inactivity_timeout: int
) -> IssuedSession:
    """Rotate a refresh token. A spent token replayed within the reuse interval (concurrent
    refreshes from one device) gets the session's current token; later, it revokes the session."""
    row = await conn.fetchrow(
        """select t.id, t.user_id, t.session_id, t.revoked,
                  extract(epoch from now() - t.updated_at) as idle_seconds,
                  extract(epoch from now() - coalesce(s.refreshed_at, s.created_at))
                      as session_idle_seconds,
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
    if is_banned(user["banned_until"]):
        raise BadRequest("Invalid Refresh Token: User Banned", code=AuthCode.USER_BANNED)
    if inactivity_timeout and row["session_idle_seconds"] > inactivity_timeout:
        raise BadRequest(
            "Invalid Refresh Token: Session Expired (Inactivity)", code=AuthCode.SESSION_EXPIRED
        )

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
                await _touch_session(conn, row["session_id"])
                new_token = await _new_refresh_token(
                    conn, row["user_id"], row["session_id"], live["id"]
                )
                return IssuedSession(user, row["session_id"], row["session_created_at"], new_token)
        await conn.execute("delete from auth.sessions where id = $1", row["session_id"])
        raise _SessionRevoked(
            "Invalid Refresh Token: Already Used",
            code=AuthCode.REFRESH_TOKEN_ALREADY_USED,
            revoked_session=row["session_id"],
        )

    await conn.execute(
        "update auth.refresh_tokens set revoked = true, updated_at = now() where id = $1",
        row["id"],
    )
    await _touch_session(conn, row["session_id"])
    new_token = await _new_refresh_token(conn, row["user_id"], row["session_id"], row["id"])
    return IssuedSession(user, row["session_id"], row["session_created_at"], new_token)


async def _touch_session(conn: asyncpg.Connection, session_id: UUID) -> None:
    # refreshed_at marks the last access token issued: the inactivity timeout counts from it.
    await conn.execute(
        "update auth.sessions set refreshed_at = now(), updated_at = now() where id = $1",
        session_id,
    )


class _SessionRevoked(BadRequest):
    """Raised after the revocation is written: the caller must commit, then answer the error."""

    def __init__(self, message: str, *, code: str, revoked_session: UUID) -> None:
        super().__init__(message, code=code)
        self.revoked_session = revoked_session


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
        raise Forbidden("User from sub claim in JWT does not exist", code=AuthCode.USER_NOT_FOUND)
    if session_id is not None and not row["has_session"]:
        raise Forbidden(
            "Session from session_id claim in JWT does not exist", code=AuthCode.SESSION_NOT_FOUND
        )
    if is_banned(row["banned_until"]):
        raise Forbidden("User is banned", code=AuthCode.USER_BANNED)
    return row


async def update_user(
    conn: asyncpg.Connection,
    user_id: UUID,
    *,
    email: str | None = None,
    password_hash: str | None = None,
    data: dict[str, Any] | None = None,
    app_data: dict[str, Any] | None = None,
    confirm_email: bool = False,
    banned_until: datetime | Unset | None = UNSET,
) -> asyncpg.Record:
    """Write the given attributes. A new e-mail here takes effect at once (no mail configured,
    or the admin API); metadata is merged key by key, a null value removing its key."""
    if email is not None:
        await _reserve_email(conn, email)
        if await _email_taken(conn, email, by_other_than=user_id):
            raise Unprocessable(_EMAIL_EXISTS[0], code=_EMAIL_EXISTS[1])
    row = await conn.fetchrow(
        f"""update auth.users set
                email = coalesce($2, email),
                email_change = case when $2::text is null then email_change end,
                email_change_sent_at = case when $2::text is null then email_change_sent_at end,
                encrypted_password = coalesce($3, encrypted_password),
                raw_user_meta_data = case when $4::jsonb is null then raw_user_meta_data
                    else jsonb_strip_nulls(raw_user_meta_data || $4::jsonb) end,
                raw_app_meta_data = case when $5::jsonb is null then raw_app_meta_data
                    else jsonb_strip_nulls(raw_app_meta_data || $5::jsonb) end,
                email_confirmed_at = case when $6 then coalesce(email_confirmed_at, now())
                    else email_confirmed_at end,
                banned_until = case when $7 then $8 else banned_until end
            where id = $1
            returning {_USER_COLUMNS}""",
        user_id,
        email,
        password_hash,
        data,
        app_data,
        confirm_email,
        not isinstance(banned_until, Unset),
        None if isinstance(banned_until, Unset) else banned_until,
    )
    if row is None:
        raise Forbidden("User from sub claim in JWT does not exist", code=AuthCode.USER_NOT_FOUND)
    return row


async def end_sessions(
    conn: asyncpg.Connection, user_id: UUID, *, keep: UUID | None = None
) -> list[UUID]:
    """Sign the user out everywhere but `keep` (a password change, a ban); returns the ended
    sessions, whose access tokens every surface now refuses."""
    rows = await conn.fetch(
        "delete from auth.sessions where user_id = $1 and id is distinct from $2 returning id",
        user_id,
        keep,
    )
    return [r["id"] for r in rows]


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


# -- e-mailed one-time tokens (GoTrue: confirmation, recovery, email change) -----------------

TokenType = Literal["confirmation_token", "recovery_token", "email_change_token_new"]
_SENT_AT: dict[str, str] = {
    "confirmation_token": "confirmation_sent_at",
    "recovery_token": "recovery_sent_at",
    "email_change_token_new": "email_change_sent_at",
}


@dataclass(frozen=True)
class OneTimeToken:
    code: str  # the six digits in the mail
    token_hash: str  # what the link carries


def link_token_hash(email: str, code: str) -> str:
    """GoTrue's token hash: sha224 of the address followed by the code, in hex."""
    return hashlib.sha224((email + code).encode()).hexdigest()


async def issue_token(
    conn: asyncpg.Connection,
    user_id: UUID,
    token_type: TokenType,
    email: str,
    *,
    max_frequency: int,
) -> OneTimeToken:
    """Replace the user's token of this kind and stamp its *_sent_at. One mail per kind per
    `max_frequency` seconds (GoTrue's SMTP_MAX_FREQUENCY): sooner is a 429."""
    sent_at = _SENT_AT[token_type]
    wait = await conn.fetchval(
        f"""select ceil($2 - extract(epoch from now() - {sent_at}))::int
            from auth.users where id = $1 and {sent_at} > now() - make_interval(secs => $2)""",
        user_id,
        max_frequency,
    )
    if wait is not None:
        raise ApiError(
            f"For security purposes, you can only request this after {max(wait, 1)} seconds.",
            status=429,
            code=AuthCode.OVER_EMAIL_SEND_RATE_LIMIT,
        )
    code = f"{secrets.randbelow(10**6):06d}"
    token_hash = link_token_hash(email, code)
    await conn.execute(
        """insert into auth.one_time_tokens (user_id, token_type, token_hash, relates_to)
           values ($1, $2, $3, $4)
           on conflict (user_id, token_type) do update
               set token_hash = excluded.token_hash, relates_to = excluded.relates_to,
                   created_at = now()""",
        user_id,
        token_type,
        _hash_token(token_hash),
        email,
    )
    await conn.execute(f"update auth.users set {sent_at} = now() where id = $1", user_id)
    return OneTimeToken(code, token_hash)


_LINK_INVALID = ("Email link is invalid or has expired", AuthCode.OTP_EXPIRED)
_OTP_INVALID = ("Token has expired or is invalid", AuthCode.OTP_EXPIRED)


async def consume_token(
    conn: asyncpg.Connection,
    token_types: tuple[TokenType, ...],
    token_hash: str,
    *,
    lifetime: int,
    from_link: bool,
) -> tuple[asyncpg.Record, TokenType, str]:
    """Spend a one-time token: (user, its kind, the address it was sent to), or 403."""
    message, code = _LINK_INVALID if from_link else _OTP_INVALID
    row = await conn.fetchrow(
        """delete from auth.one_time_tokens
           where token_hash = $1 and token_type = any($2::text[])
           returning user_id, token_type, relates_to,
                     created_at > now() - make_interval(secs => $3) as fresh""",
        _hash_token(token_hash),
        list(token_types),
        lifetime,
    )
    if row is None or not row["fresh"]:
        raise Forbidden(message, code=code)
    user = _one(
        await conn.fetchrow(
            f"select {_USER_COLUMNS} from auth.users where id = $1 for update", row["user_id"]
        )
    )
    if is_banned(user["banned_until"]):
        raise Forbidden("User is banned", code=AuthCode.USER_BANNED)
    token_type: TokenType = row["token_type"]
    return user, token_type, row["relates_to"]


async def confirm_email(conn: asyncpg.Connection, user_id: UUID) -> None:
    await conn.execute(
        "update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()) "
        "where id = $1",
        user_id,
    )


async def request_email_change(conn: asyncpg.Connection, user_id: UUID, new_email: str) -> None:
    """Hold `new_email` for this account until it is confirmed (the unique index and the lock
    keep any other account from taking it meanwhile)."""
    await _reserve_email(conn, new_email)
    if await _email_taken(conn, new_email, by_other_than=user_id):
        raise Unprocessable(_EMAIL_EXISTS[0], code=_EMAIL_EXISTS[1])
    await conn.execute(
        "update auth.users set email_change = $2, email_change_sent_at = null where id = $1",
        user_id,
        new_email,
    )


async def apply_email_change(conn: asyncpg.Connection, user_id: UUID, new_email: str) -> None:
    """The new address was confirmed: it becomes the account's address (and is confirmed)."""
    await _reserve_email(conn, new_email)
    pending = await conn.fetchval("select email_change from auth.users where id = $1", user_id)
    if pending != new_email:
        raise Forbidden(*_LINK_INVALID[:1], code=_LINK_INVALID[1])
    await conn.execute(
        """update auth.users set email = email_change, email_change = null,
                  email_change_sent_at = null,
                  email_confirmed_at = coalesce(email_confirmed_at, now())
           where id = $1""",
        user_id,
    )


async def find_user_by_email(conn: asyncpg.Connection, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"select {_USER_COLUMNS} from auth.users where email = $1", email)


async def find_user_by_pending_email(conn: asyncpg.Connection, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"select {_USER_COLUMNS} from auth.users where email_change = $1", email
    )


async def user_by_id(conn: asyncpg.Connection, user_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"select {_USER_COLUMNS} from auth.users where id = $1", user_id)


# -- admin -------------------------------------------------------------------------------------


async def list_users(
    conn: asyncpg.Connection, *, page: int, per_page: int
) -> tuple[list[asyncpg.Record], int]:
    """A page of users, newest first (GoTrue's default order), and the total."""
    rows = await conn.fetch(
        f"""select {_USER_COLUMNS} from auth.users
            order by created_at desc, id desc limit $1 offset $2""",
        per_page,
        (page - 1) * per_page,
    )
    total: int = await conn.fetchval("select count(*) from auth.users")
    return list(rows), total


async def admin_create_user(
    conn: asyncpg.Connection,
    *,
    email: str,
    password_hash: str,
    user_metadata: dict[str, Any],
    app_metadata: dict[str, Any],
    confirmed: bool,
    banned_until: datetime | None,
) -> asyncpg.Record:
    await _reserve_email(conn, email)
    if await _email_taken(conn, email, by_other_than=None):
        raise Unprocessable(_EMAIL_EXISTS[0], code=_EMAIL_EXISTS[1])
    app = {**app_metadata, "provider": "email", "providers": ["email"]}
    return _one(
        await conn.fetchrow(
            f"""insert into auth.users (email, encrypted_password, email_confirmed_at,
                                       raw_app_meta_data, raw_user_meta_data, banned_until)
               values ($1, $2, case when $5 then now() end, $4, $3, $6)
               returning {_USER_COLUMNS}""",
            email,
            password_hash,
            user_metadata,
            app,
            confirmed,
            banned_until,
        )
    )


# -- housekeeping ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Purged:
    refresh_tokens: int
    sessions: int
    one_time_tokens: int
    revocations: int

    @property
    def total(self) -> int:
        return self.refresh_tokens + self.sessions + self.one_time_tokens + self.revocations


# Spent refresh tokens are kept this long (GoTrue's cleanup: 24 hours) so that a replay soon
# after is still recognised as reuse, which revokes the session.
SPENT_TOKEN_RETENTION_SECONDS = 24 * 3600


async def purge_expired(
    conn: asyncpg.Connection,
    *,
    inactivity_timeout: int,
    otp_lifetime: int,
    revocation_retention: int,
    token_lifetime: int,
    batch: int,
) -> Purged:
    """Delete one batch of what can no longer be used: spent refresh tokens, sessions idle past
    the timeout, expired mailed tokens, tombstones older than any token. Rows another
    transaction holds are skipped (GoTrue's cleanup does the same), so requests never wait."""
    tokens = await conn.fetch(
        """delete from auth.refresh_tokens where id in (
               select id from auth.refresh_tokens
               where revoked and updated_at < now() - make_interval(secs => $1)
               limit $2 for update skip locked)
           returning 1""",
        SPENT_TOKEN_RETENTION_SECONDS,
        batch,
    )
    sessions: list[asyncpg.Record] = []
    if inactivity_timeout:
        if inactivity_timeout > token_lifetime + 60:
            # Their access tokens expired long ago (the timeout exceeds a token's lifetime):
            # they need no tombstone (see pb_internal.record_revocation).
            await conn.execute("select set_config('pb.idle_session_purge', 'on', true)")
        sessions = await conn.fetch(
            """delete from auth.sessions where id in (
                   select id from auth.sessions
                   where coalesce(refreshed_at, created_at)
                         < now() - make_interval(secs => $1)
                   limit $2 for update skip locked)
               returning 1""",
            inactivity_timeout,
            batch,
        )
        await conn.execute("select set_config('pb.idle_session_purge', '', true)")
    otps = await conn.fetch(
        """delete from auth.one_time_tokens where id in (
               select id from auth.one_time_tokens
               where created_at < now() - make_interval(secs => $1)
               limit $2 for update skip locked)
           returning 1""",
        otp_lifetime,
        batch,
    )
    tombstones = await conn.fetch(
        # Tombstones are only ever inserted, and deleted here under the purge lock: no
        # row lock to skip.
        """delete from auth.revocations where ctid = any(array(
               select ctid from auth.revocations
               where revoked_at < now() - make_interval(secs => $1)
               limit $2))
           returning 1""",
        revocation_retention,
        batch,
    )
    return Purged(len(tokens), len(sessions), len(otps), len(tombstones))


__all__ = ["ApiError", "IssuedSession", "SessionRevoked"]
