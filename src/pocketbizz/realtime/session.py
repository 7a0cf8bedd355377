"""One WebSocket: reads Phoenix frames, keeps its channels, writes through a bounded queue.

A bad frame gets an error reply and the socket carries on; a client too slow to read its
frames is disconnected instead of growing the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
import structlog
from starlette.websockets import WebSocket

from pocketbizz.db import Identity
from pocketbizz.realtime import frames
from pocketbizz.realtime.channels import (
    Channel,
    JoinError,
    parse_bindings,
    resolve_identity,
)
from pocketbizz.realtime.frames import PHOENIX_TOPIC, Frame, FrameError
from pocketbizz.realtime.hub import Hub
from pocketbizz.realtime.listener import Listener
from pocketbizz.realtime.registry import RegistrationError

log = structlog.get_logger("pocketbizz.realtime")

TOPIC_PREFIX = "realtime:"
MAX_TOPIC_LENGTH = 255
MAX_CHANNELS = 100
OUTBOX_LIMIT = 1_000
# The clients heartbeat every 25 s; a socket silent for longer than this is gone.
IDLE_TIMEOUT_SECONDS = 90.0
# NOTIFY carries broadcasts between processes and caps a payload at 8000 bytes.
MAX_BROADCAST_BYTES = 7_000
# Frames a socket may send per second; each broadcast costs a database round trip.
MAX_FRAMES_PER_SECOND = 100


class Session:
    def __init__(
        self,
        ws: WebSocket,
        *,
        hub: Hub,
        listener: Listener,
        apikey: str,
        key_identity: Identity,
        secret: str,
        max_frame_bytes: int,
    ) -> None:
        self.ws = ws
        self.hub = hub
        self.listener = listener
        self.apikey = apikey
        self.key_identity = key_identity
        self.secret = secret
        self.max_frame_bytes = max_frame_bytes
        self.channels: dict[str, Channel] = {}
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._outbox: asyncio.Queue[str] = asyncio.Queue(OUTBOX_LIMIT)
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._overflowed = False
        self._window_start = 0.0
        self._window_frames = 0

    # -- output -----------------------------------------------------------------------------
    def push(self, text: str) -> None:
        if self._overflowed:
            return
        try:
            self._outbox.put_nowait(text)
        except asyncio.QueueFull:
            # Too slow to read: stop delivering and close rather than buffer without bound.
            self._overflowed = True
            self._close_all_channels()
            if self._writer is not None:
                self._writer.cancel()
            self._closer = asyncio.get_running_loop().create_task(self._close_slow())
            log.warning("realtime socket too slow, closing")

    async def _close_slow(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=1013, reason="too slow to read")

    async def _write(self) -> None:
        while True:
            await self.ws.send_text(await self._outbox.get())

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
            text = message.get("text")
            if text is None:
                self.push(
                    frames.error_reply(
                        PHOENIX_TOPIC, None, "malformed message: binary frames are not supported"
                    )
                )
                continue
            if len(text) > self.max_frame_bytes:
                self.push(frames.error_reply(PHOENIX_TOPIC, None, "message too large"))
                continue
            if self._over_budget():
                self.push(
                    frames.error_reply(
                        PHOENIX_TOPIC, None, "ClientRateLimitReached: too many messages per second"
                    )
                )
                continue
            try:
                await self.handle(frames.parse_frame(text))
            except FrameError as exc:
                self.push(frames.error_reply(exc.topic or PHOENIX_TOPIC, exc.ref, exc.reason))
            except Exception:
                # One failing frame must not take the socket down with it.
                log.exception("realtime frame failed")
                self.push(frames.error_reply(PHOENIX_TOPIC, None, "internal error"))

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

    # -- events -----------------------------------------------------------------------------
    async def handle(self, frame: Frame) -> None:
        if frame.topic == PHOENIX_TOPIC:
            if frame.event != "heartbeat":
                raise FrameError(
                    f"unknown event {frame.event!r} on topic 'phoenix'",
                    topic=frame.topic,
                    ref=frame.ref,
                )
            self.push(frames.reply(PHOENIX_TOPIC, frame.ref))
            return
        if frame.event == "phx_join":
            await self._join(frame)
            return
        channel = self.channels.get(frame.topic)
        if channel is None:
            raise FrameError("unmatched topic", topic=frame.topic, ref=frame.ref)
        if frame.event == "phx_leave":
            self._drop_channel(frame.topic)
            self.push(frames.reply(frame.topic, frame.ref))
        elif frame.event == "access_token":
            await self._update_token(channel, frame)
        elif frame.event == "broadcast":
            await self._broadcast(channel, frame)
        elif frame.event == "presence":
            raise FrameError("presence is not supported", topic=frame.topic, ref=frame.ref)
        else:
            raise FrameError(f"unknown event {frame.event!r}", topic=frame.topic, ref=frame.ref)

    async def _join(self, frame: Frame) -> None:
        topic = frame.topic
        if not topic.startswith(TOPIC_PREFIX) or len(topic) > MAX_TOPIC_LENGTH:
            raise FrameError(
                f"unknown topic {topic!r}: topics are 'realtime:<name>'", topic=topic, ref=frame.ref
            )
        if topic not in self.channels and len(self.channels) >= MAX_CHANNELS:
            raise FrameError(
                f"too many channels on one socket (at most {MAX_CHANNELS})",
                topic=topic,
                ref=frame.ref,
            )
        config = frame.payload.get("config") or {}
        try:
            if not isinstance(config, dict):
                raise JoinError("config must be an object")
            if config.get("private"):
                raise JoinError("private channels are not supported")
            identity = resolve_identity(
                frame.payload.get("access_token"),
                apikey=self.apikey,
                key_identity=self.key_identity,
                secret=self.secret,
            )
            bindings = parse_bindings(config.get("postgres_changes"), self.hub.catalog)
        except JoinError as exc:
            raise FrameError(str(exc), topic=topic, ref=frame.ref) from exc
        broadcast = config.get("broadcast")
        broadcast = broadcast if isinstance(broadcast, dict) else {}

        # Joining a topic again replaces the earlier channel, as in Phoenix.
        self._drop_channel(topic)
        channel = Channel(
            topic=topic,
            identity=identity,
            bindings=bindings,
            push=self.push,
            broadcast_self=bool(broadcast.get("self")),
            broadcast_ack=bool(broadcast.get("ack")),
        )
        self.channels[topic] = channel
        try:
            # Registered before the reply: every change committed after it is announced.
            await self.hub.join(channel)
        except RegistrationError as exc:
            log.warning("realtime subscription not registered", error=str(exc))
            self._drop_channel(topic)
            raise FrameError(
                "could not subscribe to PostgreSQL changes, try again", topic=topic, ref=frame.ref
            ) from exc
        if self.channels.get(topic) is not channel:
            return  # dropped while registering (the socket is closing)
        self._schedule_expiry(channel)
        self.push(frames.reply(topic, frame.ref, {"postgres_changes": [b.echo for b in bindings]}))
        if bindings:
            self.push(
                frames.system(
                    topic, extension="postgres_changes", message="Subscribed to PostgreSQL"
                )
            )

    async def _update_token(self, channel: Channel, frame: Frame) -> None:
        try:
            identity = resolve_identity(
                frame.payload.get("access_token"),
                apikey=self.apikey,
                key_identity=self.key_identity,
                secret=self.secret,
            )
        except JoinError as exc:
            self._expel(channel, str(exc))
            return
        try:
            await self.hub.reidentify(channel, identity)
        except RegistrationError as exc:
            log.warning("realtime subscription not registered", error=str(exc))
            self._expel(channel, "could not subscribe to PostgreSQL changes")
            return
        if self.channels.get(channel.topic) is not channel:
            return
        self._schedule_expiry(channel)
        self.push(frames.reply(channel.topic, frame.ref))

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
        """Close a channel whose token expired or was replaced by a bad one."""
        if self.channels.get(channel.topic) is not channel:
            return
        self._drop_channel(channel.topic)
        self.push(frames.system(channel.topic, extension="system", message=reason, ok=False))
        self.push(frames.close(channel.topic))

    async def _broadcast(self, channel: Channel, frame: Frame) -> None:
        payload = frame.payload
        tenant = channel.tenant
        if tenant is None:
            raise FrameError("broadcast needs a signed-in user", topic=frame.topic, ref=frame.ref)
        if not isinstance(payload.get("event"), str) or not isinstance(
            payload.get("payload"), dict
        ):
            raise FrameError(
                "broadcast needs an 'event' string and a 'payload' object",
                topic=frame.topic,
                ref=frame.ref,
            )
        message: dict[str, Any] = {
            "type": "broadcast",
            "event": payload["event"],
            "payload": payload["payload"],
        }
        if len(orjson.dumps(message)) > MAX_BROADCAST_BYTES:
            raise FrameError(
                f"broadcast payload too large (at most {MAX_BROADCAST_BYTES} bytes)",
                topic=frame.topic,
                ref=frame.ref,
            )
        self.hub.broadcast(tenant, channel.topic, message, channel.serial)
        await self.listener.publish_broadcast(tenant, channel.topic, message)
        if channel.broadcast_ack:
            self.push(frames.reply(frame.topic, frame.ref))
