"""The domain's SECURITY DEFINER functions run as pb_definer, under forced RLS (issue 13.3)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import pytest
from domain.helpers import as_tenant, call, line, new_product, new_tenant


async def test_rls_applies_inside_a_pb_definer_function(db: asyncpg.Pool) -> None:
    """A definer function owned by pb_definer that forgets the owner predicate still sees only
    the caller's rows: the policies, reading auth.uid() from the caller's claims, apply."""
    a, b = await new_tenant(db), await new_tenant(db)
    await new_product(db, a)
    await new_product(db, b)
    await new_product(db, b)
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(
                "create function public.definer_probe() returns table (owners bigint, rows bigint,"
                " uid uuid) language sql security definer set search_path = '' as $$"
                " select count(distinct p.business_owner_id), count(*), auth.uid()"
                " from public.products p $$;"
                " alter function public.definer_probe() owner to pb_definer;"
                " grant execute on function public.definer_probe() to authenticated"
            )
            async with as_tenant(conn, a):
                row = await conn.fetchrow("select * from public.definer_probe()")
                # as_tenant commits its transaction-in-transaction (a savepoint here).
        finally:
            await tx.rollback()
    assert (row["owners"], row["rows"], row["uid"]) == (1, 1, a)


async def test_writers_work_as_pb_definer_and_isolate_tenants(db: asyncpg.Pool) -> None:
    a, b = await new_tenant(db), await new_tenant(db)
    mine = await new_product(db, a, stock=3)
    theirs = await new_product(db, b, stock=3)
    sale = await call(db, a, "create_sale", items=[line(mine, 2)])
    assert Decimal(str(sale["final_amount"])) == Decimal("10.00")
    await call(db, a, "void_sale", sale_id=uuid.UUID(sale["id"]), reason="test")
    with pytest.raises(asyncpg.PostgresError) as info:
        await call(db, a, "create_sale", items=[line(theirs, 1)])
    assert info.value.sqlstate == "PT404"
    with pytest.raises(asyncpg.PostgresError) as info:
        await call(
            db, a, "adjust_stock", product_id=theirs, counted_quantity=Decimal(0), reason="count"
        )
    assert info.value.sqlstate == "PT404"
    async with as_tenant(db, b) as conn:
        assert await conn.fetchval(
            "select current_stock from products where id = $1", theirs
        ) == Decimal("3.000")
