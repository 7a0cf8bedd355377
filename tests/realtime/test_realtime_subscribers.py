"""Changes are announced only while some server process has a live subscription that could
receive them (pb_internal.realtime_subscribers, migration 0007).

NOTIFY is observed by LISTENing as the owner on a test connection: notifications reach a
listener in commit order, so once a later commit's notification has arrived, an earlier one
that was going to arrive would have arrived already.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
import websockets
from harness import ServerProcess
from realtime import RealtimeSubscribeStates
from rt_helpers import (
    Inbox,
    add_product,
    change,
    committed_as,
    reading_as,
    registered,
    registrations,
    signed_in,
    socket_url,
    user_token,
)
from supabase import AsyncClient, acreate_client
from websockets.asyncio.client import ClientConnection

from pocketbizz.db import Database, Identity
from pocketbizz.db.database import ANON, SERVICE
from pocketbizz.realtime.registry import ALL_TENANTS, Registry, entries_for

ALL_TABLES = {
    "business_profiles",
    "customers",
    "products",
    "sales",
    "sale_items",
    "stock_movements",
}
AUTHENTICATOR_PASSWORD = "test-authenticator"  # as tests/conftest.py sets it


def notes_of(notes: Inbox, owner_id: str) -> list[dict[str, Any]]:
    return [n for n in notes.items if n["o"] == owner_id]


async def send(ws: ClientConnection, frame: dict[str, Any]) -> None:
    await ws.send(json.dumps(frame))


async def reply_to(ws: ClientConnection, ref: str, within: float = 2.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["event"] == "phx_reply" and frame["ref"] == ref:
                return frame


async def join(
    ws: ClientConnection,
    topic: str,
    ref: str,
    bindings: list[dict[str, Any]],
    token: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"config": {"postgres_changes": bindings}}
    if token is not None:
        payload["access_token"] = token
    await send(ws, {"event": "phx_join", "topic": topic, "ref": ref, "payload": payload})
    reply = await reply_to(ws, ref)
    assert reply["payload"]["status"] == "ok", reply
    return reply


async def leave(ws: ClientConnection, topic: str, ref: str) -> None:
    await send(ws, {"event": "phx_leave", "topic": topic, "ref": ref, "payload": {}})
    assert (await reply_to(ws, ref))["payload"]["status"] == "ok"


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def table(name: str) -> list[dict[str, Any]]:
    return [{"event": "*", "schema": "public", "table": name}]


async def test_only_changes_someone_subscribed_to_are_announced(
    server: ServerProcess,
    make_user: Callable[..., Any],
    owner_pool: asyncpg.Pool,
    notes: Inbox,
    clients: list[AsyncClient],
) -> None:
    quiet, watched = make_user(), make_user()
    client = await signed_in(server, watched.email, watched.password)
    clients.append(client)
    inbox = Inbox()
    channel = client.channel("watched-products")
    channel.on_postgres_changes("*", inbox, table="products", schema="public")
    await channel.subscribe()

    # Nobody listens for `quiet`: inserts, updates, deletes and a whole sale through the
    # SECURITY DEFINER functions announce nothing.
    product_id = await add_product(owner_pool, quiet.id)
    async with committed_as(owner_pool, quiet.id) as conn:
        await conn.execute("update public.products set name = 'Teh ais' where id = $1", product_id)
        await conn.execute(
            "select public.record_purchase(product_id => $1, quantity => 10, unit_cost => 1)",
            product_id,
        )
        await conn.execute(
            "select public.create_sale(items => $1::jsonb)",
            json.dumps([{"product_id": product_id, "quantity": 2}]),
        )
    spare = await add_product(owner_pool, quiet.id)
    async with committed_as(owner_pool, quiet.id) as conn:
        await conn.execute("delete from public.products where id = $1", spare)

    # `watched` has a subscriber for products only: its product is announced (and delivered),
    # its customer is not announced.
    async with committed_as(owner_pool, watched.id) as conn:
        await conn.execute("insert into public.customers (name) values ('Pelanggan')")
    mine = await add_product(owner_pool, watched.id)
    await notes.wait_for(lambda n: n["k"].get("id") == mine, within=2)
    await inbox.wait_for(lambda i: change(i, "INSERT", "products", mine), within=2)
    assert notes_of(notes, quiet.id) == []
    assert [n["t"] for n in notes_of(notes, watched.id)] == ["products"]


async def test_registration_is_in_place_when_the_join_is_answered(
    server: ServerProcess, make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    a = make_user()
    async with websockets.connect(socket_url(server)) as ws:
        await join(ws, "realtime:first", "1", table("products"), a.access_token)
        # No waiting: the reply came after the registration committed.
        assert await registrations(owner_pool, a.id) == {"products": 1}
        product_id = await add_product(owner_pool, a.id)
        async with asyncio.timeout(2):
            while True:
                frame = json.loads(await ws.recv())
                if frame["event"] == "postgres_changes":
                    assert frame["payload"]["data"]["record"]["id"] == product_id
                    break

        # A binding on every table of the schema registers all six realtime tables.
        every_table = [{"event": "INSERT", "schema": "public"}]
        await join(ws, "realtime:anon", "2", every_table)  # the socket's anon key: nothing
        assert await registrations(owner_pool, a.id) == {"products": 1}
        await join(ws, "realtime:all", "3", every_table, a.access_token)
        # One row per table and server, however many channels share it.
        assert await registrations(owner_pool, a.id) == dict.fromkeys(ALL_TABLES, 1)


async def test_the_official_client_gets_a_change_committed_right_after_subscribing(
    server: ServerProcess,
    make_user: Callable[..., Any],
    owner_pool: asyncpg.Pool,
    clients: list[AsyncClient],
) -> None:
    a = make_user()
    for attempt in range(3):
        client = await signed_in(server, a.email, a.password)
        clients.append(client)
        inbox = Inbox()
        channel = client.channel(f"right-away-{attempt}")
        channel.on_postgres_changes("INSERT", inbox, table="customers", schema="public")
        states: list[RealtimeSubscribeStates] = []
        await channel.subscribe(lambda state, _err, states=states: states.append(state))
        assert states == [RealtimeSubscribeStates.SUBSCRIBED]
        async with committed_as(owner_pool, a.id) as conn:
            customer_id = str(
                await conn.fetchval("insert into public.customers (name) values ('C') returning id")
            )
        await inbox.wait_for(lambda i, c=customer_id: change(i, "INSERT", "customers", c))
        await client.realtime.close()
        clients.remove(client)
        await eventually(lambda: _none_left(owner_pool, a.id))


async def _none_left(pool: asyncpg.Pool, owner_id: str) -> bool:
    return await registrations(pool, owner_id) == {}


async def test_service_role_registers_for_every_tenant_and_anon_for_none(
    server: ServerProcess, make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    a = make_user()
    async with websockets.connect(socket_url(server, server.service_key)) as ws:
        await join(ws, "realtime:ops", "1", table("sales"))
        assert (await registrations(owner_pool, ALL_TENANTS)).get("sales", 0) >= 1
        # Any tenant's sale is now announced, and delivered to the service channel.
        product_id = await add_product(owner_pool, a.id)
        async with committed_as(owner_pool, a.id) as conn:
            await conn.execute(
                "select public.record_purchase(product_id => $1, quantity => 5, unit_cost => 1)",
                product_id,
            )
            sale = await conn.fetchval(
                "select public.create_sale(items => $1::jsonb)::text",
                json.dumps([{"product_id": product_id, "quantity": 1}]),
            )
        sale_id = json.loads(sale)["id"]
        async with asyncio.timeout(2):
            while True:
                frame = json.loads(await ws.recv())
                if frame["event"] == "postgres_changes":
                    assert frame["payload"]["data"]["table"] == "sales"
                    if frame["payload"]["data"]["record"]["id"] == sale_id:
                        break

    # An anon channel can receive no row, so it registers nothing.
    assert entries_for(ANON, ALL_TABLES) == frozenset()
    assert entries_for(SERVICE, ["sales"]) == {(ALL_TENANTS, "sales")}
    no_uuid = Identity("authenticated", {"role": "authenticated", "sub": "not-a-uuid"})
    assert entries_for(no_uuid, ["sales"]) == frozenset()
    async with websockets.connect(socket_url(server)) as ws:
        await join(ws, "realtime:public", "1", table("products"))


async def test_leave_close_and_token_change_unregister(
    server: ServerProcess, make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    a, b = make_user(), make_user()

    async def gone(owner_id: str) -> bool:
        return await registrations(owner_pool, owner_id) == {}

    async with websockets.connect(socket_url(server)) as ws:
        # Two channels share a registration; it goes when the last one leaves.
        await join(ws, "realtime:one", "1", table("products"), a.access_token)
        await join(ws, "realtime:two", "2", table("products"), a.access_token)
        assert await registrations(owner_pool, a.id) == {"products": 1}
        await leave(ws, "realtime:one", "3")
        await asyncio.sleep(0.3)
        assert await registrations(owner_pool, a.id) == {"products": 1}
        await leave(ws, "realtime:two", "4")
        await eventually(lambda: gone(a.id))

        # A refreshed token of the same user keeps the registration; a token for another
        # tenant moves it to that tenant.
        await join(ws, "realtime:switch", "5", table("customers"), a.access_token)
        await send(
            ws,
            {
                "event": "access_token",
                "topic": "realtime:switch",
                "ref": "5b",
                "payload": {"access_token": user_token(a.id, ttl=3600)},
            },
        )
        assert (await reply_to(ws, "5b"))["payload"]["status"] == "ok"
        await asyncio.sleep(0.3)
        assert await registrations(owner_pool, a.id) == {"customers": 1}
        await send(
            ws,
            {
                "event": "access_token",
                "topic": "realtime:switch",
                "ref": "6",
                "payload": {"access_token": b.access_token},
            },
        )
        assert (await reply_to(ws, "6"))["payload"]["status"] == "ok"
        assert await registrations(owner_pool, b.id) == {"customers": 1}
        await eventually(lambda: gone(a.id))

        # Joining the same topic again replaces the channel and its registration.
        await join(ws, "realtime:switch", "7", table("sales"), b.access_token)
        assert (await registrations(owner_pool, b.id)).get("sales") == 1
        await eventually(
            lambda: _equals(registrations(owner_pool, b.id), {"sales": 1}),
        )

    # Closing the socket unregisters everything it had.
    await eventually(lambda: gone(b.id))


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


async def test_expired_registrations_announce_nothing(
    make_user: Callable[..., Any], owner_pool: asyncpg.Pool, notes: Inbox
) -> None:
    crashed, alive = make_user(), make_user()
    async with (
        registered(owner_pool, crashed.id, ["products"], ttl=-1),
        registered(owner_pool, alive.id, ["products"]),
    ):
        await add_product(owner_pool, crashed.id)
        marker = await add_product(owner_pool, alive.id)
        await notes.wait_for(lambda n: n["k"].get("id") == marker, within=2)
        assert notes_of(notes, crashed.id) == []

        # The same tenant with a live registration is announced again.
        async with registered(owner_pool, crashed.id, ["products"]):
            again = await add_product(owner_pool, crashed.id)
            await notes.wait_for(lambda n: n["k"].get("id") == again, within=2)


async def test_only_the_server_login_role_touches_registrations(
    owner_dsn: str, make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    a = make_user()
    server_id = str(uuid.uuid4())
    entries = json.dumps([{"o": a.id, "t": "products"}])
    for role, user in (("anon", None), ("authenticated", a.id), ("service_role", None)):
        for sql, args in (
            ("select count(*) from pb_internal.realtime_subscribers", ()),
            ("select pb_internal.realtime_register($1, $2::jsonb, 60)", (server_id, entries)),
            ("select pb_internal.realtime_unregister($1, null)", (server_id,)),
            ("select pb_internal.realtime_sweep()", ()),
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with reading_as(owner_pool, role, user) as conn:
                    await conn.execute(sql, *args)

    conn = await asyncpg.connect(owner_dsn, user="authenticator", password=AUTHENTICATOR_PASSWORD)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("select count(*) from pb_internal.realtime_subscribers")
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await conn.execute(
                "select pb_internal.realtime_register($1, $2::jsonb, 0)", server_id, entries
            )
        async with registered(owner_pool, a.id, ["customers"], ttl=-1) as crashed_server:
            await conn.execute(
                "select pb_internal.realtime_register($1, $2::jsonb, 60)", server_id, entries
            )
            assert await registrations(owner_pool, a.id) == {"products": 1}
            # A sweep removes the rows of a server that stopped refreshing them.
            await conn.execute("select pb_internal.realtime_sweep()")
            async with owner_pool.acquire() as owner:
                assert not await owner.fetchval(
                    "select count(*) from pb_internal.realtime_subscribers"
                    " where server_id = $1::uuid",
                    crashed_server,
                )
        await conn.execute("select pb_internal.realtime_unregister($1, null)", server_id)
        assert await registrations(owner_pool, a.id) == {}
    finally:
        await conn.close()


async def test_the_registry_refreshes_while_alive_and_unregisters_on_stop(
    owner_dsn: str, make_user: Callable[..., Any], owner_pool: asyncpg.Pool, notes: Inbox
) -> None:
    a = make_user()
    db = Database(owner_dsn, user="authenticator", password=AUTHENTICATOR_PASSWORD, min_size=1)
    await db.open()
    registry = Registry(db, refresh_seconds=0.5, ttl_seconds=2)
    registry.start()
    try:
        await registry.acquire({(a.id, "products"), (a.id, "customers")})
        assert await registrations(owner_pool, a.id) == {"products": 1, "customers": 1}

        async def expiry() -> Any:
            async with owner_pool.acquire() as conn:
                return await conn.fetchval(
                    "select max(expires_at) from pb_internal.realtime_subscribers"
                    " where server_id = $1",
                    registry.server_id,
                )

        first = await expiry()
        await asyncio.sleep(2.5)  # longer than the ttl: only the refresh keeps it alive
        assert await expiry() > first
        product_id = await add_product(owner_pool, a.id)
        await notes.wait_for(lambda n: n["k"].get("id") == product_id, within=2)

        registry.release({(a.id, "customers")})
        await eventually(lambda: _equals(registrations(owner_pool, a.id), {"products": 1}))
    finally:
        await registry.stop()
        await db.close()
    assert await registrations(owner_pool, a.id) == {}


async def test_a_stopped_server_leaves_no_registration(
    owner_dsn: str, make_user: Callable[..., Any], owner_pool: asyncpg.Pool, tmp_path: Any
) -> None:
    a = make_user()
    own = ServerProcess(
        owner_dsn, tmp_path, env_overrides={"PB_AUTHENTICATOR_PASSWORD": AUTHENTICATOR_PASSWORD}
    )
    own.start()
    try:
        client = await acreate_client(own.url, own.anon_key)
        await client.realtime.set_auth(a.access_token)
        channel = client.channel("till")
        channel.on_postgres_changes("*", Inbox(), schema="public")
        await channel.subscribe()
        assert await registrations(owner_pool, a.id) == dict.fromkeys(ALL_TABLES, 1)
        await asyncio.to_thread(own.stop)
        assert await registrations(owner_pool, a.id) == {}
        await client.realtime.close()
    finally:
        own.stop()


async def test_the_answer_is_kept_per_statement_and_tenant(
    make_user: Callable[..., Any], owner_pool: asyncpg.Pool, notes: Inbox
) -> None:
    a, b = make_user(), make_user()
    ids = {name: [str(uuid.uuid4()) for _ in range(4)] for name in ("a", "b")}
    # One statement writing both tenants' rows interleaved (as the owner, like a service
    # job): the subscribed tenant's rows are all announced, the other's none.
    async with registered(owner_pool, b.id, ["products"]), owner_pool.acquire() as conn:
        await conn.execute(
            "insert into public.products (business_owner_id, id, sku, name, sale_price)"
            " select o, i, 'S-' || i, 'P', 1 from unnest($1::uuid[], $2::uuid[]) as x(o, i)",
            [a.id, b.id] * 4,
            [i for pair in zip(ids["a"], ids["b"], strict=True) for i in pair],
        )
    await notes.wait_for(lambda n: n["k"].get("id") == ids["b"][-1], within=2)
    assert sorted(n["k"]["id"] for n in notes_of(notes, b.id)) == sorted(ids["b"])
    assert notes_of(notes, a.id) == []

    # In one transaction, a registration committed between two statements counts for the
    # second one.
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    insert = "insert into public.products (id, sku, name, sale_price) values ($1::uuid, $1::text, 'P', 1)"
    async with committed_as(owner_pool, a.id) as conn:
        await conn.execute(insert, first)
        async with registered(owner_pool, a.id, ["products"]):
            await conn.execute(insert, second)
    await notes.wait_for(lambda n: n["k"].get("id") == second, within=2)
    assert [n["k"]["id"] for n in notes_of(notes, a.id)] == [second]


async def test_a_failing_lookup_announces_rather_than_failing_the_write(
    make_user: Callable[..., Any], owner_pool: asyncpg.Pool, notes: Inbox
) -> None:
    a = make_user()
    revoke = "revoke execute on function pb_internal.realtime_wanted(uuid, text) from authenticated"
    async with owner_pool.acquire() as conn:
        await conn.execute(revoke)
    try:
        product_id = await add_product(owner_pool, a.id)  # nobody subscribed, lookup refused
    finally:
        async with owner_pool.acquire() as conn:
            await conn.execute(revoke.replace("revoke", "grant").replace(" from ", " to "))
    await notes.wait_for(lambda n: n["k"].get("id") == product_id, within=2)


async def test_the_lookup_uses_the_primary_key(owner_pool: asyncpg.Pool) -> None:
    async with owner_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(
                "insert into pb_internal.realtime_subscribers"
                " select gen_random_uuid(), t, gen_random_uuid(), now() + interval '1 hour'"
                " from generate_series(1, 2000), unnest(array['products', 'sales', 'customers']) t"
            )
            await conn.execute("analyze pb_internal.realtime_subscribers")
            await conn.execute("set local plan_cache_mode = force_generic_plan")
            await conn.execute(
                "prepare rt_lookup(uuid, text) as select exists (select 1"
                " from pb_internal.realtime_subscribers s where s.business_owner_id in"
                " ($1, '00000000-0000-0000-0000-000000000000'::uuid) and s.table_name = $2"
                " and s.expires_at > now())"
            )
            plan = "\n".join(
                r[0] for r in await conn.fetch("explain execute rt_lookup(gen_random_uuid(), 'x')")
            )
            await conn.execute("deallocate rt_lookup")
        finally:
            await tx.rollback()
    assert "realtime_subscribers_pkey" in plan, plan
