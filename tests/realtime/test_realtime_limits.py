"""Caps per user and per tenant (channels, bindings, sockets, joins and events per second),
answered with supabase/realtime's reasons; on a server of our own with small caps."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websockets
from harness import ServerProcess
from v2_helpers import join, recv_until, user_broadcast_push, v2_url

CAPS = {
    "PB_REALTIME_MAX_CHANNELS_PER_USER": "2",
    "PB_REALTIME_MAX_BINDINGS_PER_USER": "3",
    "PB_REALTIME_MAX_SOCKETS_PER_TENANT": "2",
    "PB_REALTIME_MAX_JOINS_PER_SECOND": "10",
    "PB_REALTIME_MAX_EVENTS_PER_SECOND": "5",
}
PRODUCTS = {"event": "*", "schema": "public", "table": "products"}


@pytest.fixture(scope="module")
def capped(owner_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        owner_dsn,
        tmp_path_factory.mktemp("realtime-capped"),
        env_overrides={"PB_AUTHENTICATOR_PASSWORD": "test-authenticator", **CAPS},
    )
    proc.start()
    yield proc
    proc.stop()


def reason(reply: list[Any]) -> str | None:
    if reply[4]["status"] == "ok":
        return None
    text: str = reply[4]["response"]["reason"]
    return text


async def test_channels_per_user_count_across_sockets(
    capped: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a, b = make_user(), make_user()
    async with (
        websockets.connect(v2_url(capped)) as one,
        websockets.connect(v2_url(capped)) as two,
    ):
        assert reason(await join(one, "realtime:a", "1", token=a.access_token)) is None
        assert reason(await join(two, "realtime:b", "1", token=a.access_token)) is None
        assert (
            reason(await join(two, "realtime:c", "2", token=a.access_token))
            == "ChannelRateLimitReached: Too many channels"
        )
        # Another tenant has caps of its own.
        assert reason(await join(two, "realtime:c", "3", token=b.access_token)) is None
        # Leaving gives the channel back.
        await one.send(json.dumps(["1", "4", "realtime:a", "phx_leave", {}]))
        await recv_until(one, lambda f: isinstance(f, list) and f[1] == "4")
        assert reason(await join(one, "realtime:d", "5", token=a.access_token)) is None


async def test_bindings_per_user(capped: ServerProcess, make_user: Callable[..., Any]) -> None:
    a = make_user()
    async with websockets.connect(v2_url(capped)) as ws:
        assert (
            reason(await join(ws, "realtime:a", "1", token=a.access_token, bindings=[PRODUCTS] * 2))
            is None
        )
        assert (
            reason(await join(ws, "realtime:b", "2", token=a.access_token, bindings=[PRODUCTS] * 2))
            == "ChannelRateLimitReached: Too many postgres_changes bindings"
        )


async def test_sockets_per_tenant(capped: ServerProcess, make_user: Callable[..., Any]) -> None:
    a = make_user()
    async with (
        websockets.connect(v2_url(capped)) as one,
        websockets.connect(v2_url(capped)) as two,
        websockets.connect(v2_url(capped)) as three,
    ):
        assert reason(await join(one, "realtime:a", "1", token=a.access_token)) is None
        assert reason(await join(two, "realtime:b", "1", token=a.access_token)) is None
        assert (
            reason(await join(three, "realtime:c", "1", token=a.access_token))
            == "ConnectionRateLimitReached: Too many connected users"
        )


async def test_joins_per_second(capped: ServerProcess, make_user: Callable[..., Any]) -> None:
    a = make_user()
    async with websockets.connect(v2_url(capped)) as ws:
        reasons = [
            reason(await join(ws, "realtime:a", str(i), token=a.access_token)) for i in range(15)
        ]
        assert reasons[:10] == [None] * 10
        assert "ClientJoinRateLimitReached: Too many joins per second" in reasons[10:]
        await asyncio.sleep(1.1)  # a new second, a new budget
        assert reason(await join(ws, "realtime:a", "99", token=a.access_token)) is None


async def test_events_per_second_close_the_channel(
    capped: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a = make_user()
    async with websockets.connect(v2_url(capped)) as ws:
        await join(ws, "realtime:a", "1", token=a.access_token)
        for _ in range(6):
            await ws.send(user_broadcast_push("realtime:a", "tick", b"{}"))
        system = await recv_until(ws, lambda f: isinstance(f, list) and f[3] == "system")
        assert isinstance(system, list)
        assert system[4]["status"] == "error"
        assert system[4]["message"] == "Too many messages per second"
        closed = await recv_until(ws, lambda f: isinstance(f, list) and f[3] == "phx_close")
        assert closed == ["1", None, "realtime:a", "phx_close", {}]


async def test_anon_channel_caps_hold_per_socket(capped: ServerProcess) -> None:
    # Anon has no user: its channel cap is per socket, or one kiosk would starve the others.
    async with (
        websockets.connect(v2_url(capped)) as one,
        websockets.connect(v2_url(capped)) as two,
    ):
        for ws in (one, two):
            assert reason(await join(ws, "realtime:a", "1")) is None
            assert reason(await join(ws, "realtime:b", "2")) is None
        assert reason(await join(two, "realtime:c", "3")) == (
            "ChannelRateLimitReached: Too many channels"
        )
