"""The connection pool and the one-transaction-per-request model (DESIGN.md §2).

Every request runs inside ``Database.transaction(identity)``: the role and the JWT claims are
set with ``set_config(..., true)`` so they die with the transaction, which keeps the server
correct behind PgBouncer in transaction mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, cast
from uuid import UUID

import asyncpg
import orjson
import structlog

from pocketbizz.errors import ApiError, PostgrestCode

log = structlog.get_logger("pocketbizz.db")

# Roles a request may switch to; anything else is refused before reaching SQL.
REQUEST_ROLES = frozenset({"anon", "authenticated", "service_role", "pb_auth", "pb_payments"})


@dataclass(frozen=True)
class Identity:
    """Who a request runs as: a database role plus the JWT claims policies read."""

    role: str
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> UUID | None:
        sub = self.claims.get("sub")
        try:
            return UUID(str(sub)) if sub else None
        except ValueError:
            return None

    @property
    def claims_json(self) -> str:
        return orjson.dumps(dict(self.claims)).decode()


class PoolTimeout(ApiError):
    """No pooled connection came free in time: PostgREST's answer, whatever the surface."""

    status = 504
    code = PostgrestCode.POOL_TIMEOUT

    def __init__(self) -> None:
        super().__init__("Timed out acquiring connection from connection pool.")


class DatabaseUnavailable(ApiError, ConnectionError):
    """No connection to PostgreSQL could be opened (it is down, restarting or refusing us):
    PostgREST's answer, whatever the surface. Also a ConnectionError, so the background loops
    that already wait out OSError keep doing so."""

    status = 503
    code = PostgrestCode.DB_UNREACHABLE

    def __init__(self) -> None:
        super().__init__("Database connection error. Retrying the connection.")


class DatabaseConnectionLost(ApiError, ConnectionError):
    """The request's connection died under it (PostgreSQL stopped or restarted): PostgREST's
    answer, whatever the surface. The transaction did not commit, unless it died during COMMIT
    itself, when nobody can tell; a retried write needs its idempotency key either way."""

    status = 503
    code = PostgrestCode.DB_CONNECTION_LOST

    def __init__(self) -> None:
        super().__init__("Database client error. Retrying the connection.")


# What opening a connection raises when the server is away: refused or missing socket
# (OSError), "the database system is starting up / shutting down" (57P03), too many clients
# (53300), a connection closed during the handshake (InterfaceError).
_CONNECT_FAILURES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


ANON = Identity("anon", {"role": "anon"})
SERVICE = Identity("service_role", {"role": "service_role"})
AUTH_ADMIN = Identity("pb_auth", {"role": "pb_auth"})


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


def _literal(value: str) -> str:
    """A standard SQL string literal (standard_conforming_strings is on: only ' is special)."""
    if "\x00" in value:
        raise ValueError("NUL byte in a session setting")
    return "'" + value.replace("'", "''") + "'"


