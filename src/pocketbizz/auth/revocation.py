"""Refusing still-valid access tokens whose session was revoked or whose user was deleted.

An access token is valid until its `exp` whatever happens to its session. Every deletion of a
session or a user leaves a tombstone in `auth.revocations` and a NOTIFY (migration 0010). Each
process keeps the tombstones younger than one token lifetime in memory (`RevocationRegistry`,
loaded at start-up, fed by the process's shared LISTEN connection and re-synced on every
reconnect, `pocketbizz.db.notifications`), so the check on the request path is a dictionary
lookup, and a revocation committed by any process is seen by every other within milliseconds.

Revoked means "deleted while its tokens may still be live": a token for a user that never
existed (a hand-made service JWT) is not refused here, as PostgREST would not refuse it either.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import structlog

from pocketbizz.db.database import AUTH_ADMIN, Database
from pocketbizz.db.notifications import Notifications, Subscription

log = structlog.get_logger("pocketbizz.auth.revocation")

CHANNEL = "pb_auth_revocations"
# Slack over the token lifetime for clock skew between servers and the database (the token
# check itself allows 5 s).
_MARGIN_SECONDS = 60.0

# One registry per Database (per process, in practice), found by whoever holds the database.
_REGISTRIES: weakref.WeakKeyDictionary[Database, RevocationRegistry] = weakref.WeakKeyDictionary()


def _key(value: Any) -> str | None:
    # Tombstones are keyed by the canonical text of a uuid; a token's ids are compared in
    # lower case without parsing them (this runs on every request).
    return value.lower() if isinstance(value, str) and value else None


def _subject(claims: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(user id, session id) of a user token; (None, None) for keys and anonymous tokens."""
    if claims.get("role") != "authenticated":
        return None, None
    return _key(claims.get("sub")), _key(claims.get("session_id"))


class RevocationRegistry:
    """The revoked session ids and deleted user ids of one token lifetime, in memory."""

    def __init__(self, db: Database, token_lifetime_seconds: int) -> None:
        self.db = db
        self.retention = float(token_lifetime_seconds) + _MARGIN_SECONDS
        self._sessions: dict[str, float] = {}
        self._users: dict[str, float] = {}
        # True while the LISTEN connection is up and the tombstones were loaded through it.
        self.live = False
        self._loaded = asyncio.Event()
        self._notifications: Notifications | None = None
        self._subscription: Subscription | None = None
        self._next_sweep = 0.0

    # -- the request path -------------------------------------------------------------------
    def revoked(self, claims: Mapping[str, Any]) -> bool:
        user_id, session_id = _subject(claims)
        if user_id is None:
            return False
        return user_id in self._users or (session_id is not None and session_id in self._sessions)

    def remember(
        self,
        *,
        sessions: Iterable[UUID | str] = (),
        users: Iterable[UUID | str] = (),
        at: float | None = None,
    ) -> None:
        """Record revocations this process just committed (its own NOTIFY comes a moment later)."""
        stamp = time.time() if at is None else at
        for session_id in sessions:
            self._sessions[str(session_id)] = stamp
        for user_id in users:
            self._users[str(user_id)] = stamp
        self._sweep()

    def _sweep(self) -> None:
        now = time.time()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60.0
        horizon = now - self.retention
        for table in (self._sessions, self._users):
            for key in [k for k, at in table.items() if at < horizon]:
                del table[key]

    # -- keeping it current -----------------------------------------------------------------
    async def load(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch(
            """select session_id, user_id, extract(epoch from revoked_at)::float8 as at
               from auth.revocations
               where revoked_at > now() - make_interval(secs => $1)""",
            self.retention,
        )
        sessions = {str(r["session_id"]): r["at"] for r in rows if r["session_id"] is not None}
        users = {str(r["user_id"]): r["at"] for r in rows if r["session_id"] is None}
        # Merge: a NOTIFY handled while the load ran must not be lost.
        self._sessions.update(sessions)
        self._users.update(users)

    def _on_notify(self, channel: str, payload: str) -> None:
        try:
            event = orjson.loads(payload)
            at = float(event["t"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("malformed revocation notice", payload=str(payload)[:200])
            return
        if event.get("s"):
            self.remember(sessions=[event["s"]], at=at)
        elif event.get("u"):
            self.remember(users=[event["u"]], at=at)

    async def start(self, notifications: Notifications) -> None:
        self._notifications = notifications
        self._subscription = await notifications.subscribe(
            (CHANNEL,), self._on_notify, on_connect=self._on_connect, on_lost=self._on_lost
        )

    async def ready(self) -> None:
        """Wait until the first load is done: serve no request before the tombstones are in."""
        await self._loaded.wait()

    async def _on_connect(self, resumed: bool) -> None:
        # Runs after LISTEN, on every (re)connect: nothing revoked in between is missed, and
        # what was revoked while disconnected (never replayed) is read here.
        async with self.db.transaction(AUTH_ADMIN) as tx:
            await self.load(tx)
        self._sweep()
        self.live = True
        self._loaded.set()

    def _on_lost(self) -> None:
        self.live = False

    async def close(self) -> None:
        if self._notifications is not None and self._subscription is not None:
            await self._notifications.unsubscribe(self._subscription)
        self._subscription = None
        self.live = False


async def start_registry(
    db: Database, token_lifetime_seconds: int, notifications: Notifications
) -> RevocationRegistry:
    registry = RevocationRegistry(db, token_lifetime_seconds)
    _REGISTRIES[db] = registry
    await registry.start(notifications)
    return registry


async def stop_registry(db: Database) -> None:
    registry = _REGISTRIES.pop(db, None)
    if registry is not None:
        await registry.close()


def registry_for(db: Database) -> RevocationRegistry | None:
    return _REGISTRIES.get(db)


def revoked_in_memory(db: Database, claims: Mapping[str, Any]) -> bool:
    """The synchronous check of the HTTP path (the registry runs in every serving process)."""
    registry = _REGISTRIES.get(db)
    return registry is not None and registry.revoked(claims)


async def token_is_revoked(db: Database, claims: Mapping[str, Any]) -> bool:
    """True when the token's user was deleted or its session revoked (signed out, refresh
    token reused, password changed, admin). From memory while this process's registry is
    live; otherwise one indexed lookup."""
    user_id, session_id = _subject(claims)
    if user_id is None:
        return False
    registry = _REGISTRIES.get(db)
    if registry is not None and registry.live:
        return registry.revoked(claims)
    try:
        UUID(user_id)
        if session_id is not None:
            UUID(session_id)
    except ValueError:
        return False  # not ids this server issued: nothing of theirs can have been revoked
    async with db.transaction(AUTH_ADMIN) as conn:
        found: bool = await conn.fetchval(
            """select exists (select 1 from auth.revocations
                              where session_id = $2::uuid
                                 or (session_id is null and user_id = $1::uuid))""",
            user_id,
            session_id,
        )
    return found


__all__ = [
    "RevocationRegistry",
    "registry_for",
    "revoked_in_memory",
    "start_registry",
    "stop_registry",
    "token_is_revoked",
]
