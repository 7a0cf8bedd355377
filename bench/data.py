"""Realistic volume for benchmarks and EXPLAIN checks: 10,000 tenants × 50 products.

Set-based SQL run as the owner; sign-up's trigger creates each tenant's profile rows.
"""

from __future__ import annotations

import time
import uuid

import asyncpg
import jwt

TENANTS_SQL = """
insert into auth.users (email, encrypted_password, email_confirmed_at)
select 'tenant-' || g || '@bench.example', 'not-a-real-hash', now()
from generate_series(1, $1) g
on conflict do nothing
"""

PRODUCTS_SQL = """
insert into public.products (business_owner_id, sku, name, category, unit, cost_price,
                             sale_price, current_stock, reorder_level)
select u.id, 'SKU-' || lpad(p::text, 4, '0'),
       (array['Nasi Lemak', 'Kuih Lapis', 'Teh Tarik', 'Roti Canai', 'Karipap'])[1 + p % 5]
           || ' ' || p,
       (array['food', 'drink', 'snack'])[1 + p % 3], 'pcs',
       round((1 + (p % 7))::numeric, 2), round((3 + (p % 11))::numeric + 0.50, 2),
       0, 5
from auth.users u cross join generate_series(1, $1) p
where u.email like 'tenant-%@bench.example'
on conflict do nothing
"""

CUSTOMERS_SQL = """
insert into public.customers (business_owner_id, name, phone)
select u.id, 'Customer ' || c, '6012' || lpad((c * 7919 % 10000000)::text, 7, '0')
from auth.users u cross join generate_series(1, $1) c
where u.email like 'tenant-%@bench.example'
"""

# Opening stock goes through the ledger so current_stock = Σ in − Σ out holds.
STOCK_SQL = """
with moved as (
    insert into public.stock_movements (business_owner_id, product_id, reference_type,
                                        movement_type, quantity, unit_cost, created_by)
    select p.business_owner_id, p.id, 'opening', 'in', $2, p.cost_price, p.business_owner_id
    from public.products p
    where p.business_owner_id = any($1::uuid[])
    returning business_owner_id, product_id, quantity
)
update public.products p set current_stock = p.current_stock + m.quantity
from moved m where m.business_owner_id = p.business_owner_id and m.product_id = p.id
"""


async def generate(
    dsn: str, tenants: int = 10_000, products: int = 50, customers: int = 5
) -> dict[str, float]:
    conn = await asyncpg.connect(dsn)
    timings: dict[str, float] = {}
    try:
        for label, sql, arg in (
            ("tenants", TENANTS_SQL, tenants),
            ("products", PRODUCTS_SQL, products),
            ("customers", CUSTOMERS_SQL, customers),
        ):
            t0 = time.perf_counter()
            async with conn.transaction():
                if label != "tenants":  # sign-up's trigger must run; the others need not
                    # A bulk load is not a stream of user changes: skip per-row triggers
                    # (realtime announcements, updated_at) as a restore would.
                    await conn.execute("set local session_replication_role = replica")
                await conn.execute(sql, arg)
            timings[label] = time.perf_counter() - t0
        await conn.execute("analyze")
    finally:
        await conn.close()
    return timings


async def tenant_ids(dsn: str, limit: int) -> list[uuid.UUID]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select id from auth.users where email like 'tenant-%@bench.example' "
            "order by email limit $1",
            limit,
        )
    finally:
        await conn.close()
    return [r["id"] for r in rows]


async def give_stock(dsn: str, owners: list[uuid.UUID], quantity: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(STOCK_SQL, owners, quantity)
    finally:
        await conn.close()


async def selling_tenants(dsn: str, owners: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """Ready `owners` to sell for a whole run and return each one's product ids (as text), in
    the order of `owners`: the 'pro' plan (a free plan's limits would refuse sales partway
    through a run) and stock enough for every sale of a run."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "update public.users set subscription_plan = 'pro' "
            "where business_owner_id = any($1::uuid[])",
            owners,
        )
        rows = await conn.fetch(
            "select business_owner_id, id::text from public.products "
            "where business_owner_id = any($1::uuid[])",
            owners,
        )
    finally:
        await conn.close()
    await give_stock(dsn, owners, 10_000_000)
    products: dict[uuid.UUID, list[str]] = {o: [] for o in owners}
    for r in rows:
        products[r["business_owner_id"]].append(r["id"])
    return products


def user_token(secret: str, user_id: uuid.UUID, lifetime: int = 3600) -> str:
    """An access token as the auth service would issue it (benchmarks skip argon2 sign-ins)."""
    now = int(time.time())
    return jwt.encode(
        {
            "sub": str(user_id),
            "role": "authenticated",
            "aud": "authenticated",
            "iat": now,
            "exp": now + lifetime,
            "session_id": str(uuid.uuid4()),
        },
        secret,
        algorithm="HS256",
    )
