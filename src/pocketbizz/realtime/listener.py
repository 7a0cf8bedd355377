"""One LISTEN connection per server process, kept alive and re-opened when it drops.

It carries two channels: row changes from the triggers, and broadcasts and presence diffs
published by the server processes (so they reach the topic's sockets on every process).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson
import structlog

from pocketbizz.db import Database
from pocketbizz.realtime.changes import ChangeError, decode_change
from pocketbizz.realtime.frames import Broadcast
from pocketbizz.realtime.hub import Hub

log = structlog.get_logger("pocketbizz.realtime")

CHANGES_CHANNEL = "pocketbizz_realtime"
BROADCAST_CHANNEL = "pocketbizz_broadcast"
APPLICATION_NAME = "pocketbizz-realtime"
KEEPALIVE_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 10.0
LISTENER_RECONNECTED = "Realtime lost its database connection: rejoin to resume"


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _conn: event.set()


class Listener:
    def __init__(self, db: Database, hub: Hub) -> None:
        self.db = db
        self.hub = hub
        # Broadcasts this process published are already delivered locally.
        self.process_id = uuid.uuid4().hex
        self.connected = asyncio.Event()
        # Called when the connection comes back after a loss: changes committed meanwhile were
        # never announced, so joined channels are told to rejoin (and their clients re-read).
        self.on_reconnect: Callable[[str], None] | None = None
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
        lost_before = False
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
                if lost_before and self.on_reconnect is not None:
                    self.on_reconnect(LISTENER_RECONNECTED)
                await self._keep_alive(conn, lost)
                log.warning("realtime listener connection closed, reconnecting")
            except Exception as exc:  # any failure: reconnect rather than stop listening
                log.warning("realtime listener lost its connection", error=str(exc))
            finally:
                lost_before = lost_before or self.connected.is_set()
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
            note = orjson.loads(payload)
            if note["origin"] == self.process_id:
                return  # already delivered here
            scope, topic = str(note["scope"]), str(note["topic"])
            if note.get("kind") == "presence":
                self.hub.presence_diff(scope, topic, dict(note["joins"]), dict(note["leaves"]))
                return
            self.hub.broadcast(scope, topic, decode_broadcast(note), None)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error) as exc:
            log.warning("realtime broadcast ignored", error=str(exc))

    def broadcast_note(self, scope: str, topic: str, message: Broadcast) -> str:
        """The NOTIFY body that carries a broadcast to the other server processes."""
        return encode_broadcast(self.process_id, scope, topic, message)

    async def publish(self, note: str) -> None:
        """Tell the other server processes; the caller has delivered on this one."""
        async with self.db.pool.acquire() as conn:
            await conn.execute("select pg_catalog.pg_notify($1, $2)", BROADCAST_CHANNEL, note)


def encode_broadcast(origin: str, scope: str, topic: str, message: Broadcast) -> str:
    # A JSON payload travels as JSON (no escaping, so NOTIFY's 8000 bytes go further);
    # a binary one as base64.
    payload: Any = (
        orjson.Fragment(message.payload)
        if message.is_json
        else base64.b64encode(message.payload).decode()
    )
    note = {
        "origin": origin,
        "kind": "broadcast",
        "scope": scope,
        "topic": topic,
        "event": message.event,
        "json": message.is_json,
        "binary_origin": message.binary_origin,
        "payload": payload,
    }
    return orjson.dumps(note).decode()


def decode_broadcast(note: dict[str, Any]) -> Broadcast:
    is_json = bool(note["json"])
    payload = (
        orjson.dumps(note["payload"])
        if is_json
        else base64.b64decode(note["payload"], validate=True)
    )
    return Broadcast(str(note["event"]), payload, is_json, bool(note["binary_origin"]))
