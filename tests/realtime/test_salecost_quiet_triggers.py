"""Row triggers that skip themselves when their call would change nothing (migration 0031).

The writers mark the realtime tables nobody listens to as quiet for the current client statement
(pb_internal.realtime_quiet), and those tables' realtime triggers are skipped by their WHEN
clause; a table somebody listens to is announced as before. The writers set updated_at
themselves, and products_touch / sales_touch run only when updated_at is not already now().

Trigger calls are counted with the transaction's own function statistics (track_functions);
announcements are heard by LISTENing as the owner (the `notes` fixture).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from rt_helpers import Inbox, add_product, committed_as, registered

from pocketbizz.realtime.registry import ALL_TENANTS

SALE_TABLES = ["sales", "sale_items", "products", "stock_movements"]

CALLS = """
select coalesce(pg_stat_get_xact_function_calls(
                    'pb_internal.realtime_notify()'::regprocedure), 0) as notify,
       coalesce(pg_stat_get_xact_function_calls(
                    'pb_internal.touch_updated_at()'::regprocedure), 0) as touch,
       coalesce(pg_stat_get_xact_function_calls(
                    'pb_internal.realtime_wanted_tables(uuid, text[])'::regprocedure), 0) as asked
"""


class Calls:
    """Calls of the triggers and the lookup since `start`, in one transaction (the session's
    pending counts may still hold earlier transactions' calls: they are flushed at intervals)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.base: dict[str, int] = {}

    async def start(self) -> None:
        await self.conn.execute("set local track_functions = 'all'")
        self.base = dict(await self.conn.fetchrow(CALLS))

    async def __call__(self) -> dict[str, int]:
        now = await self.conn.fetchrow(CALLS)
        return {name: now[name] - self.base[name] for name in self.base}


@asynccontextmanager
async def counted_as(
    pool: asyncpg.Pool, user_id: str
) -> AsyncIterator[tuple[asyncpg.Connection, Calls]]:
    """A committed transaction as the tenant, counting the trigger calls in it."""
    async with pool.acquire() as conn, conn.transaction():
        calls = Calls(conn)
        await calls.start()
        await conn.execute(
            "select set_config('role', 'authenticated', true),"
            " set_config('request.jwt.claims', $1, true)",
            json.dumps({"role": "authenticated", "sub": user_id}),
        )
        yield conn, calls


async def stocked_products(pool: asyncpg.Pool, owner_id: str, count: int = 2) -> list[str]:
    ids = [await add_product(pool, owner_id) for _ in range(count)]
    async with committed_as(pool, owner_id) as conn:
        for product_id in ids:
            await conn.execute("select public.record_purchase($1::uuid, 100, 1)", product_id)
    return ids


async def sell(conn: asyncpg.Connection, products: list[str]) -> dict[str, Any]:
    items = [{"product_id": p, "quantity": 1} for p in products]
    sale: dict[str, Any] = json.loads(
        await conn.fetchval("select public.create_sale($1::jsonb)", json.dumps(items))
    )
    return sale


async def marker(pool: asyncpg.Pool, owner_id: str) -> str:
    """A product inserted while somebody listens to the tenant's products: once its
    announcement is heard, every earlier commit's has been (they arrive in commit order)."""
    async with registered(pool, owner_id, ["products"]):
        return await add_product(pool, owner_id)


async def heard_until(notes: Inbox, owner_id: str, marker_id: str) -> list[tuple[str, str]]:
    """(table, op) of every announcement for the tenant before the marker's."""
    await notes.wait_for(lambda n: n["k"].get("id") == marker_id, within=3)
    return sorted(
        (n["t"], n["op"])
        for n in notes.items
        if n["o"] == owner_id and n["k"].get("id") != marker_id
    )


async def test_a_sale_nobody_listens_to_calls_no_realtime_or_touch_trigger(
    make_user: Callable[..., Any], owner_pool: asyncpg.Pool, notes: Inbox
) -> None:
    a = make_user()
    products = await stocked_products(owner_pool, a.id)
    async with counted_as(owner_pool, a.id) as (conn, counted):
        sale = await sell(conn, products)
        calls = await counted()
        # The marks end with create_sale (its SET clause), not with the transaction.
        marks = await conn.fetchval(
            "select array_agg(current_setting('pb_realtime_quiet.' || t, true))"
            " from unnest($1::text[]) t",
            SALE_TABLES,
        )
        stamped = await conn.fetch(
            "select updated_at = now() as now from public.products where id = any($1::uuid[])",
            products,
        )
        # A later statement of the same transaction is asked about again, and announced
        # because somebody now listens.
        async with registered(owner_pool, a.id, ["products"]):
            await conn.execute(
                "update public.products set name = 'Renamed' where id = $1::uuid", products[0]
            )
            after = await counted()
    assert sale["status"] == "completed" and len(sale["items"]) == 2
    assert calls == {"notify": 0, "touch": 0, "asked": 1}
    assert all(m in (None, "") for m in marks), marks
    assert [r["now"] for r in stamped] == [True, True]
    assert after["notify"] == 1
    assert await heard_until(notes, a.id, await marker(owner_pool, a.id)) == [
        ("products", "UPDATE")
    ]


async def test_the_tables_somebody_listens_to_are_announced(
    make_user: Callable[..., Any], owner_pool: asyncpg.Pool, notes: Inbox
) -> None:
    a = make_user()
    products = await stocked_products(owner_pool, a.id)
    async with registered(owner_pool, a.id, ["sales", "stock_movements"]):
        async with counted_as(owner_pool, a.id) as (conn, counted):
            await sell(conn, products)
            calls = await counted()
        mark = await marker(owner_pool, a.id)
    # The sale and its two ledger rows; the lines and the stock updates are quiet.
    assert calls["notify"] == 3
    assert await heard_until(notes, a.id, mark) == [
        ("sales", "INSERT"),
        ("stock_movements", "INSERT"),
        ("stock_movements", "INSERT"),
    ]


async def test_a_subscriber_of_every_tenant_hears_every_row_of_the_sale_and_its_void(
    make_user: Callable[..., Any], owner_pool: asyncpg.Pool, notes: Inbox
) -> None:
    a = make_user()
    products = await stocked_products(owner_pool, a.id)
    async with registered(owner_pool, ALL_TENANTS, SALE_TABLES):
        async with committed_as(owner_pool, a.id) as conn:
            sale = await sell(conn, products)
        async with counted_as(owner_pool, a.id) as (conn, counted):
            voided = json.loads(
                await conn.fetchval("select public.void_sale($1::uuid, 'wrong')", sale["id"])
            )
            calls = await counted()
            sale_stamp = await conn.fetchval(
                "select updated_at = now() from public.sales where id = $1::uuid", sale["id"]
            )
        mark = await marker(owner_pool, a.id)
    assert voided["status"] == "void" and sale_stamp is True
    # The void: two stock updates, two ledger rows back, the sale's update; no touch call.
    assert calls == {"notify": 5, "touch": 0, "asked": 1}
    assert await heard_until(notes, a.id, mark) == sorted(
        [("sales", "INSERT"), ("sales", "UPDATE")]
        + [("sale_items", "INSERT")] * 2
        + [("products", "UPDATE")] * 4
        + [("stock_movements", "INSERT")] * 4
    )


async def test_a_failing_lookup_leaves_the_triggers_to_ask_and_the_sale_stands(
    make_user: Callable[..., Any], owner_pool: asyncpg.Pool, notes: Inbox
) -> None:
    a = make_user()
    products = await stocked_products(owner_pool, a.id)
    grant = (
        "grant execute on function pb_internal.realtime_wanted_tables(uuid, text[]) to pb_definer"
    )
    async with owner_pool.acquire() as conn:
        await conn.execute(grant.replace("grant", "revoke").replace(" to ", " from "))
    try:
        async with (
            registered(owner_pool, a.id, ["products"]),
            counted_as(owner_pool, a.id) as (conn, counted),
        ):
            sale = await sell(conn, products)
            calls = await counted()
    finally:
        async with owner_pool.acquire() as conn:
            await conn.execute(grant)
    assert sale["status"] == "completed"
    # Every row's trigger was called (nothing marked quiet); only products are announced.
    assert calls["notify"] == 1 + 2 + 2 + 2
    assert (
        await heard_until(notes, a.id, await marker(owner_pool, a.id))
        == [("products", "UPDATE")] * 2
    )


async def test_other_writers_and_updates_are_touched_and_announced_as_before(
    make_user: Callable[..., Any], owner_pool: asyncpg.Pool, notes: Inbox
) -> None:
    a = make_user()
    product_id = await add_product(owner_pool, a.id)
    async with owner_pool.acquire() as conn, conn.transaction():
        counted = Calls(conn)
        await counted.start()
        # Asked for an old updated_at, the touch trigger still sets now().
        touched = await conn.fetchval(
            "update public.products set name = 'Kopi', updated_at = '2000-01-01'"
            " where id = $1::uuid returning updated_at = now()",
            product_id,
        )
        # A mark of an earlier client statement does not silence this one.
        await conn.execute(
            "select set_config('pb_realtime_quiet.products', statement_timestamp()::text, true)"
        )
        async with registered(owner_pool, a.id, ["products"]):
            await conn.execute(
                "update public.products set name = 'Teh' where id = $1::uuid", product_id
            )
            calls = await counted()
    assert touched is True
    # The second update found updated_at already now(): nothing for the touch trigger to do.
    assert calls["touch"] == 1 and calls["notify"] == 2
    # A one-product writer asks no question up front: its triggers ask (stock and cost updates,
    # one ledger row), and it sets updated_at itself.
    async with counted_as(owner_pool, a.id) as (conn, counted):
        await conn.execute("select public.record_purchase($1::uuid, 5, 2)", product_id)
        purchase = await counted()
    assert purchase == {"notify": 3, "touch": 0, "asked": 0}
    assert await heard_until(notes, a.id, await marker(owner_pool, a.id)) == [
        ("products", "UPDATE")
    ]