def _begin_sql(identity: Identity, statement_timeout: str) -> str:
    # BEGIN and the settings travel in one simple-protocol round trip. The role comes from a
    # fixed allowlist and the claims from a verified token; both are quoted as literals anyway.
    return (
        "begin; select set_config('role', " + _literal(identity.role) + ", true), "
        "set_config('request.jwt.claims', " + _literal(identity.claims_json) + ", true), "
        "set_config('statement_timeout', " + _literal(statement_timeout) + ", true)"
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release hook. asyncpg has already rolled back any open transaction; nothing in a
    request changes session state (every setting is transaction-local), so skip the default
    RESET ALL round trip."""


class Database:
    def __init__(
        self,
        dsn: str,
        *,
        user: str | None = None,
        password: str | None = None,
        min_size: int = 2,
        max_size: int = 20,
        statement_cache_size: int = 1024,
        statement_timeouts: Mapping[str, str] | None = None,
        acquisition_timeout: float | None = None,
        direct_dsn: str | None = None,
    ) -> None:
        self._dsn = dsn
        # Dedicated sessions (LISTEN, the realtime registry) bypass a transaction pooler.
        self._direct_dsn = direct_dsn or dsn
        self._user = user
        self._password = password
        self._min_size = min_size
        self._max_size = max_size
        self._statement_cache_size = statement_cache_size
        self.statement_timeouts = dict(statement_timeouts or {})
        # Without a bound, requests queue forever behind a saturated pool.
        self.acquisition_timeout = acquisition_timeout
        self.waiting = 0  # requests waiting for a connection (a pool metric)
        # Told every transaction's identity before it begins (ops' daily-activity recorder):
        # synchronous and cheap, it only queues; its writes run in their own transactions.
        self.observe_identity: Callable[[Identity], None] | None = None
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database pool is not open")
        return self._pool

    async def open(self) -> None:
        kwargs: dict[str, Any] = {}
        if self._user:
            kwargs["user"] = self._user
        if self._password:
            kwargs["password"] = self._password
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=self._min_size,
            max_size=self._max_size,
            statement_cache_size=self._statement_cache_size,
            init=_init_connection,
            reset=_keep_session,
            server_settings={"application_name": "pocketbizz", "standard_conforming_strings": "on"},
            **kwargs,
        )

    async def connect_listener(self, application_name: str) -> asyncpg.Connection:
        """A dedicated connection outside the pool, with the pool's credentials, for LISTEN
        (a listening session must stay put; pooled connections move between requests). It goes
        to the direct address: behind PgBouncer in transaction mode a LISTEN would stay on
        whichever server session ran it, and the notices would go to other clients."""
        kwargs: dict[str, Any] = {}
        if self._user:
            kwargs["user"] = self._user
        if self._password:
            kwargs["password"] = self._password
        conn: asyncpg.Connection = await asyncpg.connect(
            self._direct_dsn,
            statement_cache_size=self._statement_cache_size,
            server_settings={"application_name": application_name},
            **kwargs,
        )
        return conn

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def transaction(self, identity: Identity) -> AsyncIterator[asyncpg.Connection]:
        """One pooled connection, one transaction, the caller's role and claims inside it.

        The transaction commits when the block exits normally — before the handler builds
        its response — and rolls back on any exception.
        """
        if identity.role not in REQUEST_ROLES:
            raise ValueError(f"refusing to switch to role {identity.role!r}")
        if self.observe_identity is not None:
            self.observe_identity(identity)
        proxy = await self._acquire()
        conn = cast(asyncpg.Connection, proxy)
        try:
            timeout = self.statement_timeouts.get(identity.role, "8s")
            try:
                await conn.execute(_begin_sql(identity, timeout))
                try:
                    yield conn
                except BaseException:
                    if not _gone(conn):
                        # If this fails too, the pool's release rolls back or drops it.
                        with suppress(Exception):
                            await conn.execute("rollback")
                    raise
                await conn.execute("commit")
            except _CONNECT_FAILURES as exc:
                # Only a dead connection is a connection error; anything else (a constraint,
                # a full disk under Storage) is the request's own failure and stays as it is.
                if not _gone(conn):
                    raise
                log.warning("database connection lost", error=_reason(exc))
                raise DatabaseConnectionLost() from exc
        finally:
            await self.pool.release(proxy)

    async def _acquire(self) -> asyncpg.pool.PoolConnectionProxy:
        self.waiting += 1
        try:
            if self.pool.get_idle_size():
                # A connected connection is free, so taking it never waits: no timer (the
                # timeout's task and its cancellation were ~8% of a cheap request's CPU).
                conn = await self.pool.acquire()
            else:
                conn = await self.pool.acquire(timeout=self.acquisition_timeout)
        except TimeoutError:
            raise PoolTimeout() from None  # counted as a 504 in the request metrics
        except _CONNECT_FAILURES as exc:
            # The pool opens a connection here when it has no live one. The reason (host,
            # socket, authentication) is for the operator's log, not the caller.
            log.warning("database unavailable", error=_reason(exc))
            raise DatabaseUnavailable() from exc
        finally:
            self.waiting -= 1
        return conn

    def pool_stats(self) -> tuple[int, int]:
        """(connections in use, pool size)."""
        if self._pool is None:
            return (0, 0)
        size = self._pool.get_size()
        return (size - self._pool.get_idle_size(), size)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _gone(conn: asyncpg.Connection) -> bool:
    """Whether the request's connection died: closed, or already taken back by the pool (which
    detaches a connection the moment it closes, while the request still holds it)."""
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        return True
