"""This process's subscriptions, registered in `pb_internal.realtime_subscribers` (0007).

The `realtime_notify` trigger announces a row change only when some server process has a live
registration for the row's tenant (or the nil uuid: a service_role subscriber, who sees every
tenant) and table. So a channel's subscriptions are registered before its join is answered,
refreshed while it lives, and unregistered when the last channel that needs one goes away;
on shutdown the process removes all of its rows, and a crashed process's rows expire.

Registrations are counted per (tenant, table): many channels of one tenant share one row.
Every database write applies the *current* count of the entries it touches, one write at a
time (a lock), so a leave and a join racing on the same entry always end registered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable

import asyncpg
import orjson
import structlog
from prometheus_client import Gauge

from pocketbizz.db import Database, Identity

log = structlog.get_logger("pocketbizz.realtime")

# business_owner_id of a registration that covers every tenant (service_role subscribers).
ALL_TENANTS = "00000000-0000-0000-0000-000000000000"
REFRESH_SECONDS = 30.0
TTL_SECONDS = 90
RETRY_SECONDS = 5.0
# Entries per database call, so one call stays small.
BATCH = 1_000
_STOP_TIMEOUT_SECONDS = 5.0
# A join waits this long for its registration before it is refused.
REGISTER_TIMEOUT_SECONDS = 10.0
STATEMENT_TIMEOUT_SECONDS = 10.0
APPLICATION_NAME = "pocketbizz-realtime-registry"
REGISTRATIONS_LAPSED = "Realtime subscriptions lapsed: rejoin to resume"

REGISTRATIONS = Gauge(
    "pocketbizz_realtime_registrations",
    "(tenant, table) subscriptions this process has registered in the database",
)

Entry = tuple[str, str]  # (business_owner_id as lowercase text, table name)


class RegistrationError(RuntimeError):
    """The database could not record a subscription."""


def subscriber_key(identity: Identity) -> str | None:
    """Whose rows this identity may receive: its tenant, every tenant, or nobody."""
    if identity.role == "service_role":
        return ALL_TENANTS
    if identity.role == "authenticated":
        # auth.uid() reads a sub that is not a uuid as NULL: such a user sees no rows.
        user_id = identity.user_id
        return str(user_id) if user_id is not None else None
    return None  # anon: no SELECT grant on any realtime table


def entries_for(identity: Identity, tables: Iterable[str]) -> frozenset[Entry]:
    owner = subscriber_key(identity)
    if owner is None:
        return frozenset()
    return frozenset((owner, table) for table in tables)


def _payload(entries: Iterable[Entry]) -> str:
    return orjson.dumps([{"o": owner, "t": table} for owner, table in entries]).decode()


def _batches(entries: list[Entry]) -> Iterable[list[Entry]]:
    for start in range(0, len(entries), BATCH):
        yield entries[start : start + BATCH]


class Registry:
    def __init__(
        self,
        db: Database,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        ttl_seconds: int = TTL_SECONDS,
    ) -> None:
        self.db = db
        self.server_id = uuid.uuid4()
        self.refresh_seconds = refresh_seconds
        self.ttl_seconds = ttl_seconds
        self._counts: Counter[Entry] = Counter()
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None
        self._stopped = False
        # Its own connection: the request pool may be saturated, and a refresh queued behind
        # requests would let the registrations expire (and the triggers go quiet).
        self._conn: asyncpg.Connection | None = None
        self._conn_lock = asyncio.Lock()
        self._last_refresh = time.monotonic()
        # Called when registrations may have lapsed (no refresh within the ttl): changes of
        # that time were not announced, so joined channels are told to rejoin.
        self.on_lapse: Callable[[str], None] | None = None

    @property
    def entries(self) -> frozenset[Entry]:
        return frozenset(self._counts)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh_loop())

    async def stop(self) -> None:
        """Stop refreshing and remove every registration of this process."""
        self._stopped = True
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
            self._refresher = None
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_SECONDS), self._lock:
                await self._execute(
                    "select pb_internal.realtime_unregister($1, null)", self.server_id
                )
        except Exception as exc:  # the rows expire on their own
            log.warning("realtime unregister at shutdown failed", error=str(exc))
        self._counts.clear()
        REGISTRATIONS.set(0)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=_STOP_TIMEOUT_SECONDS)
            self._conn = None

    # -- channels ---------------------------------------------------------------------------
    async def acquire(self, entries: Collection[Entry]) -> None:
        """Count these entries and return once the database has them (RegistrationError if it
        could not: the counts are given back)."""
        if not entries:
            return
        self._counts.update(entries)
        try:
            async with asyncio.timeout(REGISTER_TIMEOUT_SECONDS):
                await self._sync(entries)
        except Exception as exc:
            self.release(entries)
            raise RegistrationError(str(exc)) from exc

    def release(self, entries: Collection[Entry]) -> None:
        """Uncount these entries; the ones no channel needs any more are unregistered soon
        after (in the background: a leave or a close need not wait for the database)."""
        if not entries:
            return
        self._counts.subtract(entries)
        for entry in entries:
            if self._counts[entry] <= 0:
                del self._counts[entry]
        task = asyncio.get_running_loop().create_task(self._sync_quietly(entries))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _sync_quietly(self, entries: Collection[Entry]) -> None:
        try:
            await self._sync(entries)
        except Exception as exc:
            # A registration left behind only costs announcements nobody receives, until
            # the next refresh retries it or the row expires.
            log.warning("realtime unregister failed", error=str(exc))

    async def _sync(self, entries: Collection[Entry]) -> None:
        """Make the database agree with the current counts of these entries."""
        async with self._lock:
            if self._stopped:
                return
            live = sorted(e for e in entries if self._counts.get(e, 0) > 0)
            gone = sorted(e for e in entries if self._counts.get(e, 0) <= 0)
            for batch in _batches(live):
                await self._execute(
                    "select pb_internal.realtime_register($1, $2::text::jsonb, $3)",
                    self.server_id,
                    _payload(batch),
                    self.ttl_seconds,
                )
            for batch in _batches(gone):
                await self._execute(
                    "select pb_internal.realtime_unregister($1, $2::text::jsonb)",
                    self.server_id,
                    _payload(batch),
                )
            REGISTRATIONS.set(len(self._counts))

    async def refresh(self) -> None:
        """Extend every live registration (and re-create any that went missing), then sweep
        expired rows."""
        async with self._lock:
            if self._stopped:
                return
            for batch in _batches(sorted(self._counts)):
                await self._execute(
                    "select pb_internal.realtime_register($1, $2::text::jsonb, $3)",
                    self.server_id,
                    _payload(batch),
                    self.ttl_seconds,
                )
        # Rows of processes that stopped refreshing (crashed) are of no use to anybody.
        await self._execute("select pb_internal.realtime_sweep()")
        now = time.monotonic()
        lapsed = now - self._last_refresh > self.ttl_seconds
        self._last_refresh = now
        if lapsed and self.on_lapse is not None:
            self.on_lapse(REGISTRATIONS_LAPSED)

    async def _refresh_loop(self) -> None:
        delay = self.refresh_seconds
        while True:
            await asyncio.sleep(delay)
            try:
                await self.refresh()
                delay = self.refresh_seconds
            except Exception as exc:
                log.warning("realtime registration refresh failed", error=str(exc))
                delay = min(RETRY_SECONDS, self.refresh_seconds)

    async def _execute(self, sql: str, *args: object) -> None:
        # As the pool's login role (authenticator), outside any request role: only it may
        # call the registration functions. One statement, so no explicit transaction.
        async with self._conn_lock:
            for attempt in (1, 2):
                if self._conn is None or self._conn.is_closed():
                    self._conn = await self.db.connect_listener(APPLICATION_NAME)
                try:
                    await self._conn.execute(sql, *args, timeout=STATEMENT_TIMEOUT_SECONDS)
                    return
                except BaseException as exc:
                    lost = self._conn.is_closed() or isinstance(
                        exc, asyncpg.InterfaceError | ConnectionError
                    )
                    if isinstance(exc, asyncpg.PostgresError) and not lost:
                        raise  # the statement failed; the connection is fine
                    # Lost since the last call (a database restart), or cancelled mid-statement
                    # (its state unknown): replaced, and a lost one is tried once more.
                    self._conn.terminate()
                    self._conn = None
                    if not lost or attempt == 2:
                        raise
