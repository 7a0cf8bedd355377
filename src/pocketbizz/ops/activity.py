"""Daily activity, recorded cheaply: the first authenticated request of a user on a day queues
one row for `pb_internal.user_activity`; a background task writes the queue in batches.

The request path pays a set lookup (`observe`, called by `Database.transaction` before BEGIN);
the write happens later, in its own service_role transaction, never in the request's. Days are
Asia/Kuala_Lumpur days: the tenants trade on Malaysian time, and a UTC day would cut a shop's
day in two at 08:00 (the SQL figures use the same zone, `definitions/ops/`).

Each process remembers only today's users, so with N processes a user may be written up to N
times a day; `on conflict do nothing` keeps one row. A failed write keeps its rows queued for
the next flush (bounded), so a database restart loses no day's activity.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import structlog

from pocketbizz.db.database import SERVICE, Database, Identity
from pocketbizz.ops import repository

log = structlog.get_logger("pocketbizz.ops.activity")

ACTIVITY_ZONE = ZoneInfo("Asia/Kuala_Lumpur")
# Rows kept while the database is unreachable; past this the oldest are dropped (and logged):
# a day's activity of 50,000 users.
MAX_QUEUED = 50_000


def activity_day(now: datetime | None = None) -> date:
    """Today in the activity time zone."""
    return (now or datetime.now(UTC)).astimezone(ACTIVITY_ZONE).date()


class ActivityRecorder:
    def __init__(self, db: Database, *, flush_interval: float = 1.0) -> None:
        self._db = db
        self._flush_interval = flush_interval
        self._day = activity_day()
        self._day_ends = self._end_of(self._day)
        self._seen: set[str] = set()  # the `sub` claims recorded today
        self._queue: list[tuple[date, UUID]] = []
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def _end_of(day: date) -> float:
        midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), ACTIVITY_ZONE)
        return midnight.timestamp()

    def observe(self, identity: Identity) -> None:
        """Called for every request transaction: cheap, synchronous, never raises."""
        if identity.role != "authenticated":
            return
        sub = identity.claims.get("sub")
        if not isinstance(sub, str):
            return
        if time.time() >= self._day_ends:  # a new day: yesterday's users count again
            self._day = activity_day()
            self._day_ends = self._end_of(self._day)
            self._seen.clear()
        if sub in self._seen:
            return
        self._seen.add(sub)
        try:
            user = UUID(sub)
        except ValueError:
            return
        self._queue.append((self._day, user))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="activity-recorder")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()  # what the last second queued

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            await self.flush()  # never raises: a failed write keeps its rows

    async def flush(self) -> int:
        """Write the queued rows in one statement; the number written (conflicts included)."""
        if not self._queue:
            return 0
        batch, self._queue = self._queue, []
        try:
            async with self._db.transaction(SERVICE) as conn:
                await repository.record_activity(conn, batch)
        except Exception as exc:
            # Whatever failed (the database restarting, a session cut under asyncpg's feet,
            # the pool timing out), the rows wait for the next flush.
            log.warning("activity not recorded yet", rows=len(batch), error=repr(exc))
            kept = batch + self._queue
            if len(kept) > MAX_QUEUED:
                log.warning("activity dropped", rows=len(kept) - MAX_QUEUED)
            self._queue = kept[-MAX_QUEUED:]
            return 0
        return len(batch)
