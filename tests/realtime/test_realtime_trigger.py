"""The `realtime_notify` trigger at SQL level: what it announces, when, and the policy
shape the hub's pre-filter relies on."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from rt_helpers import Inbox, committed_as, registered

REALTIME_TABLES = {
    "business_profiles",
    "customers",
    "products",
    "sales",
    "sale_items",
    "stock_movements",
}


async def test_changes_are_announced_compactly_and_only_on_commit(
    make_user: Callable[..., Any],
    owner_pool: asyncpg.Pool,
    notes: Inbox,
) -> None:
    a = make_user()
    async with registered(owner_pool, a.id, ["products"]):  # someone listens (see 0007)
        await _announced_compactly_and_only_on_commit(a, owner_pool, notes)


async def _announced_compactly_and_only_on_commit(
    a: Any, owner_pool: asyncpg.Pool, notes: Inbox
) -> None:
    product_id = str(uuid.uuid4())
    async with committed_as(owner_pool, a.id) as conn:
        await conn.execute(
            "insert into public.products (id, sku, name, sale_price) values ($1, 'T-1', 'Teh', 2.50)",
            product_id,
        )
    note = await notes.wait_for(lambda n: n["k"].get("id") == product_id)
    assert note["s"] == "public" and note["t"] == "products" and note["op"] == "INSERT"
    assert note["o"] == a.id
    assert note["k"] == {"business_owner_id": a.id, "id": product_id}
    assert note["r"]["sale_price"] == Decimal("2.50")  # exact, as numeric
    assert note["ts"]

    # A rolled-back write announces nothing.
    rolled_back = str(uuid.uuid4())
    with pytest.raises(RuntimeError):
        async with committed_as(owner_pool, a.id) as conn:
            await conn.execute(
                "insert into public.products (id, sku, name, sale_price) values ($1, 'R', 'R', 1)",
                rolled_back,
            )
            raise RuntimeError("abort")
    async with committed_as(owner_pool, a.id) as conn:
        await conn.execute("delete from public.products where id = $1", product_id)
    note = await notes.wait_for(lambda n: n["op"] == "DELETE" and n["k"]["id"] == product_id)
    assert note["k"]["id"] == product_id and note["r"]["id"] == product_id
    assert all(n["k"].get("id") != rolled_back for n in notes.items)

    # A row too big for one notification is announced by its key alone.
    big_id = str(uuid.uuid4())
    async with committed_as(owner_pool, a.id) as conn:
        await conn.execute(
            "insert into public.products (id, sku, name, sale_price, description)"
            " values ($1, 'BIG', 'Big', 1, repeat('x', 20000))",
            big_id,
        )
    note = await notes.wait_for(lambda n: n["k"].get("id") == big_id)
    assert "r" not in note and note["o"] == a.id


async def test_realtime_tables_have_only_owner_select_policies(owner_pool: asyncpg.Pool) -> None:
    """The hub delivers a change only to the row's tenant before confirming with a SELECT.
    That pre-filter is sound while every permissive SELECT policy on a realtime table is the
    owner rule; a wider policy (say, staff reading the owner's rows) must fail this test."""
    async with owner_pool.acquire() as conn:
        tables = {
            r["relname"]
            for r in await conn.fetch(
                "select c.relname from pg_trigger t join pg_class c on c.oid = t.tgrelid"
                " join pg_proc p on p.oid = t.tgfoid where p.proname = 'realtime_notify'"
            )
        }
        policies = await conn.fetch(
            "select tablename, roles, qual from pg_policies where schemaname = 'public'"
            " and cmd in ('SELECT', 'ALL') and permissive = 'PERMISSIVE'"
            " and tablename = any($1::text[])",
            list(tables),
        )
    assert tables == REALTIME_TABLES
    assert {p["tablename"] for p in policies} == REALTIME_TABLES
    for policy in policies:
        assert policy["qual"] == "(business_owner_id = ( SELECT auth.uid() AS uid))", policy
