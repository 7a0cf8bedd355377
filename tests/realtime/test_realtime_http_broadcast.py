"""Broadcasts over HTTP: `httpSend` (JSON or bytes, `?private=true`) and the batch endpoint the
JS client falls back to before a channel is joined; anon on public channels, as sockets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import websockets
from harness import ServerProcess
from v2_helpers import join, nothing_arrives, read_user_broadcast, recv, v2_url


def headers(server: ServerProcess, token: str | None = None, **extra: str) -> dict[str, str]:
    out = {"apikey": server.anon_key, **extra}
    if token is not None:
        out["Authorization"] = f"Bearer {token}"
    return out


async def test_http_send_json_and_bytes_to_a_tenant_channel(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a, b = make_user(), make_user()
    async with (
        websockets.connect(v2_url(server)) as till,
        websockets.connect(v2_url(server)) as other,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        await join(till, "realtime:till", "1", token=a.access_token)
        await join(other, "realtime:till", "1", token=b.access_token)
        res = await http.post(
            "/realtime/v1/api/broadcast/till/events/sale",
            json={"total": 3},
            headers=headers(server, a.access_token),
        )
        assert res.status_code == 202
        got = await recv(till)
        assert got == [
            None,
            None,
            "realtime:till",
            "broadcast",
            {"type": "broadcast", "event": "sale", "payload": {"total": 3}},
        ]
        res = await http.post(
            "/realtime/v1/api/broadcast/till/events/receipt",
            content=b"\x00\x01\xff",
            headers=headers(server, a.access_token, **{"Content-Type": "application/octet-stream"}),
        )
        assert res.status_code == 202
        raw = await recv(till)
        assert isinstance(raw, bytes)
        message = read_user_broadcast(raw)
        assert (message.event, message.json_payload, message.payload) == (
            "receipt",
            False,
            b"\x00\x01\xff",
        )
        assert await nothing_arrives(other) == []


async def test_anon_http_broadcast_reaches_anon_sockets_only(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a = make_user()
    async with (
        websockets.connect(v2_url(server)) as anon,
        websockets.connect(v2_url(server)) as tenant,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        await join(anon, "realtime:lobby", "1")
        await join(tenant, "realtime:lobby", "1", token=a.access_token)
        res = await http.post(
            "/realtime/v1/api/broadcast/lobby/events/hello", json={}, headers=headers(server)
        )
        assert res.status_code == 202
        got = await recv(anon)
        assert isinstance(got, list) and got[4]["event"] == "hello"
        assert await nothing_arrives(tenant) == []


async def test_private_http_broadcasts_follow_the_policies(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a, b = make_user(), make_user()
    topic = f"{a.id}:orders"
    async with (
        websockets.connect(v2_url(server)) as own,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        await join(own, f"realtime:{topic}", "1", token=a.access_token, private=True)
        url = f"/realtime/v1/api/broadcast/{topic}/events/order?private=true"
        res = await http.post(url, json={"n": 1}, headers=headers(server, b.access_token))
        assert res.status_code == 403
        assert topic in res.json()["message"]
        res = await http.post(url, json={"n": 2}, headers=headers(server, a.access_token))
        assert res.status_code == 202
        got = await recv(own)
        assert isinstance(got, list) and got[4]["payload"] == {"n": 2}


async def test_the_batch_endpoint_sends_each_message_it_may(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a, b = make_user(), make_user()
    private_topic = f"{b.id}:orders"  # not a's: its policies leave this one out
    async with (
        websockets.connect(v2_url(server)) as till,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        await join(till, "realtime:till", "1", token=a.access_token)
        body = {
            "messages": [
                {"topic": private_topic, "event": "x", "payload": {}, "private": True},
                {"topic": "till", "event": "sale", "payload": {"total": 9}, "private": False},
            ]
        }
        res = await http.post(
            "/realtime/v1/api/broadcast",
            content=orjson.dumps(body),
            headers=headers(server, a.access_token),
        )
        assert res.status_code == 202
        got = await recv(till)
        assert isinstance(got, list) and got[4]["payload"] == {"total": 9}
        res = await http.post(
            "/realtime/v1/api/broadcast", json={"messages": [{"topic": 1}]}, headers=headers(server)
        )
        assert res.status_code == 400
