"""A raw protocol 2.0.0 client: JSON-array text frames and the binary broadcast frames."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness import ServerProcess
from rt_helpers import socket_url
from websockets.asyncio.client import ClientConnection

Received = list[Any] | bytes


def v2_url(server: ServerProcess, apikey: str | None = None) -> str:
    return socket_url(server, apikey).replace("vsn=1.0.0", "vsn=2.0.0")


def user_broadcast_push(
    topic: str,
    event: str,
    payload: bytes,
    *,
    json_payload: bool = True,
    join_ref: str = "1",
    ref: str = "",
    metadata: bytes = b"",
) -> bytes:
    """A kind-3 frame, laid out as realtime-js's serializer writes it."""
    fields = [f.encode() if isinstance(f, str) else f for f in (join_ref, ref, topic, event)]
    fields.append(metadata)
    header = struct.pack("B" * 7, 3, *(len(f) for f in fields), 1 if json_payload else 0)
    return header + b"".join(fields) + payload


@dataclass(frozen=True)
class UserBroadcast:
    topic: str
    event: str
    metadata: bytes
    json_payload: bool
    payload: bytes


def read_user_broadcast(data: bytes) -> UserBroadcast:
    """A kind-4 frame, read as realtime-js's serializer reads it."""
    kind, topic_size, event_size, meta_size, encoding = struct.unpack_from("B" * 5, data)
    assert kind == 4
    offset = 5
    topic = data[offset : offset + topic_size].decode()
    offset += topic_size
    event = data[offset : offset + event_size].decode()
    offset += event_size
    metadata = data[offset : offset + meta_size]
    offset += meta_size
    return UserBroadcast(topic, event, metadata, encoding == 1, data[offset:])


async def recv(ws: ClientConnection, within: float = 2.0) -> Received:
    data = await asyncio.wait_for(ws.recv(), within)
    if isinstance(data, bytes):
        return data
    frame: list[Any] = json.loads(data)
    return frame


async def recv_until(
    ws: ClientConnection, predicate: Callable[[Received], bool], within: float = 2.0
) -> Received:
    async with asyncio.timeout(within):
        while True:
            frame = await recv(ws, within)
            if predicate(frame):
                return frame


async def nothing_arrives(ws: ClientConnection, within: float = 0.5) -> list[Received]:
    """Frames that arrive within the time (a test asserts there were none it cares about)."""
    got: list[Received] = []
    try:
        async with asyncio.timeout(within):
            while True:
                got.append(await recv(ws, within))
    except TimeoutError:
        return got


def is_reply(ref: str) -> Callable[[Received], bool]:
    return lambda f: isinstance(f, list) and f[3] == "phx_reply" and f[1] == ref


async def join(
    ws: ClientConnection,
    topic: str,
    ref: str,
    *,
    token: str | None = None,
    private: bool = False,
    ack: bool = False,
    self_: bool = False,
    presence: dict[str, Any] | None = None,
    bindings: list[dict[str, Any]] | None = None,
) -> list[Any]:
    config = {
        "broadcast": {"ack": ack, "self": self_},
        "presence": presence if presence is not None else {"key": "", "enabled": False},
        "postgres_changes": bindings or [],
        "private": private,
    }
    payload: dict[str, Any] = {"config": config}
    if token is not None:
        payload["access_token"] = token
    await ws.send(json.dumps([ref, ref, topic, "phx_join", payload]))
    reply = await recv_until(ws, is_reply(ref))
    assert isinstance(reply, list)
    return reply
