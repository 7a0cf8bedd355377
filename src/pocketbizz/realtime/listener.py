"""One LISTEN connection per server process, kept alive and re-opened when it drops.

It carries two channels: row changes from the triggers, and broadcasts published by the
server processes (so a broadcast reaches the tenant's sockets on every process).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson
import structlog

from pocketbizz.db import Database
from pocketbizz.realtime.changes import ChangeError, decode_change
from pocketbizz.realtime.hub import Hub

log = structlog.get_logger("pocketbizz.realtime")

CHANGES_CHANNEL = "pocketbizz_realtime"
BROADCAST_CHANNEL = "pocketbizz_broadcast"
APPLICATION_NAME = "pocketbizz-realtime"
KEEPALIVE_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 10.0


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _conn: event.set()


class Listener:
    def __init__(self, db: Database, hub: Hub) -> None:
        self.db = db
        self.hub = hub
        # Broadcasts this process published are already delivered locally.
        self.process_id = uuid.uuid4().hex
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self.db.connect_listener(APPLICATION_NAME)
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(CHANGES_CHANNEL, self._callback(self._on_change))
                await conn.add_listener(BROADCAST_CHANNEL, self._callback(self._on_broadcast))
                self.connected.set()
                log.info("realtime listener connected")
                backoff = 0.5
                await self._keep_alive(conn, lost)
                log.warning("realtime listener connection closed, reconnecting")
            except Exception as exc:  # any failure: reconnect rather than stop listening
                log.warning("realtime listener lost its connection", error=str(exc))
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            # Changes committed while disconnected are not replayed; clients re-read on join.
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _keep_alive(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection is gone; a periodic query notices silent drops."""
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await conn.fetchval("select 1", timeout=10)

    @staticmethod
    def _callback(handler: Callable[[str], None]) -> Callable[..., None]:
        def on_notification(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            handler(payload)

        return on_notification

    def _on_change(self, payload: str) -> None:
        try:
            change = decode_change(payload)
        except ChangeError as exc:
            log.warning("realtime notification ignored", error=str(exc))
            return
        self.hub.submit(change)

    def _on_broadcast(self, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            if message["origin"] == self.process_id:
                return
            self.hub.broadcast(
                str(message["tenant"]), str(message["topic"]), dict(message["message"]), None
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("realtime broadcast ignored", error=str(exc))

    async def publish_broadcast(self, tenant: str, topic: str, message: dict[str, Any]) -> None:
        """Tell the other server processes; the caller has delivered on this one."""
        body = orjson.dumps(
            {"origin": self.process_id, "tenant": tenant, "topic": topic, "message": message}
        ).decode()
        async with self.db.pool.acquire() as conn:
            await conn.execute("select pg_catalog.pg_notify($1, $2)", BROADCAST_CHANNEL, body)
