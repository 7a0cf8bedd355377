"""Hot queries use indexes at 10,000 tenants. The dataset is made set-based as the owner inside
one transaction, analysed, EXPLAINed as one tenant (RLS doing the tenant filter, as through
REST), and rolled back. The analytics building blocks are the inlined SQL functions
analytics() runs, so their plans are analytics()' plans."""

from __future__ import annotations

import json
import uuid

import asyncpg

TENANTS = 10_000

_DATASET = """
set local session_replication_role = replica;  -- no per-row triggers: set-based and fast
create temp table t_owner on commit drop as
    select gen_random_uuid() as id, g as n from generate_series(1, $1) g;
insert into auth.users (id, email, encrypted_password)
    select id, 'scale-' || n || '-' || id || '@example.com', 'x' from t_owner;
insert into public.users (business_owner_id, id, email)
    select id, id, 'scale-' || n || '-' || id || '@example.com' from t_owner;
insert into public.business_profiles (business_owner_id) select id from t_owner;
insert into public.products (business_owner_id, sku, name, sale_price, cost_price,
                             current_stock, reorder_level, is_active)
    select o.id, 'SKU-' || p, 'Product ' || p, 5, 2, p % 7, 2, p % 10 <> 0
    from t_owner o, generate_series(1, 20) p;
insert into public.sales (business_owner_id, sale_number, total_amount, final_amount,
                          payment_status, created_at)
    select o.id, 'INV-' || s, 5, 5, case when s % 10 = 0 then 'pending' else 'paid' end,
           now() - (s * 37 % 365) * interval '1 day'
    from t_owner o, generate_series(1, 10) s;
insert into public.sale_items (business_owner_id, sale_id, product_id, product_name, quantity,
                               unit_price, subtotal, unit_cost)
    select s.business_owner_id, s.id, p.id, p.name, 1, 5, 5, 2
    from public.sales s
    join public.products p on p.business_owner_id = s.business_owner_id and p.sku = 'SKU-1';
insert into public.stock_movements (business_owner_id, product_id, reference_type,
                                    reference_id, movement_type, quantity, unit_cost)
    select i.business_owner_id, i.product_id, 'sale', i.sale_id, 'out', 1, 2
    from public.sale_items i;
analyze auth.users, public.users, public.business_profiles, public.products, public.sales,
        public.sale_items, public.stock_movements;
"""

# (what, query, the index that must serve it, or None: any index, no sequential scan)
_QUERIES = [
    (
        "sales of a tenant by date",
        "select * from sales where created_at >= now() - interval '30 days'"
        " order by created_at desc limit 50",
        "idx_sales_owner_date",
    ),
    ("active products", "select * from products where is_active", "idx_products_owner_active"),
    ("pending sales", "select * from sales where payment_status = 'pending'", "idx_sales_pending"),
    (
        "movements of a product",
        "select * from stock_movements where product_id = $2 order by created_at desc limit 50",
        "idx_stock_movements_product",
    ),
    (
        "analytics: sales in range",
        "select * from pb_internal.analytics_sales($1, now() - interval '30 days', now(),"
        " 'Asia/Kuala_Lumpur')",
        "idx_sales_owner_date",
    ),
    (
        "analytics: top products in range",
        "select * from pb_internal.analytics_products($1, now() - interval '365 days', now())",
        None,
    ),  # any index leading with business_owner_id serves both sides of the join
    (
        "analytics: low stock",
        "select * from pb_internal.analytics_low_stock($1)",
        "idx_products_owner_active",
    ),
]


async def test_hot_queries_use_indexes_at_ten_thousand_tenants(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("set local statement_timeout = '120s'")
            await conn.execute(_DATASET.replace("$1", str(TENANTS)))
            tenant: uuid.UUID = await conn.fetchval("select id from t_owner where n = 4242")
            product: uuid.UUID = await conn.fetchval(
                "select id from products where business_owner_id = $1 and sku = 'SKU-1'", tenant
            )
            assert await conn.fetchval("select count(*) from public.users") >= TENANTS
            await conn.execute(
                "select set_config('role', 'authenticated', true),"
                " set_config('request.jwt.claims', $1, true)",
                json.dumps({"sub": str(tenant), "role": "authenticated"}),
            )
            plans = {}
            for what, query, index in _QUERIES:
                # $1 is the tenant, $2 the product (as literals: EXPLAIN takes no parameters
                # for an unprepared statement that uses only one of them)
                query = query.replace("$1", f"'{tenant}'::uuid").replace("$2", f"'{product}'::uuid")
                rows = await conn.fetch(f"explain {query}")
                plans[what] = ("\n".join(r[0] for r in rows), index)
        finally:
            await tx.rollback()

    for what, (plan, index) in plans.items():
        assert "Seq Scan" not in plan, f"{what}:\n{plan}"
        assert "Index" in plan, f"{what}:\n{plan}"
        assert index is None or index in plan, f"{what} should use {index}:\n{plan}"
