"""The Phoenix V1 wire contract, frame by frame, with a raw WebSocket client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import websockets
from harness import ServerProcess
from rt_helpers import socket_url
from websockets.asyncio.client import ClientConnection


async def recv(ws: ClientConnection, within: float = 2.0) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), within))
    return frame


async def recv_until(
    ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool], within: float = 2.0
) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            frame = await recv(ws, within)
            if predicate(frame):
                return frame


async def send(ws: ClientConnection, frame: Any) -> None:
    await ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))


def join_frame(topic: str, ref: str, bindings: list[dict[str, Any]], **extra: Any) -> dict:
    config = {
        "broadcast": {"ack": False, "self": False},
        "presence": {"key": "", "enabled": False},
        "private": False,
        "postgres_changes": bindings,
    }
    return {
        "event": "phx_join",
        "topic": topic,
        "ref": ref,
        "join_ref": ref,
        "payload": {"config": config, **extra},
    }


@pytest.fixture
async def socket(server: ServerProcess) -> AsyncIterator[ClientConnection]:
    async with websockets.connect(socket_url(server)) as ws:
        yield ws


async def test_heartbeat_replies_with_null_ref(socket: ClientConnection) -> None:
    await send(socket, {"event": "heartbeat", "topic": "phoenix", "payload": {}, "ref": None})
    frame = await recv(socket)
    assert frame == {
        "event": "phx_reply",
        "topic": "phoenix",
        "payload": {"status": "ok", "response": {}},
        "ref": None,
    }


async def test_join_echoes_bindings_with_ids_then_system_message(
    socket: ClientConnection,
) -> None:
    bindings = [
        {"event": "INSERT", "schema": "public", "table": "products"},
        {"event": "*", "schema": "public", "table": "sales", "filter": "channel=eq.online"},
    ]
    await send(socket, join_frame("realtime:shop", "1", bindings))
    reply = await recv(socket)
    assert reply["event"] == "phx_reply" and reply["ref"] == "1"
    assert reply["topic"] == "realtime:shop"
    assert reply["payload"]["status"] == "ok"
    echoed = reply["payload"]["response"]["postgres_changes"]
    assert [{k: v for k, v in b.items() if k != "id"} for b in echoed] == bindings
    ids = [b["id"] for b in echoed]
    assert all(isinstance(i, int) and i != 0 for i in ids) and len(set(ids)) == 2

    system = await recv(socket)
    assert system == {
        "event": "system",
        "topic": "realtime:shop",
        "ref": None,
        "payload": {
            "channel": "shop",
            "extension": "postgres_changes",
            "message": "Subscribed to PostgreSQL",
            "status": "ok",
        },
    }

    await send(socket, {"event": "phx_leave", "topic": "realtime:shop", "payload": {}, "ref": "2"})
    left = await recv(socket)
    assert left["ref"] == "2" and left["payload"]["status"] == "ok"


async def test_join_without_bindings_replies_empty_list(socket: ClientConnection) -> None:
    await send(socket, join_frame("realtime:chat", "7", []))
    reply = await recv(socket)
    assert reply["payload"] == {"status": "ok", "response": {"postgres_changes": []}}


@pytest.mark.parametrize(
    ("frame", "reason_part"),
    [
        ("this is not json", "not JSON"),
        ('[null, "1", "realtime:x", "phx_join", {}]', "JSON object"),
        ({"event": "phx_join", "payload": {}, "ref": "1"}, "topic"),
        ({"topic": "realtime:x", "payload": {}, "ref": "1"}, "event"),
        ({"topic": "realtime:x", "event": "phx_join", "payload": [], "ref": "1"}, "payload"),
        ({"topic": "realtime:nope", "event": "broadcast", "payload": {}, "ref": "3"}, "unmatched"),
        ({"topic": "elsewhere", "event": "phx_join", "payload": {}, "ref": "4"}, "unknown topic"),
        ({"topic": "phoenix", "event": "reboot", "payload": {}, "ref": "5"}, "unknown event"),
    ],
)
async def test_malformed_frames_get_an_error_and_the_socket_lives(
    socket: ClientConnection, frame: Any, reason_part: str
) -> None:
    await send(socket, frame)
    reply = await recv(socket)
    assert reply["event"] == "phx_reply"
    assert "ref" in reply and (reply["ref"] is None or isinstance(reply["ref"], str))
    assert reply["payload"]["status"] == "error"
    assert reason_part in reply["payload"]["response"]["reason"]
    # The socket still answers.
    await send(socket, {"event": "heartbeat", "topic": "phoenix", "payload": {}, "ref": "hb"})
    assert (await recv(socket))["ref"] == "hb"


async def test_binary_frames_are_refused(socket: ClientConnection) -> None:
    await send(socket, b"\x00\x01binary")
    reply = await recv(socket)
    assert reply["payload"]["status"] == "error"
    assert "binary" in reply["payload"]["response"]["reason"]


@pytest.mark.parametrize(
    ("binding", "reason_part"),
    [
        ({"event": "INSERT", "schema": "public", "table": "no_such_table"}, "not available"),
        ({"event": "INSERT", "schema": "auth", "table": "users"}, "schema"),
        ({"event": "INSERT", "schema": "public", "table": "plans"}, "not available"),
        ({"event": "TRUNCATE", "schema": "public", "table": "products"}, "event"),
        ({"event": "*", "schema": "public", "table": "products", "filter": "price"}, "filter"),
        ({"event": "*", "schema": "public", "table": "products", "filter": "nope=eq.1"}, "column"),
        (
            {"event": "*", "schema": "public", "table": "products", "filter": "sale_price=eq.x"},
            "numeric",
        ),
        (
            {"event": "*", "schema": "public", "table": "products", "filter": "sku=like.a%"},
            "operator",
        ),
    ],
)
async def test_bad_bindings_are_refused_with_a_reason(
    socket: ClientConnection, binding: dict[str, Any], reason_part: str
) -> None:
    await send(socket, join_frame("realtime:bad", "9", [binding]))
    reply = await recv(socket)
    assert reply["ref"] == "9" and reply["payload"]["status"] == "error"
    assert reason_part in reply["payload"]["response"]["reason"]


async def test_join_with_a_garbage_token_is_refused(socket: ClientConnection) -> None:
    await send(socket, join_frame("realtime:t", "1", [], access_token="a.b.c"))
    reply = await recv(socket)
    assert reply["payload"]["status"] == "error"
    assert "Invalid token" in reply["payload"]["response"]["reason"]


async def test_bad_api_key_is_refused_at_the_handshake(server: ServerProcess) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(socket_url(server, apikey="not-a-key")):
            pass
    assert info.value.response.status_code == 401


async def test_unsupported_vsn_is_refused(server: ServerProcess) -> None:
    url = socket_url(server).replace("vsn=1.0.0", "vsn=3.0.0")
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url):
            pass
    assert info.value.response.status_code == 400


async def test_a_flood_of_bad_frames_is_throttled_and_disturbs_no_one(
    server: ServerProcess,
) -> None:
    async with (
        websockets.connect(socket_url(server)) as noisy,
        websockets.connect(socket_url(server)) as calm,
    ):
        for i in range(150):
            await send(noisy, "{" * (i % 7) + "garbage")
        await send(calm, {"event": "heartbeat", "topic": "phoenix", "payload": {}, "ref": "x"})
        assert (await recv_until(calm, lambda f: f["ref"] == "x"))["payload"]["status"] == "ok"
        reasons = [(await recv(noisy))["payload"]["response"]["reason"] for _ in range(150)]
        assert reasons.count("malformed message: not JSON") >= 100
        assert any(r.startswith("ClientRateLimitReached") for r in reasons)
        await asyncio.sleep(1.1)  # a new second, a new budget
        await send(noisy, {"event": "heartbeat", "topic": "phoenix", "payload": {}, "ref": "y"})
        assert (await recv_until(noisy, lambda f: f["ref"] == "y"))["payload"]["status"] == "ok"
