"""Tenant isolation at the SQL level, acting as `authenticated` with tenant A's claims.

For every tenant table: B's rows cannot be read, updated or deleted; a row carrying B's
business_owner_id cannot be inserted; a reference from A's row to B's row is impossible; `anon`
reads nothing. Rows are created as the owner; every check runs as the API role.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from harness import acting_as

GLOBAL_TABLES = {"plans"}


@dataclass
class Tenant:
    id: str
    product: str
    customer: str
    sale: str
    sale_item: str


async def _create_tenant(pool: asyncpg.Pool, label: str) -> Tenant:
    """A tenant with one row in each table, inserted as the owner (bypassing the API)."""
    async with pool.acquire() as conn, conn.transaction():
        uid = await conn.fetchval(
            "insert into auth.users (email, encrypted_password) values ($1, 'x') returning id",
            f"{label}-{uuid.uuid4().hex[:8]}@example.com",
        )
        product = await conn.fetchval(
            "insert into products (business_owner_id, sku, name, sale_price, cost_price)"
            " values ($1, 'SKU-1', $2, 5.00, 2.00) returning id",
            uid,
            f"{label} kuih",
        )
        customer = await conn.fetchval(
            "insert into customers (business_owner_id, name, phone) values ($1, $2, '60123456789')"
            " returning id",
            uid,
            f"{label} customer",
        )
        sale = await conn.fetchval(
            "insert into sales (business_owner_id, sale_number, customer_id, total_amount,"
            " final_amount) values ($1, 'INV-TEST-1', $2, 5.00, 5.00) returning id",
            uid,
            customer,
        )
        item = await conn.fetchval(
            "insert into sale_items (business_owner_id, sale_id, product_id, product_name,"
            " quantity, unit_price, subtotal) values ($1, $2, $3, 'kuih', 1, 5.00, 5.00)"
            " returning id",
            uid,
            sale,
            product,
        )
        await conn.execute(
            "insert into stock_movements (business_owner_id, product_id, reference_type,"
            " movement_type, quantity) values ($1, $2, 'purchase', 'in', 10)",
            uid,
            product,
        )
        await _fill_extra_tables(conn, uid, product)
    return Tenant(str(uid), str(product), str(customer), str(sale), str(item))


async def _fill_extra_tables(conn: asyncpg.Connection, uid: uuid.UUID, product: uuid.UUID) -> None:
    """Rows for tables added after the core schema, so every table is attacked with data in it."""
    tables = {
        r["relname"]
        for r in await conn.fetch(
            "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = 'public' and relkind in ('r', 'p')"
        )
    }
    if "recipe_items" in tables:
        flour = await conn.fetchval(
            "insert into products (business_owner_id, sku, name, sale_price) values"
            " ($1, 'FLOUR', 'flour', 0) returning id",
            uid,
        )
        await conn.execute(
            "insert into recipe_items (business_owner_id, product_id, ingredient_id, quantity)"
            " values ($1, $2, $3, 0.2)",
            uid,
            product,
            flour,
        )
    if "sale_number_counters" in tables:
        await conn.execute(
            "insert into sale_number_counters (business_owner_id, period, last_value)"
            " values ($1, 'all', 1) on conflict do nothing",
            uid,
        )
    if "analytics_events" in tables:  # partitioned: attacked like every other table
        await conn.execute(
            "insert into analytics_events (business_owner_id, name, params) values"
            " ($1, 'screen_view', '{\"screen\": \"sell\"}')",
            uid,
        )
    if "subscription_payments" in tables:
        await conn.execute(
            "insert into subscription_payments (business_owner_id, plan, months, amount,"
            " bill_code) values ($1, 'pro', 1, 29.00, $2)",
            uid,
            f"bill-{uid}",
        )
    sale = await conn.fetchval("select id from sales where business_owner_id = $1 limit 1", uid)
    if "receipt_links" in tables:
        await conn.execute(
            "insert into receipt_links (business_owner_id, sale_id) values ($1, $2)", uid, sale
        )
    if "outbound_messages" in tables:
        await conn.execute(
            "insert into outbound_messages (business_owner_id, sale_id, to_phone)"
            " values ($1, $2, '60123456789')",
            uid,
            sale,
        )
    if "payment_settings" in tables:
        await conn.execute(
            "insert into payment_settings (business_owner_id, category_code) values ($1, 'cat')",
            uid,
        )
    if "payment_links" in tables:
        await conn.execute(
            "insert into payment_links (business_owner_id, sale_id, bill_code, amount)"
            " values ($1, $2, $3, 5.00)",
            uid,
            sale,
            f"link-{uid}",
        )


@pytest.fixture
async def tenants(owner_pool: asyncpg.Pool) -> AsyncIterator[tuple[Tenant, Tenant]]:
    yield await _create_tenant(owner_pool, "a"), await _create_tenant(owner_pool, "b")


async def _tables(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch(
        "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and relkind in ('r', 'p') order by 1"
    )
    return [r["relname"] for r in rows if r["relname"] not in GLOBAL_TABLES]


async def test_every_table_has_rows_of_both_tenants(owner_pool, tenants) -> None:  # type: ignore[no-untyped-def]
    """Guards the other tests: an empty table would make them pass vacuously."""
    a, b = tenants
    for table in await _tables(owner_pool):
        for tenant in (a, b):
            count = await owner_pool.fetchval(
                f'select count(*) from public."{table}" where business_owner_id = $1', tenant.id
            )
            assert count >= 1, f"no rows in {table}: add it to _fill_extra_tables"


async def test_select_update_delete_of_other_tenant_touch_nothing(owner_pool, tenants) -> None:  # type: ignore[no-untyped-def]
    a, b = tenants
    for table in await _tables(owner_pool):
        updatable = await owner_pool.fetchval(
            "select column_name from information_schema.column_privileges"
            " where grantee = 'authenticated' and table_schema = 'public' and table_name = $1"
            " and privilege_type = 'UPDATE' order by column_name limit 1",
            table,
        )
        async with acting_as(owner_pool, "authenticated", a.id) as conn:
            seen = await conn.fetchval(
                f'select count(*) from public."{table}" where business_owner_id = $1', b.id
            )
            assert seen == 0, table
            own = await conn.fetchval(f'select count(*) from public."{table}"')
            assert own >= 1, table  # A still sees its own rows
        if updatable:
            async with acting_as(owner_pool, "authenticated", a.id) as conn:
                status = await conn.execute(
                    f'update public."{table}" set "{updatable}" = "{updatable}"'
                    " where business_owner_id = $1",
                    b.id,
                )
                assert status == "UPDATE 0", table
        else:
            async with acting_as(owner_pool, "authenticated", a.id) as conn:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(
                        f'update public."{table}" set business_owner_id ='
                        " business_owner_id where business_owner_id = $1",
                        b.id,
                    )
        async with acting_as(owner_pool, "authenticated", a.id) as conn:
            try:
                status = await conn.execute(
                    f'delete from public."{table}" where business_owner_id = $1', b.id
                )
                assert status == "DELETE 0", table
            except asyncpg.InsufficientPrivilegeError:
                pass  # no delete grant at all: also nothing touched
        remaining = await owner_pool.fetchval(
            f'select count(*) from public."{table}" where business_owner_id = $1', b.id
        )
        assert remaining >= 1, table


async def test_insert_with_other_tenants_owner_id_fails(owner_pool, tenants) -> None:  # type: ignore[no-untyped-def]
    a, b = tenants
    attempts = {
        "products": (
            "insert into products (business_owner_id, sku, name, sale_price)"
            " values ($1, 'X-1', 'x', 1)"
        ),
        "customers": "insert into customers (business_owner_id, name) values ($1, 'x')",
    }
    for table, sql in attempts.items():
        async with acting_as(owner_pool, "authenticated", a.id) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError) as info:
                await conn.execute(sql, b.id)
            assert "row-level security" in str(info.value), table
    # Tables clients may not insert into at all.
    for table in ("sales", "sale_items", "stock_movements", "users", "business_profiles"):
        async with acting_as(owner_pool, "authenticated", a.id) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(
                    f'insert into public."{table}" (business_owner_id) values ($1)', b.id
                )


async def test_references_to_other_tenants_rows_are_impossible(owner_pool, tenants) -> None:  # type: ignore[no-untyped-def]
    """Even the owner cannot write a cross-tenant reference: the composite keys forbid it."""
    a, b = tenants
    async with owner_pool.acquire() as conn:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                "insert into sale_items (business_owner_id, sale_id, product_id, product_name,"
                " quantity, unit_price, subtotal) values ($1, $2, $3, 'x', 1, 1, 1)",
                a.id,
                a.sale,
                b.product,
            )
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                "insert into sale_items (business_owner_id, sale_id, product_id, product_name,"
                " quantity, unit_price, subtotal) values ($1, $2, $3, 'x', 1, 1, 1)",
                a.id,
                b.sale,
                a.product,
            )
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                "insert into sales (business_owner_id, sale_number, customer_id, total_amount,"
                " final_amount) values ($1, 'X-2', $2, 1, 1)",
                a.id,
                b.customer,
            )
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                "insert into stock_movements (business_owner_id, product_id, reference_type,"
                " movement_type, quantity) values ($1, $2, 'purchase', 'in', 1)",
                a.id,
                b.product,
            )


async def test_client_cannot_write_protected_columns(owner_pool, tenants) -> None:  # type: ignore[no-untyped-def]
    a, _ = tenants
    forbidden = [
        "update products set current_stock = 999",
        "update users set subscription_plan = 'pro'",
        "update users set subscription_expires_at = now() + interval '10 years'",
        "update sales set final_amount = 0",
        "delete from stock_movements",
        "insert into products (sku, name, sale_price, current_stock) values ('Z', 'z', 1, 50)",
    ]
    for sql in forbidden:
        async with acting_as(owner_pool, "authenticated", a.id) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
    async with acting_as(owner_pool, "authenticated", a.id) as conn:
        # ...while the columns a client owns stay writable.
        assert await conn.execute("update users set full_name = 'Ali'") == "UPDATE 1"
        assert (
            await conn.execute("update products set sale_price = 6 where id = $1", a.product)
            == "UPDATE 1"
        )


async def test_anon_reads_nothing(owner_pool, tenants) -> None:  # type: ignore[no-untyped-def]
    for table in await _tables(owner_pool):
        async with acting_as(owner_pool, "anon") as conn:
            try:
                rows = await conn.fetch(f'select * from public."{table}"')
            except asyncpg.InsufficientPrivilegeError:
                continue
            assert rows == [], table


async def test_stock_ledger_is_append_only_even_for_service_role(owner_pool, tenants) -> None:  # type: ignore[no-untyped-def]
    a, _ = tenants
    async with acting_as(owner_pool, "service_role") as conn:
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute(
                "update stock_movements set quantity = 1 where business_owner_id = $1", a.id
            )
