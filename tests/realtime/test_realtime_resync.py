"""Channels are told to rejoin when changes may have gone unannounced (the listener lost its
connection, or the registrations lapsed), and the registry writes on a connection of its own
(never queued behind requests); a revoked token is refused at join and at token update."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import websockets
from harness import ServerProcess
from rt_helpers import Inbox, registrations
from v2_helpers import join, recv_until, v2_url

from pocketbizz.db import Database
from pocketbizz.db.notifications import APPLICATION_NAME as LISTENER_APP
from pocketbizz.realtime.registry import APPLICATION_NAME as REGISTRY_APP
from pocketbizz.realtime.registry import REGISTRATIONS_LAPSED, Registry

PRODUCTS = {"event": "*", "schema": "public", "table": "products"}


async def test_a_lost_listener_makes_joined_channels_rejoin(
    server: ServerProcess, make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    a = make_user()
    async with websockets.connect(v2_url(server)) as ws:
        await join(ws, "realtime:till", "1", token=a.access_token, bindings=[PRODUCTS])
        async with owner_pool.acquire() as conn:
            await conn.fetchval(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity"
                " where application_name = $1",
                LISTENER_APP,
            )
        system = await recv_until(
            ws, lambda f: isinstance(f, list) and f[3] == "system" and f[4]["status"] == "error", 10
        )
        assert isinstance(system, list) and system[4]["extension"] == "system"
        # phx_error, as for a crashed Phoenix channel: the JS and Dart clients rejoin on it.
        error = await recv_until(ws, lambda f: isinstance(f, list) and f[3] == "phx_error")
        assert error == ["1", None, "realtime:till", "phx_error", {}]
        # The rejoin is served as usual.
        reply = await join(ws, "realtime:till", "2", token=a.access_token, bindings=[PRODUCTS])
        assert reply[4]["status"] == "ok"


async def test_the_registry_has_its_own_connection(
    server: ServerProcess, make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    a = make_user()
    async with websockets.connect(v2_url(server)) as ws:
        await join(ws, "realtime:till", "1", token=a.access_token, bindings=[PRODUCTS])
        async with owner_pool.acquire() as conn:
            users = await conn.fetch(
                "select usename from pg_stat_activity where application_name = $1",
                REGISTRY_APP,
            )
        # Other test servers may share this database: each registry connection, whoever owns
        # it, must log in as `authenticator`, and this server's must be among them.
        assert users and {r["usename"] for r in users} == {"authenticator"}


async def test_joins_register_again_after_the_registry_connection_drops(
    server: ServerProcess, make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    a, b = make_user(), make_user()
    async with websockets.connect(v2_url(server)) as ws:
        await join(ws, "realtime:till", "1", token=a.access_token, bindings=[PRODUCTS])
        async with owner_pool.acquire() as conn:
            killed = await conn.fetchval(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity"
                " where application_name = $1",
                REGISTRY_APP,
            )
        assert killed >= 1
        reply = await join(ws, "realtime:till", "2", token=b.access_token, bindings=[PRODUCTS])
        assert reply[4]["status"] == "ok"
        assert await registrations(owner_pool, b.id) == {"products": 1}


async def test_a_lapse_of_the_registrations_is_reported(
    owner_dsn: str, make_user: Callable[..., Any]
) -> None:
    a = make_user()
    db = Database(owner_dsn, user="authenticator", password="test-authenticator", min_size=1)
    await db.open()
    registry = Registry(db, refresh_seconds=60, ttl_seconds=2)
    lapses = Inbox()
    registry.on_lapse = lambda reason: lapses({"reason": reason})
    try:
        await registry.acquire({(a.id, "products")})
        await registry.refresh()
        assert lapses.items == []  # refreshed in time: nothing to report
        # As after a database outage longer than the ttl: the rows may have expired meanwhile.
        registry._last_refresh = time.monotonic() - 3
        await registry.refresh()
        assert lapses.items == [{"reason": REGISTRATIONS_LAPSED}]
    finally:
        await registry.stop()
        await db.close()


async def test_a_revoked_token_is_refused_at_join_and_at_token_update(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a = make_user()
    token = a.access_token
    async with websockets.connect(v2_url(server)) as ws:
        assert (await join(ws, "realtime:till", "1", token=token))[4]["status"] == "ok"
        a.client.auth.sign_out()  # ends the session the token belongs to
        reply = await join(ws, "realtime:other", "2", token=token)
        assert reply[4] == {
            "status": "error",
            "response": {"reason": "Invalid token: the session has ended"},
        }
        await ws.send(
            json.dumps(["1", "3", "realtime:till", "access_token", {"access_token": token}])
        )
        system = await recv_until(ws, lambda f: isinstance(f, list) and f[3] == "system")
        assert isinstance(system, list) and system[4]["status"] == "error"
        assert system[4]["message"] == "Invalid token: the session has ended"
        closed = await recv_until(ws, lambda f: isinstance(f, list) and f[3] == "phx_close")
        assert closed == ["1", None, "realtime:till", "phx_close", {}]
