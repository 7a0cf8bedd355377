"""Start and stop the auth service's background work: the revocation registry (every process)
and the periodic purge of spent refresh tokens, idle sessions, expired mailed tokens and old
revocation tombstones (every PB_AUTH_PURGE_INTERVAL seconds, by one process at a time)."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from pocketbizz.auth import revocation, service
from pocketbizz.db.database import AUTH_ADMIN, Database
from pocketbizz.settings import Settings
from pocketbizz.state import AppState

log = structlog.get_logger("pocketbizz.auth.runtime")

SERVICE_KEY = "auth.housekeeping"
# Any constant: the process that takes this transaction lock purges; the others skip a turn.
_PURGE_LOCK = 0x50_42_41_55_54_48  # "PBAUTH"
_BATCH = 1000


async def purge_once(db: Database, settings: Settings) -> service.Purged:
    """Purge everything expired now, batch by batch; zeros when another process is at it."""
    done = service.Purged(0, 0, 0, 0)
    while True:
        async with db.transaction(AUTH_ADMIN) as conn:
            if not await conn.fetchval("select pg_try_advisory_xact_lock($1)", _PURGE_LOCK):
                return done
            batch = await service.purge_expired(
                conn,
                inactivity_timeout=settings.sessions_inactivity_timeout,
                otp_lifetime=settings.mailer_otp_exp,
                # A tombstone outlives every token issued before it (plus clock slack).
                revocation_retention=settings.jwt_expiry_seconds + 3600,
                token_lifetime=settings.jwt_expiry_seconds,
                batch=_BATCH,
            )
        done = service.Purged(
            done.refresh_tokens + batch.refresh_tokens,
            done.sessions + batch.sessions,
            done.one_time_tokens + batch.one_time_tokens,
            done.revocations + batch.revocations,
        )
        if (
            max(batch.refresh_tokens, batch.sessions, batch.one_time_tokens, batch.revocations)
            < _BATCH
        ):
            return done


class Housekeeping:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.auth_purge_interval)
            try:
                purged = await purge_once(self.db, self.settings)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("auth purge failed; retrying next interval", error=str(exc))
                continue
            if purged.total:
                log.info(
                    "auth purge",
                    refresh_tokens=purged.refresh_tokens,
                    sessions=purged.sessions,
                    one_time_tokens=purged.one_time_tokens,
                    revocations=purged.revocations,
                )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


async def startup(state: AppState) -> None:
    registry = await revocation.start_registry(
        state.db, state.settings.jwt_expiry_seconds, state.notifications
    )
    # Bounded: a database that is slow to answer must not hang start-up forever.
    async with asyncio.timeout(30):
        await registry.ready()
    housekeeping = Housekeeping(state.db, state.settings)
    housekeeping.start()
    state.services[SERVICE_KEY] = housekeeping


async def shutdown(state: AppState) -> None:
    housekeeping = state.services.pop(SERVICE_KEY, None)
    if isinstance(housekeeping, Housekeeping):
        await housekeeping.close()
    await revocation.stop_registry(state.db)
