"""Realtime across process boundaries: a server restart, a second server process, and a
dropped listener connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest
from harness import ServerProcess
from rt_helpers import Inbox, add_product, change, signed_in
from supabase import AsyncClient

from pocketbizz.db.notifications import APPLICATION_NAME


@pytest.fixture(scope="module")
def own_server(owner_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of our own on the shared database, free to restart."""
    proc = ServerProcess(
        owner_dsn,
        tmp_path_factory.mktemp("realtime-data"),
        env_overrides={"PB_AUTHENTICATOR_PASSWORD": "test-authenticator"},
    )
    proc.start()
    yield proc
    proc.stop()


async def subscribe_products(client: AsyncClient, inbox: Inbox) -> Any:
    channel = client.channel("restart")
    channel.on_postgres_changes("*", inbox, table="products", schema="public")
    await channel.subscribe()
    return channel


async def arrives_again(pool: asyncpg.Pool, user_id: str, inbox: Inbox, within: float) -> bool:
    """Write until a change arrives: delivery resumes once the subscriber is back."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        product_id = await add_product(pool, user_id)
        try:
            await inbox.wait_for(lambda i, p=product_id: change(i, "INSERT", "products", p))
            return True
        except AssertionError:
            continue
    return False


async def test_the_client_reconnects_after_a_server_restart(
    own_server: ServerProcess,
    make_user: Callable[..., Any],
    owner_pool: asyncpg.Pool,
    clients: list[AsyncClient],
) -> None:
    a = make_user()
    client = await signed_in(own_server, a.email, a.password)
    clients.append(client)
    inbox = Inbox()
    channel = await subscribe_products(client, inbox)
    assert await arrives_again(owner_pool, a.id, inbox, within=2)

    await asyncio.to_thread(own_server.restart)
    assert await arrives_again(owner_pool, a.id, inbox, within=20)
    assert channel.is_joined


async def test_two_processes_share_changes_and_broadcasts(
    own_server: ServerProcess,
    server: ServerProcess,
    make_user: Callable[..., Any],
    owner_pool: asyncpg.Pool,
    clients: list[AsyncClient],
) -> None:
    a = make_user()
    here = await signed_in(server, a.email, a.password)
    there = await signed_in(own_server, a.email, a.password)
    clients.extend([here, there])
    changes_here, changes_there, heard_there = Inbox(), Inbox(), Inbox()
    await subscribe_products(here, changes_here)
    await subscribe_products(there, changes_there)
    room_here = here.channel("counter")
    await room_here.subscribe()
    room_there = there.channel("counter")
    room_there.on_broadcast("drawer", heard_there)
    await room_there.subscribe()

    product_id = await add_product(owner_pool, a.id)
    for inbox in (changes_here, changes_there):
        await inbox.wait_for(lambda i: change(i, "INSERT", "products", product_id))

    await room_here.send_broadcast("drawer", {"open": True})
    got = await heard_there.wait_for(lambda p: p["event"] == "drawer")
    assert got["payload"] == {"open": True}


async def test_delivery_resumes_after_the_listener_connection_drops(
    server: ServerProcess,
    make_user: Callable[..., Any],
    owner_pool: asyncpg.Pool,
    clients: list[AsyncClient],
) -> None:
    a = make_user()
    client = await signed_in(server, a.email, a.password)
    clients.append(client)
    inbox = Inbox()
    await subscribe_products(client, inbox)
    assert await arrives_again(owner_pool, a.id, inbox, within=2)

    async with owner_pool.acquire() as conn:
        killed = await conn.fetchval(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity"
            " where application_name = $1",
            APPLICATION_NAME,
        )
    assert killed >= 1
    assert await arrives_again(owner_pool, a.id, inbox, within=10)
