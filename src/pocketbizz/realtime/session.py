"""One WebSocket: reads Phoenix frames, keeps its channels, writes through a bounded queue.

The socket's protocol (`vsn` 1.0.0 or 2.0.0) only changes how frames are read and written
(`frames`); everything else is the same for both. A bad frame gets an error reply and the
socket carries on; a client too slow to read its frames is disconnected instead of growing the
server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from typing import Any

import orjson
import structlog
from starlette.websockets import WebSocket

from pocketbizz.db import Identity
from pocketbizz.realtime import authorization
from pocketbizz.realtime.channels import (
    Binding,
    Channel,
    JoinError,
    parse_bindings,
    resolve_identity,
)
from pocketbizz.realtime.frames import (
    MAX_FIELD_BYTES,
    PHOENIX_TOPIC,
    Broadcast,
    Codec,
    Frame,
    FrameError,
    Push,
)
from pocketbizz.realtime.limits import TOO_MANY_EVENTS, Admission, LimitReached
from pocketbizz.realtime.presence import PresenceError
from pocketbizz.realtime.registry import RegistrationError
from pocketbizz.realtime.service import BroadcastTooLarge, RealtimeService

log = structlog.get_logger("pocketbizz.realtime")

TOPIC_PREFIX = "realtime:"
MAX_TOPIC_LENGTH = 255
MAX_CHANNELS = 100
OUTBOX_LIMIT = 1_000
# The clients heartbeat every 25 s; a socket silent for longer than this is gone.
IDLE_TIMEOUT_SECONDS = 90.0
# Frames a socket may send per second; each broadcast costs a database round trip.
MAX_FRAMES_PER_SECOND = 100

_socket_ids = itertools.count(1)
# supabase/realtime's reason when it cannot check a private channel's policies.
_DATABASE_UNAVAILABLE = "Realtime was unable to connect to the project database"


def _unauthorized_read(sub_topic: str) -> str:
    # supabase/realtime's reason, word for word: clients match on it.
    return f"Unauthorized: You do not have permissions to read from this Channel topic: {sub_topic}"


class Session:
    def __init__(
        self,
        ws: WebSocket,
        *,
        service: RealtimeService,
        codec: Codec,
        apikey: str,
        key_identity: Identity,
        secret: str,
        max_frame_bytes: int,
    ) -> None:
        self.ws = ws
        self.service = service
        self.hub = service.hub
        self.codec = codec
        self.apikey = apikey
        self.key_identity = key_identity
        self.secret = secret
        self.max_frame_bytes = max_frame_bytes
        self.id = next(_socket_ids)
        self.channels: dict[str, Channel] = {}
        self._admitted: dict[Channel, Admission] = {}  # what each channel counts against
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._outbox: asyncio.Queue[str | bytes] = asyncio.Queue(OUTBOX_LIMIT)
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._overflowed = False
        self._window_start = 0.0
        self._window_frames = 0

    # -- output -----------------------------------------------------------------------------
    def send(self, data: str | bytes | None) -> None:
        if data is None or self._overflowed:
            return
        try:
            self._outbox.put_nowait(data)
        except asyncio.QueueFull:
            # Too slow to read: stop delivering and close rather than buffer without bound.
            self._overflowed = True
            self._close_all_channels()
            if self._writer is not None:
                self._writer.cancel()
            self._closer = asyncio.get_running_loop().create_task(self._close_slow())
            log.warning("realtime socket too slow, closing")

    def deliver(self, push: Push) -> None:
        """A push from the hub, in this socket's protocol (None: it cannot carry it)."""
        self.send(push.encoded(self.codec))

    async def _close_slow(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=1013, reason="too slow to read")

    async def _write(self) -> None:
        while True:
            data = await self._outbox.get()
            if isinstance(data, bytes):
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_text(data)

    # -- lifecycle --------------------------------------------------------------------------
    async def run(self) -> None:
        self._writer = asyncio.create_task(self._write())
        try:
            await self._read()
        finally:
            self._close_all_channels()
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _read(self) -> None:
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT_SECONDS):
                    message = await self.ws.receive()
            except TimeoutError:
                with contextlib.suppress(Exception):
                    await self.ws.close(code=1000, reason="idle")
                return
            if message["type"] == "websocket.disconnect":
                return
            data: str | bytes | None = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if len(data) > self.max_frame_bytes:
                self.send(self.codec.error_reply(PHOENIX_TOPIC, None, "message too large"))
                continue
            if self._over_budget():
                self.send(
                    self.codec.error_reply(
                        PHOENIX_TOPIC, None, "ClientRateLimitReached: too many messages per second"
                    )
                )
                continue
            try:
                await self.handle(self.codec.decode(data))
            except FrameError as exc:
                self.send(
                    self.codec.error_reply(
                        exc.topic or PHOENIX_TOPIC, exc.ref, exc.reason, exc.join_ref
                    )
                )
            except Exception:
                # One failing frame must not take the socket down with it.
                log.exception("realtime frame failed")
                self.send(self.codec.error_reply(PHOENIX_TOPIC, None, "internal error"))

    def _over_budget(self) -> bool:
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_frames = now, 0
        self._window_frames += 1
        return self._window_frames > MAX_FRAMES_PER_SECOND

    def _close_all_channels(self) -> None:
        for topic in list(self.channels):
            self._drop_channel(topic)

    def _drop_channel(self, topic: str) -> None:
        channel = self.channels.pop(topic, None)
        timer = self._expiry.pop(topic, None)
        if timer is not None:
            timer.cancel()
        if channel is not None:
            channel.closed = True
            self.hub.remove(channel)
            self.service.presence.forget(channel)
            admission = self._admitted.pop(channel, None)
            if admission is not None:
                self.service.limits.release(admission)

    # -- events -----------------------------------------------------------------------------
    async def handle(self, frame: Frame) -> None:
        if frame.topic == PHOENIX_TOPIC:
            if frame.event != "heartbeat":
                raise FrameError(
                    f"unknown event {frame.event!r} on topic 'phoenix'",
                    topic=frame.topic,
                    ref=frame.ref,
                    join_ref=frame.join_ref,
                )
            self.send(self.codec.reply(PHOENIX_TOPIC, frame.ref, join_ref=frame.join_ref))
            return
        if frame.event == "phx_join":
            await self._join(frame)
            return
        channel = self.channels.get(frame.topic)
        if channel is None:
            raise FrameError(
                "unmatched topic", topic=frame.topic, ref=frame.ref, join_ref=frame.join_ref
            )
        if frame.event == "phx_leave":
            self._drop_channel(frame.topic)
            self.send(self.codec.reply(frame.topic, frame.ref, join_ref=channel.join_ref))
        elif frame.event == "access_token":
            await self._update_token(channel, frame)
        elif frame.event == "broadcast":
            await self._broadcast(channel, frame)
        elif frame.event == "presence":
            await self._presence(channel, frame)
        else:
            raise self._error(channel, frame, f"unknown event {frame.event!r}")

    @staticmethod
    def _error(channel: Channel, frame: Frame, reason: str) -> FrameError:
        return FrameError(reason, topic=frame.topic, ref=frame.ref, join_ref=channel.join_ref)

    async def _join(self, frame: Frame) -> None:
        topic = frame.topic
        where = {"topic": topic, "ref": frame.ref, "join_ref": frame.join_ref}
        if (
            not topic.startswith(TOPIC_PREFIX)
            or len(topic) > MAX_TOPIC_LENGTH
            or len(topic.encode()) > MAX_FIELD_BYTES
        ):
            raise FrameError(f"unknown topic {topic!r}: topics are 'realtime:<name>'", **where)
        if topic == TOPIC_PREFIX:
            raise FrameError("TopicNameRequired: You must provide a topic name", **where)
        if topic not in self.channels and len(self.channels) >= MAX_CHANNELS:
            raise FrameError(f"too many channels on one socket (at most {MAX_CHANNELS})", **where)
        config = frame.payload.get("config") or {}
        try:
            if not isinstance(config, dict):
                raise JoinError("config must be an object")
            identity = await self._identity(frame.payload.get("access_token"))
            bindings = parse_bindings(config.get("postgres_changes"), self.hub.catalog)
        except JoinError as exc:
            raise FrameError(str(exc), **where) from exc
        # Joining a topic again replaces the earlier channel, as in Phoenix.
        self._drop_channel(topic)
        channel = self._new_channel(frame, config, identity, bindings)
        if channel.private and not await self._may_read(channel, identity, frame):
            raise FrameError(_unauthorized_read(channel.sub_topic), **where)
        try:
            self._admitted[channel] = self.service.limits.admit(channel, self.id)
        except LimitReached as exc:
            raise FrameError(exc.reason, **where) from exc
        self.channels[topic] = channel
        try:
            # Registered before the reply: every change committed after it is announced.
            await self.hub.join(channel)
        except RegistrationError as exc:
            log.warning("realtime subscription not registered", error=str(exc))
            self._drop_channel(topic)
            raise FrameError(
                "could not subscribe to PostgreSQL changes, try again", **where
            ) from exc
        if self.channels.get(topic) is not channel:
            return  # dropped while registering (the socket is closing)
        self._schedule_expiry(channel)
        self.send(
            self.codec.reply(
                topic,
                frame.ref,
                {"postgres_changes": [b.echo for b in bindings]},
                join_ref=channel.join_ref,
            )
        )
        if bindings:
            self.send(
                self.codec.system(
                    topic,
                    extension="postgres_changes",
                    message="Subscribed to PostgreSQL",
                    join_ref=channel.join_ref,
                )
            )
        if channel.presence_enabled:
            await self._sync_presence(channel)

    def _new_channel(
        self, frame: Frame, config: dict[str, Any], identity: Identity, bindings: list[Binding]
    ) -> Channel:
        broadcast = config.get("broadcast")
        broadcast = broadcast if isinstance(broadcast, dict) else {}
        presence = config.get("presence")
        presence = presence if isinstance(presence, dict) else {}
        key = presence.get("key")
        return Channel(
            topic=frame.topic,
            identity=identity,
            bindings=bindings,
            push=self.deliver,
            broadcast_self=bool(broadcast.get("self")),
            broadcast_ack=bool(broadcast.get("ack")),
            private=bool(config.get("private")),
            join_ref=frame.join_ref,
            # Without a key of its own, each channel is one presence (Supabase: a UUID).
            presence_key=key if isinstance(key, str) and key else str(uuid.uuid4()),
            # Clients that predate `presence.enabled` always got presence.
            presence_enabled=bool(presence.get("enabled", True)),
        )

    async def _may_read(self, channel: Channel, identity: Identity, frame: Frame) -> bool:
        """A private channel's read rights for this identity (SELECT on realtime.messages);
        False when it may read neither broadcasts nor presence."""
        try:
            rights = await authorization.read_rights(self.service.db, identity, channel.sub_topic)
        except Exception as exc:
            log.warning("realtime authorization failed", error=str(exc))
            raise self._error(channel, frame, _DATABASE_UNAVAILABLE) from exc
        channel.read_broadcast, channel.read_presence = rights.broadcast, rights.presence
        return rights.any

    async def _may_send(self, channel: Channel, extension: str, frame: Frame) -> bool:
        try:
            return await authorization.may_send(
                self.service.db, channel.identity, channel.sub_topic, extension
            )
        except Exception as exc:
            log.warning("realtime authorization failed", error=str(exc))
            raise self._error(channel, frame, _DATABASE_UNAVAILABLE) from exc

    async def _sync_presence(self, channel: Channel) -> None:
        if not channel.read_presence:
            return
        state = await self.service.presence.state(channel.scope, channel.topic)
        if self.channels.get(channel.topic) is channel:
            self.send(
                self.codec.encode(channel.topic, "presence_state", state, None, channel.join_ref)
            )

    async def _identity(self, token: Any) -> Identity:
        identity = resolve_identity(
            token, apikey=self.apikey, key_identity=self.key_identity, secret=self.secret
        )
        if await self.service.token_revoked(identity):
            raise JoinError("Invalid token: the session has ended")
        return identity

    async def _update_token(self, channel: Channel, frame: Frame) -> None:
        try:
            identity = await self._identity(frame.payload.get("access_token"))
        except JoinError as exc:
            self._expel(channel, str(exc))
            return
        if channel.private:
            if not await self._may_read(channel, identity, frame):
                self._expel(channel, _unauthorized_read(channel.sub_topic))
                return
            # Asked again at the next send, as the new user.
            channel.may_broadcast = channel.may_track = None
        old_scope = channel.scope
        try:
            await self.hub.reidentify(channel, identity)
        except RegistrationError as exc:
            log.warning("realtime subscription not registered", error=str(exc))
            self._expel(channel, "could not subscribe to PostgreSQL changes")
            return
        if self.channels.get(channel.topic) is not channel:
            return
        if channel.scope != old_scope:
            self.service.presence.forget(channel)  # tracked in the scope it has left
        self._schedule_expiry(channel)
        self.send(self.codec.reply(channel.topic, frame.ref, join_ref=channel.join_ref))

    def _schedule_expiry(self, channel: Channel) -> None:
        timer = self._expiry.pop(channel.topic, None)
        if timer is not None:
            timer.cancel()
        delay = channel.expires_at - time.time()
        if delay < 30 * 24 * 3600:  # API keys live for years; nothing to schedule
            loop = asyncio.get_running_loop()
            self._expiry[channel.topic] = loop.call_later(
                max(delay, 0), self._expel, channel, "Token has expired"
            )

    def _expel(self, channel: Channel, reason: str) -> None:
        """Close a channel (token expired or replaced by a bad one, a cap reached, ...)."""
        if self.channels.get(channel.topic) is not channel:
            return
        self._drop_channel(channel.topic)
        self.send(
            self.codec.system(
                channel.topic,
                extension="system",
                message=reason,
                ok=False,
                join_ref=channel.join_ref,
            )
        )
        self.send(self.codec.close(channel.topic, channel.join_ref))

    def rejoin_all(self, reason: str) -> None:
        """Fail every channel (a `system` error, then `phx_error`, as when a Phoenix channel
        crashes): the clients rejoin, and re-read what they may have missed meanwhile."""
        for channel in list(self.channels.values()):
            self._drop_channel(channel.topic)
            self.send(
                self.codec.system(
                    channel.topic,
                    extension="system",
                    message=reason,
                    ok=False,
                    join_ref=channel.join_ref,
                )
            )
            self.send(self.codec.encode(channel.topic, "phx_error", {}, None, channel.join_ref))

    def _message(self, channel: Channel, frame: Frame) -> Broadcast:
        if frame.broadcast is not None:  # a kind-3 binary frame, already checked
            return frame.broadcast
        payload = frame.payload
        if not isinstance(payload.get("event"), str) or not isinstance(
            payload.get("payload"), dict
        ):
            raise self._error(
                channel, frame, "broadcast needs an 'event' string and a 'payload' object"
            )
        return Broadcast(
            payload["event"], orjson.dumps(payload["payload"]), is_json=True, binary_origin=False
        )

    async def _broadcast(self, channel: Channel, frame: Frame) -> None:
        message = self._message(channel, frame)
        if channel.private:
            if channel.may_broadcast is None:
                channel.may_broadcast = await self._may_send(channel, "broadcast", frame)
            if not channel.may_broadcast:
                return  # dropped without a word, as Supabase does
        if not self.service.limits.event(channel):
            self._expel(channel, TOO_MANY_EVENTS)
            return
        try:
            await self.service.broadcast(channel.scope, channel.topic, message, channel.serial)
        except BroadcastTooLarge as exc:
            raise self._error(channel, frame, str(exc)) from exc
        if channel.broadcast_ack:
            self.send(self.codec.reply(frame.topic, frame.ref, join_ref=channel.join_ref))

    async def _presence(self, channel: Channel, frame: Frame) -> None:
        event = frame.payload.get("event")
        event = event.lower() if isinstance(event, str) else None
        presence = self.service.presence
        if event == "track":
            if channel.private:
                if channel.may_track is None:
                    channel.may_track = await self._may_send(channel, "presence", frame)
                if not channel.may_track:
                    raise self._error(
                        channel,
                        frame,
                        "Unauthorized: You do not have permissions to track presence on this"
                        f" Channel topic: {channel.sub_topic}",
                    )
            if not self.service.limits.event(channel):
                self._expel(channel, TOO_MANY_EVENTS)
                return
            first = not channel.presence_enabled
            try:
                await presence.track(channel, frame.payload.get("payload", {}))
            except PresenceError as exc:
                raise self._error(channel, frame, str(exc)) from exc
            if first:
                # This track turns presence on: the channel never got the state at its join.
                channel.presence_enabled = True
                await self._sync_presence(channel)
        elif event == "untrack":
            await presence.untrack(channel)
        else:
            raise self._error(channel, frame, f"unknown presence event {event!r}")
        if self.channels.get(channel.topic) is channel:
            self.send(self.codec.reply(frame.topic, frame.ref, join_ref=channel.join_ref))
