"""Protocol 2.0.0 (the default of supabase-js, Dart and Swift), frame by frame, beside 1.0.0."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import websockets
from harness import ServerProcess
from rt_helpers import Inbox, signed_in, socket_url
from supabase import AsyncClient, acreate_client
from v2_helpers import (
    is_reply,
    join,
    nothing_arrives,
    read_user_broadcast,
    recv,
    recv_until,
    user_broadcast_push,
    v2_url,
)


async def test_text_frames_are_json_arrays_both_ways(server: ServerProcess) -> None:
    async with websockets.connect(v2_url(server)) as ws:
        await ws.send(json.dumps([None, "1", "phoenix", "heartbeat", {}]))
        assert await recv(ws) == [
            None,
            "1",
            "phoenix",
            "phx_reply",
            {"status": "ok", "response": {}},
        ]
        binding = {"event": "INSERT", "schema": "public", "table": "products"}
        reply = await join(ws, "realtime:shop", "3", bindings=[binding])
        assert reply[:4] == ["3", "3", "realtime:shop", "phx_reply"]
        assert reply[4]["status"] == "ok"
        (echoed,) = reply[4]["response"]["postgres_changes"]
        assert {k: v for k, v in echoed.items() if k != "id"} == binding
        system = await recv(ws)
        assert system == [
            "3",
            None,
            "realtime:shop",
            "system",
            {
                "channel": "shop",
                "extension": "postgres_changes",
                "message": "Subscribed to PostgreSQL",
                "status": "ok",
            },
        ]
        await ws.send(json.dumps(["3", "4", "realtime:shop", "phx_leave", {}]))
        left = await recv(ws)
        assert isinstance(left, list) and left[:4] == ["3", "4", "realtime:shop", "phx_reply"]


async def test_a_binary_broadcast_push_reaches_2_0_0_sockets_as_user_broadcast(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a = make_user()
    async with (
        websockets.connect(v2_url(server)) as sender,
        websockets.connect(v2_url(server)) as receiver,
    ):
        await join(sender, "realtime:till", "1", token=a.access_token, ack=True)
        await join(receiver, "realtime:till", "1", token=a.access_token)

        body = orjson.dumps({"total": "12.50", "items": [1, 2]})
        await sender.send(user_broadcast_push("realtime:till", "sale", body, ref="2"))
        ack = await recv_until(sender, is_reply("2"))
        assert ack == ["1", "2", "realtime:till", "phx_reply", {"status": "ok", "response": {}}]
        got = await recv(receiver)
        assert isinstance(got, bytes)
        message = read_user_broadcast(got)
        assert (message.topic, message.event, message.json_payload) == (
            "realtime:till",
            "sale",
            True,
        )
        assert orjson.loads(message.payload) == {"total": "12.50", "items": [1, 2]}
        assert message.metadata == b""

        raw = bytes(range(256))
        await sender.send(
            user_broadcast_push("realtime:till", "receipt", raw, json_payload=False, ref="3")
        )
        got = await recv(receiver)
        assert isinstance(got, bytes)
        message = read_user_broadcast(got)
        assert (message.event, message.json_payload, message.payload) == ("receipt", False, raw)


async def test_binary_payloads_skip_1_0_0_sockets_and_json_ones_reach_them(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a = make_user()
    async with (
        websockets.connect(v2_url(server)) as sender,
        websockets.connect(socket_url(server)) as old,
    ):
        await join(sender, "realtime:till", "1", token=a.access_token)
        await old.send(
            json.dumps(
                {
                    "topic": "realtime:till",
                    "event": "phx_join",
                    "ref": "1",
                    "payload": {"config": {}, "access_token": a.access_token},
                }
            )
        )
        assert json.loads(await old.recv())["payload"]["status"] == "ok"

        await sender.send(
            user_broadcast_push("realtime:till", "receipt", b"\x00\xff", json_payload=False)
        )
        await sender.send(user_broadcast_push("realtime:till", "sale", b'{"n": 1}'))
        # The first broadcast the 1.0.0 socket gets is the JSON one: the binary one was skipped.
        frame: dict[str, Any] = {}
        while frame.get("event") != "broadcast":
            frame = json.loads(await asyncio.wait_for(old.recv(), 2))
        assert frame == {
            "event": "broadcast",
            "topic": "realtime:till",
            "ref": None,
            "payload": {"type": "broadcast", "event": "sale", "payload": {"n": 1}},
        }


async def test_a_text_broadcast_reaches_2_0_0_sockets_as_a_text_frame(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a = make_user()
    async with (
        websockets.connect(v2_url(server)) as receiver,
        websockets.connect(socket_url(server)) as old,
    ):
        await join(receiver, "realtime:till", "1", token=a.access_token)
        await old.send(
            json.dumps(
                {
                    "topic": "realtime:till",
                    "event": "phx_join",
                    "ref": "1",
                    "payload": {"config": {}, "access_token": a.access_token},
                }
            )
        )
        assert json.loads(await old.recv())["payload"]["status"] == "ok"
        message = {"type": "broadcast", "event": "drawer", "payload": {"open": True}}
        await old.send(
            json.dumps(
                {"topic": "realtime:till", "event": "broadcast", "ref": "2", "payload": message}
            )
        )
        # As supabase/realtime fastlanes a JSON broadcast: [null, null, topic, event, payload].
        assert await recv(receiver) == [None, None, "realtime:till", "broadcast", message]


@pytest.mark.parametrize(
    ("frame", "reason_part"),
    [
        (b"", "empty"),
        (b"\x09abc", "kind 9"),
        (b"\x03\x01\x01", "truncated"),
        (bytes([3, 1, 1, 40, 1, 0, 1]) + b"12realtime:x", "shorter"),
        (bytes([3, 0, 0, 2, 1, 0, 1]) + b"\xff\xfee{}", "UTF-8"),
        (
            user_broadcast_push("realtime:x", "e", b"{}")[:6] + b"\x07" + b"1realtime:xe{}",
            "encoding",
        ),
        (user_broadcast_push("realtime:x", "e", b"{not json"), "not JSON"),
        (user_broadcast_push("realtime:x", "e", b"{}", metadata=b"[1]"), "metadata"),
        (user_broadcast_push("realtime:x", "", b"{}"), "event"),
        (user_broadcast_push("realtime:x", "e", b"{}"), "unmatched topic"),
        ('{"event": "phx_join"}', "JSON array"),
        ('[null, "1", "realtime:x", "phx_join"]', "JSON array"),
        ('[null, 5, "realtime:x", "phx_join", {}]', "ref"),
        ("not json", "not JSON"),
    ],
)
async def test_malformed_frames_get_an_error_reply_and_the_socket_lives(
    server: ServerProcess, frame: bytes | str, reason_part: str
) -> None:
    async with websockets.connect(v2_url(server)) as ws:
        await ws.send(frame)
        reply = await recv(ws)
        assert isinstance(reply, list) and reply[3] == "phx_reply"
        assert reply[4]["status"] == "error"
        assert reason_part in reply[4]["response"]["reason"]
        await ws.send(json.dumps([None, "hb", "phoenix", "heartbeat", {}]))
        assert (await recv_until(ws, is_reply("hb")))[4]["status"] == "ok"  # type: ignore[index]


async def test_a_1_0_0_client_and_a_2_0_0_client_exchange_broadcasts(
    server: ServerProcess, make_user: Callable[..., Any], clients: list[AsyncClient]
) -> None:
    a = make_user()
    py = await signed_in(server, a.email, a.password)  # supabase-py: vsn 1.0.0
    clients.append(py)
    heard = Inbox()
    channel = py.channel("counter")
    channel.on_broadcast("order", heard)
    await channel.subscribe()

    async with websockets.connect(v2_url(server)) as js:
        await join(js, "realtime:counter", "1", token=a.access_token)
        await js.send(user_broadcast_push("realtime:counter", "order", b'{"table": 4}'))
        got = await heard.wait_for(lambda p: p["event"] == "order", within=3)
        assert got["payload"] == {"table": 4}

        await channel.send_broadcast("order", {"table": 7})
        frame = await recv_until(js, lambda f: isinstance(f, list) and f[3] == "broadcast")
        assert isinstance(frame, list)
        assert frame[4] == {"type": "broadcast", "event": "order", "payload": {"table": 7}}


async def test_anon_may_broadcast_on_a_public_channel_and_tenants_never_hear_it(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a = make_user()
    async with (
        websockets.connect(v2_url(server)) as anon_sender,
        websockets.connect(v2_url(server)) as anon_receiver,
        websockets.connect(v2_url(server)) as tenant,
    ):
        await join(anon_sender, "realtime:lobby", "1", ack=True)
        await join(anon_receiver, "realtime:lobby", "1")
        await join(tenant, "realtime:lobby", "1", token=a.access_token)

        await anon_sender.send(user_broadcast_push("realtime:lobby", "hello", b"{}", ref="2"))
        assert (await recv_until(anon_sender, is_reply("2")))[4]["status"] == "ok"  # type: ignore[index]
        got = await recv(anon_receiver)
        assert isinstance(got, bytes) and read_user_broadcast(got).event == "hello"
        assert await nothing_arrives(tenant) == []

        # Nor the other way round: the tenant's broadcast stays in the tenant.
        await tenant.send(user_broadcast_push("realtime:lobby", "private-ish", b"{}"))
        assert await nothing_arrives(anon_receiver) == []


async def test_anon_broadcast_with_the_official_python_client(
    server: ServerProcess, clients: list[AsyncClient]
) -> None:
    # Issue 8 C.7: supabase/realtime allows anon to broadcast on a public channel.
    sender = await acreate_client(server.url, server.anon_key)
    receiver = await acreate_client(server.url, server.anon_key)
    clients.extend([sender, receiver])
    heard = Inbox()
    listening = receiver.channel("kiosk")
    listening.on_broadcast("hello", heard)
    await listening.subscribe()
    talking = sender.channel("kiosk", {"config": {"broadcast": {"ack": True}}})
    await talking.subscribe()
    await talking.send_broadcast("hello", {"from": "anon"})
    got = await heard.wait_for(lambda p: p["event"] == "hello", within=3)
    assert got["payload"] == {"from": "anon"}
