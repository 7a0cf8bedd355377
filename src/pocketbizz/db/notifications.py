"""One LISTEN connection per server process, shared by every service that follows a channel.

The schema cache (`pgrst`, `pocketbizz_schema`), the revocation registry and realtime
(changes and broadcasts) each subscribe with a handler per notice and an on-connect callback.
The connection is re-opened with backoff when it drops; on every (re)connect the channels are
LISTENed first and only then each subscriber's on-connect runs, so a subscriber that re-reads
its state there misses nothing committed in between. A notice sent while disconnected is never
replayed: catching up is the on-connect callback's job.

Handlers run in asyncpg's notification callback, on the event loop: they must return at once
(schedule work, hand over to a queue), never wait. An on-connect callback may wait (a reload),
but must not subscribe or unsubscribe: it runs while subscribers are being caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from pocketbizz.db.database import Database

log = structlog.get_logger("pocketbizz.db.notifications")

APPLICATION_NAME = "pocketbizz-notifications"
KEEPALIVE_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 10.0

Handler = Callable[[str, str], None]  # (channel, payload)
# Called with `resumed`: True when this subscriber was connected before, so notices may have
# been missed while the connection was down.
OnConnect = Callable[[bool], Awaitable[None]]


@dataclass(eq=False)
class Subscription:
    channels: tuple[str, ...]
    handler: Handler
    on_connect: OnConnect | None = None
    on_lost: Callable[[], None] | None = None
    # Set while its channels are LISTENed and its on-connect has run on this connection.
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    resumed: bool = False


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _conn: event.set()


class Notifications:
    def __init__(self, db: Database, application_name: str = APPLICATION_NAME) -> None:
        self.db = db
        self.application_name = application_name
        self._subscriptions: list[Subscription] = []
        self._conn: asyncpg.Connection | None = None
        # Held while the connection is set up and while a subscriber is added or removed, so
        # a subscriber is caught up exactly once per connection.
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def subscribe(
        self,
        channels: Iterable[str],
        handler: Handler,
        *,
        on_connect: OnConnect | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> Subscription:
        """Follow `channels`; when the connection is up, LISTEN and run `on_connect` now."""
        sub = Subscription(tuple(channels), handler, on_connect, on_lost)
        async with self._lock:
            self._subscriptions.append(sub)
            conn = self._conn
            if conn is not None:
                try:
                    await self._listen(conn, sub.channels)
                    await self._caught_up(sub)
                except Exception as exc:
                    # As in the loop: a subscriber not caught up means a new connection, on
                    # which the loop catches every subscriber up again (with backoff).
                    log.warning("subscribing on the notification connection failed", error=str(exc))
                    conn.terminate()
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        async with self._lock:
            if sub not in self._subscriptions:
                return
            self._subscriptions.remove(sub)
            sub.connected.clear()
            conn = self._conn
            if conn is None or conn.is_closed():
                return
            still_followed = {c for other in self._subscriptions for c in other.channels}
            for channel in set(sub.channels) - still_followed:
                with contextlib.suppress(Exception):  # a dying connection forgets them anyway
                    await conn.remove_listener(channel, self._dispatch)

    async def _listen(self, conn: asyncpg.Connection, channels: Iterable[str]) -> None:
        for channel in channels:
            # asyncpg issues LISTEN for a channel's first callback only; ours is one per channel.
            await conn.add_listener(channel, self._dispatch)

    async def _caught_up(self, sub: Subscription) -> None:
        if sub.on_connect is not None:
            await sub.on_connect(sub.resumed)
        sub.resumed = True
        sub.connected.set()

    def _dispatch(self, _conn: Any, _pid: int, channel: str, payload: object) -> None:
        text = str(payload)
        for sub in self._subscriptions:
            if channel in sub.channels:
                try:
                    sub.handler(channel, text)
                except Exception:  # one subscriber's fault must not starve the others
                    log.exception("notification handler failed", channel=channel)

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self.db.connect_listener(self.application_name)
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                async with self._lock:
                    channels = {c: None for sub in self._subscriptions for c in sub.channels}
                    await self._listen(conn, channels)
                    self._conn = conn
                    # LISTEN is in place: whatever a subscriber re-reads now is not missed.
                    for sub in list(self._subscriptions):
                        await self._caught_up(sub)
                log.info("notification listener connected")
                backoff = 0.5
                await self._keep_alive(conn, lost)
                log.warning("notification listener connection closed, reconnecting")
            except Exception as exc:  # any failure: reconnect rather than stop listening
                log.warning("notification listener lost its connection", error=str(exc))
            finally:
                self._conn = None
                for sub in self._subscriptions:
                    was_connected = sub.connected.is_set()
                    sub.connected.clear()
                    if was_connected and sub.on_lost is not None:
                        sub.on_lost()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _keep_alive(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is gone; a periodic query notices silent drops."""
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await conn.fetchval("select 1", timeout=10)


__all__ = ["APPLICATION_NAME", "Notifications", "Subscription"]
