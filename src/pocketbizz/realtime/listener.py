"""Realtime's subscription to the process's shared LISTEN connection
(`pocketbizz.db.notifications`).

It follows two channels: row changes from the triggers, and broadcasts and presence diffs
published by the server processes (so they reach the topic's sockets on every process).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from pocketbizz.db import Database
from pocketbizz.db.notifications import Notifications, Subscription
from pocketbizz.realtime.changes import ChangeError, decode_change
from pocketbizz.realtime.frames import Broadcast
from pocketbizz.realtime.hub import Hub

log = structlog.get_logger("pocketbizz.realtime")

CHANGES_CHANNEL = "pocketbizz_realtime"
BROADCAST_CHANNEL = "pocketbizz_broadcast"
LISTENER_RECONNECTED = "Realtime lost its database connection: rejoin to resume"


class Listener:
    def __init__(self, db: Database, hub: Hub, notifications: Notifications) -> None:
        self.db = db
        self.hub = hub
        self.notifications = notifications
        # Broadcasts this process published are already delivered locally.
        self.process_id = uuid.uuid4().hex
        # Called when the connection comes back after a loss: changes committed meanwhile were
        # never announced, so joined channels are told to rejoin (and their clients re-read).
        self.on_reconnect: Callable[[str], None] | None = None
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        self._subscription = await self.notifications.subscribe(
            (CHANGES_CHANNEL, BROADCAST_CHANNEL), self._on_notification, on_connect=self._on_connect
        )

    async def connected(self) -> None:
        """Return once the channels are LISTENed (deliveries start then)."""
        if self._subscription is not None:
            await self._subscription.connected.wait()

    async def stop(self) -> None:
        if self._subscription is not None:
            await self.notifications.unsubscribe(self._subscription)
            self._subscription = None

    async def _on_connect(self, resumed: bool) -> None:
        log.info("realtime listening", resumed=resumed)
        if resumed and self.on_reconnect is not None:
            self.on_reconnect(LISTENER_RECONNECTED)

    def _on_notification(self, channel: str, payload: str) -> None:
        if channel == CHANGES_CHANNEL:
            self._on_change(payload)
        else:
            self._on_broadcast(payload)

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
