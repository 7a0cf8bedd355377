"""Deleting a user (the admin API, account closure / PDPA erasure) purges the tenant: its rows
in every tenant table (the append-only ledger included), its stored files, its account — and
nothing of any other tenant. Its still-valid token is refused on every surface."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from auth.support import headers, surfaces
from harness import ServerProcess, acting_as
from supabase import create_client
from supabase_auth.errors import AuthApiError


async def _stock_a_shop(pool: asyncpg.Pool, user_id: str) -> None:
    """Products, a purchase and a sale (so the ledger has rows), a customer — as the tenant."""
    claims = json.dumps({"sub": user_id, "role": "authenticated"})
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "select set_config('role', 'authenticated', true),"
            " set_config('request.jwt.claims', $1, true)",
            claims,
        )
        bread = await conn.fetchval(
            "insert into public.products (sku, name, sale_price, cost_price)"
            " values ('ROTI', 'Roti', 1.50, 0.60) returning id"
        )
        await conn.execute("select public.record_purchase($1, 10, 0.55)", bread)
        await conn.execute(
            "insert into public.customers (name, phone) values ('Aminah', '+60123456789')"
        )
        await conn.execute(
            "select public.create_sale($1::jsonb, 'walk-in', null, 0, 'cash')",
            json.dumps([{"product_id": str(bread), "quantity": 2}]),
        )
        # The dashboard's last week: closed days land in the analytics cache (pb_internal).
        await conn.execute("select public.analytics(current_date - 7, current_date)")


async def _rows_per_table(pool: asyncpg.Pool, user_id: str) -> dict[str, int]:
    """Every table with a business_owner_id (the API's and the server's own in pb_internal):
    this tenant's row count in it."""
    async with pool.acquire() as conn:
        tables = await conn.fetch(
            """select c.table_schema, c.table_name from information_schema.columns c
               join information_schema.tables t using (table_schema, table_name)
               where c.table_schema in ('public', 'pb_internal')
                 and c.column_name = 'business_owner_id' and t.table_type = 'BASE TABLE'
               order by 1, 2"""
        )
        counts = {}
        for t in tables:
            schema, name = t["table_schema"], t["table_name"]
            counts[f"{schema}.{name}"] = await conn.fetchval(
                f'select count(*) from {schema}."{name}" where business_owner_id = $1',
                uuid.UUID(user_id),
            )
    return counts


async def _object_versions(pool: asyncpg.Pool, user_id: str) -> list[tuple[str, str]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "select bucket_id, version from storage.objects where storage.owner_folder(name) = $1",
            user_id,
        )
    return [(r["bucket_id"], str(r["version"])) for r in rows]


def _stored_file(server: ServerProcess, bucket: str, version: str) -> Path:
    return server.data_dir / "storage" / bucket / version[:2] / version


async def test_deleting_a_user_purges_exactly_that_tenant(
    server: ServerProcess,
    service_client: Any,
    make_user: Callable[..., Any],
    owner_pool: asyncpg.Pool,
) -> None:
    closing, staying = make_user(), make_user()
    for shop in (closing, staying):
        await _stock_a_shop(owner_pool, shop.id)
        bucket = shop.client.storage.from_("receipts")
        bucket.upload(f"{shop.id}/2026/r-1.txt", b"receipt", {"content-type": "text/plain"})
        shop.client.storage.from_("product-images").upload(
            f"{shop.id}/roti.png", b"\x89PNG fake", {"content-type": "image/png"}
        )

    before_closing = await _rows_per_table(owner_pool, closing.id)
    before_staying = await _rows_per_table(owner_pool, staying.id)
    assert before_closing["public.stock_movements"] >= 2 and before_closing["public.sales"] == 1
    assert before_closing["pb_internal.analytics_days"] >= 6
    closing_files = await _object_versions(owner_pool, closing.id)
    staying_files = await _object_versions(owner_pool, staying.id)
    assert len(closing_files) == 2 and len(staying_files) == 2
    assert all(_stored_file(server, b, v).exists() for b, v in closing_files + staying_files)

    service_client.auth.admin.delete_user(closing.id)

    assert set((await _rows_per_table(owner_pool, closing.id)).values()) == {0}
    assert await _rows_per_table(owner_pool, staying.id) == before_staying
    assert await _object_versions(owner_pool, closing.id) == []
    assert not any(_stored_file(server, b, v).exists() for b, v in closing_files)
    assert await _object_versions(owner_pool, staying.id) == staying_files
    assert all(_stored_file(server, b, v).exists() for b, v in staying_files)
    async with owner_pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "select count(*) from auth.users where id = $1", uuid.UUID(closing.id)
            )
            == 0
        )
        assert (
            await conn.fetchval(
                "select count(*) from auth.sessions where user_id = $1", uuid.UUID(closing.id)
            )
            == 0
        )

    # The closed account's still-valid token is refused on every surface.
    assert surfaces(server, closing.access_token, closing.id) == {
        "rest": 401,
        "rpc": 401,
        "storage": 401,
        "functions": 401,
        "user": 403,
    }
    async with httpx.AsyncClient() as http:
        gone = (
            await http.get(
                f"{server.url}/rest/v1/products", headers=headers(server, closing.access_token)
            )
        ).json()
    assert gone == {
        "code": "PGRST303",
        "details": None,
        "hint": None,
        "message": "User from sub claim in JWT does not exist",
    }
    # ... and the other tenant carries on.
    assert set(surfaces(server, staying.access_token, staying.id).values()) == {200}
    assert staying.client.storage.from_("receipts").download(f"{staying.id}/2026/r-1.txt") == (
        b"receipt"
    )
    with pytest.raises(AuthApiError) as missing:
        service_client.auth.admin.get_user_by_id(closing.id)
    assert missing.value.status == 404 and missing.value.code == "user_not_found"
    with pytest.raises(AuthApiError):
        create_client(server.url, server.anon_key).auth.sign_in_with_password(
            {"email": closing.email, "password": closing.password}
        )


async def test_the_ledger_stays_append_only_outside_a_purge(
    make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    shop = make_user()
    await _stock_a_shop(owner_pool, shop.id)
    # Not even the owner (and not service_role) may delete ledger rows, nor may a purge
    # setting naming the tenant let them go while the tenant still exists.
    async with owner_pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            async with conn.transaction():
                await conn.execute("select set_config('pb.purging_tenant', $1, true)", shop.id)
                await conn.execute(
                    "delete from public.stock_movements where business_owner_id = $1",
                    uuid.UUID(shop.id),
                )
    async with acting_as(owner_pool, "service_role") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute(
                "delete from public.stock_movements where business_owner_id = $1",
                uuid.UUID(shop.id),
            )
    # The purge is not callable by API roles.
    for role in ("anon", "authenticated", "service_role"):
        async with acting_as(owner_pool, role, shop.id) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("select * from pb_internal.purge_tenant($1)", uuid.UUID(shop.id))
