"""Channel identity over time: expiring tokens, token updates, and broadcasts per tenant."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
import websockets
from harness import ServerProcess
from realtime import RealtimeAcknowledgementStatus, RealtimeSubscribeStates
from rt_helpers import Inbox, add_product, committed_as, signed_in, socket_url, user_token
from supabase import AsyncClient, acreate_client
from websockets.asyncio.client import ClientConnection

FLOOD = 3000
PRODUCTS = [{"event": "*", "schema": "public", "table": "products"}]


async def join(ws: ClientConnection, topic: str, token: str, ref: str = "1") -> dict[str, Any]:
    await ws.send(
        json.dumps(
            {
                "event": "phx_join",
                "topic": topic,
                "ref": ref,
                "join_ref": ref,
                "payload": {"config": {"postgres_changes": PRODUCTS}, "access_token": token},
            }
        )
    )
    return await next_frame(ws, lambda f: f["event"] == "phx_reply" and f["ref"] == ref)


async def next_frame(
    ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool], within: float = 2.0
) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if predicate(frame):
                return frame


async def frames_for(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                seen.append(json.loads(await ws.recv()))
    except TimeoutError:
        return seen


def is_change_of(product_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: (
        f["event"] == "postgres_changes" and f["payload"]["data"]["record"]["id"] == product_id
    )


async def test_an_expired_token_closes_the_channel_and_stops_delivery(
    server: ServerProcess, make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    a = make_user()
    async with websockets.connect(socket_url(server)) as ws:
        reply = await join(ws, "realtime:expiring", user_token(a.id, ttl=2))
        assert reply["payload"]["status"] == "ok"
        product_id = await add_product(owner_pool, a.id)
        await next_frame(ws, is_change_of(product_id))

        error = await next_frame(ws, lambda f: f["event"] == "system", within=5)
        assert error["ref"] is None
        assert error["payload"]["status"] == "error"
        assert "expired" in error["payload"]["message"]
        closed = await next_frame(ws, lambda f: f["event"] == "phx_close")
        assert closed["topic"] == "realtime:expiring"

        await add_product(owner_pool, a.id)
        assert not [f for f in await frames_for(ws, 1.0) if f["event"] == "postgres_changes"]

        # Rejoining with the expired token is refused; the socket itself lives on.
        reply = await join(ws, "realtime:expiring", user_token(a.id, ttl=-60), ref="2")
        assert reply["payload"] == {"status": "error", "response": {"reason": "Token has expired"}}
        await ws.send(
            json.dumps({"event": "heartbeat", "topic": "phoenix", "payload": {}, "ref": "hb"})
        )
        await next_frame(ws, lambda f: f["ref"] == "hb")


async def test_access_token_update_switches_the_identity(
    server: ServerProcess, make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    a, b = make_user(), make_user()
    async with websockets.connect(socket_url(server)) as ws:
        assert (await join(ws, "realtime:switch", a.access_token))["payload"]["status"] == "ok"
        await ws.send(
            json.dumps(
                {
                    "event": "access_token",
                    "topic": "realtime:switch",
                    "payload": {"access_token": b.access_token},
                    "ref": "2",
                    "join_ref": "1",
                }
            )
        )
        await next_frame(ws, lambda f: f["ref"] == "2" and f["payload"]["status"] == "ok")
        a_product = await add_product(owner_pool, a.id)
        b_product = await add_product(owner_pool, b.id)
        await next_frame(ws, is_change_of(b_product))
        assert not [f for f in await frames_for(ws, 0.5) if is_change_of(a_product)(f)]

        # A bad token in an update closes the channel with an error frame.
        await ws.send(
            json.dumps(
                {
                    "event": "access_token",
                    "topic": "realtime:switch",
                    "payload": {"access_token": "x.y.z"},
                    "ref": "3",
                }
            )
        )
        error = await next_frame(ws, lambda f: f["event"] == "system")
        assert error["payload"]["status"] == "error"
        await next_frame(ws, lambda f: f["event"] == "phx_close")
        await add_product(owner_pool, b.id)
        assert not [f for f in await frames_for(ws, 0.5) if f["event"] == "postgres_changes"]


async def test_broadcast_reaches_the_tenant_only(
    server: ServerProcess, make_user: Callable[..., Any], clients: list[AsyncClient]
) -> None:
    a, b = make_user(), make_user()
    sender = await signed_in(server, a.email, a.password)
    peer = await signed_in(server, a.email, a.password)
    outsider = await signed_in(server, b.email, b.password)
    clients.extend([sender, peer, outsider])

    inboxes = {name: Inbox() for name in ("sender", "peer", "outsider")}
    channels = {}
    for name, client in (("sender", sender), ("peer", peer), ("outsider", outsider)):
        channel = client.channel("till")
        channel.on_broadcast("sale", inboxes[name])
        await channel.subscribe()
        channels[name] = channel

    await channels["sender"].send_broadcast("sale", {"total": "12.50"})
    got = await inboxes["peer"].wait_for(lambda p: p["event"] == "sale")
    assert got["payload"] == {"total": "12.50"}
    await asyncio.sleep(0.3)
    assert inboxes["sender"].items == []  # `self` is off by default
    assert inboxes["outsider"].items == []  # same topic name, other tenant

    # Over HTTP (`http_send`), to the caller's tenant as well.
    await channels["sender"].http_send("sale", {"total": "3.00"})
    got = await inboxes["peer"].wait_for(lambda p: p["payload"] == {"total": "3.00"})
    assert got["event"] == "sale"
    await asyncio.sleep(0.3)
    assert inboxes["outsider"].items == []

    # With self and ack on, the sender hears itself and gets its acknowledgement.
    echo = Inbox()
    own = sender.channel(
        "till-self",
        {
            "config": {
                "broadcast": {"self": True, "ack": True},
                "presence": {"key": "", "enabled": False},
                "private": False,
            }
        },
    )
    own.on_broadcast("*", echo)
    await own.subscribe()
    acked = asyncio.get_running_loop().create_future()
    push = await own.push("broadcast", {"type": "broadcast", "event": "ping", "payload": {}})
    push.receive(RealtimeAcknowledgementStatus.Ok, lambda _r: acked.set_result(True))
    await echo.wait_for(lambda p: p["event"] == "ping")
    assert await asyncio.wait_for(acked, 2)


async def test_the_official_client_sees_the_expiry_as_a_channel_error(
    server: ServerProcess, make_user: Callable[..., Any], clients: list[AsyncClient]
) -> None:
    a = make_user()
    client = await acreate_client(server.url, server.anon_key)
    clients.append(client)
    await client.realtime.set_auth(user_token(a.id, ttl=2))
    states: list[RealtimeSubscribeStates] = []
    closed = asyncio.Event()

    def on_state(state: RealtimeSubscribeStates, _err: Exception | None) -> None:
        states.append(state)
        if state == RealtimeSubscribeStates.CLOSED:
            closed.set()

    channel = client.channel("short-lived")
    channel.on_postgres_changes("*", Inbox(), table="products", schema="public")
    await channel.subscribe(on_state)
    assert states == [RealtimeSubscribeStates.SUBSCRIBED]
    await asyncio.wait_for(closed.wait(), 5)
    assert RealtimeSubscribeStates.CHANNEL_ERROR in states
    assert not channel.is_joined


async def test_a_socket_too_slow_to_read_is_closed_and_others_keep_up(
    server: ServerProcess, make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    a = make_user()
    customers = [{"event": "INSERT", "schema": "public", "table": "customers"}]
    async with (
        websockets.connect(socket_url(server), max_queue=4) as slow,
        websockets.connect(socket_url(server)) as calm,
    ):
        for ws in (slow, calm):
            await ws.send(
                json.dumps(
                    {
                        "event": "phx_join",
                        "topic": "realtime:flood",
                        "ref": "1",
                        "payload": {
                            "config": {"postgres_changes": customers},
                            "access_token": a.access_token,
                        },
                    }
                )
            )
            await next_frame(ws, lambda f: f["ref"] == "1")
        # Thousands of changes of ~5 kB of incompressible text: far more than the slow
        # socket's kernel buffers and its outbox on the server hold.
        async with committed_as(owner_pool, a.id) as conn:
            await conn.execute(
                "insert into public.customers (name, notes)"
                " select 'Pelanggan ' || n, (select string_agg(md5(n || '-' || g), '')"
                "                            from generate_series(1, 150) g)"
                " from generate_series(1, $1::int) n",
                FLOOD,
            )
        received = 0
        async with asyncio.timeout(30):
            while received < FLOOD:
                frame = json.loads(await calm.recv())
                received += frame["event"] == "postgres_changes"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await slow.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
