"""What issue 12 made cheaper keeps its contract: auth.uid() without a regex (migration 0016),
the scale-restoring triggers that fire only when a value needs its scale (0017), and a sale
whose rows are written at their columns' scale."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import asyncpg
from domain.helpers import as_tenant, call, line, new_product, new_tenant

D = Decimal


async def test_auth_uid_reads_a_uuid_subject_and_nothing_else(db: asyncpg.Pool) -> None:
    uid = uuid.uuid4()
    cases: list[tuple[str, uuid.UUID | None]] = [
        (json.dumps({"sub": str(uid), "role": "authenticated"}), uid),
        (json.dumps({"sub": str(uid).upper()}), uid),
        (json.dumps({"sub": "anon", "role": "anon"}), None),
        (json.dumps({"sub": f"{uid}x"}), None),
        (json.dumps({"sub": ""}), None),
        (json.dumps({"sub": 12}), None),
        (json.dumps({"role": "service_role"}), None),
        ("", None),
    ]
    async with db.acquire() as conn:
        for claims, expected in cases:
            async with conn.transaction():
                await conn.execute("select set_config('request.jwt.claims', $1, true)", claims)
                assert await conn.fetchval("select auth.uid()") == expected, claims
        # Never set in this session at all.
        assert await conn.fetchval("select auth.uid()") is None


async def test_every_keep_scale_trigger_fires_only_when_a_scale_is_off(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "select distinct n.table_schema, n.table_name, t.tgname,"
            " pg_get_triggerdef(t.oid) as def"
            " from pb_internal.numeric_columns n"
            " left join pg_trigger t on t.tgrelid = format('%I.%I', n.table_schema,"
            " n.table_name)::regclass and t.tgname = n.table_name || '_keep_scale'"
        )
    assert rows
    for r in rows:
        assert r["tgname"] is not None, r["table_name"]
        assert " WHEN (" in r["def"] and "scale(new." in r["def"], r["def"]


async def test_the_trigger_still_restores_a_scale_a_writer_left_off(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    async with as_tenant(db, owner) as conn:
        row = await conn.fetchrow(
            "insert into products (sku, name, sale_price, cost_price) values"
            " ('S-1', 'Kuih', 5, 1.500) returning sale_price::text, cost_price::text"
        )
        assert (row["sale_price"], row["cost_price"]) == ("5.00", "1.50")
        updated = await conn.fetchval(
            "update products set sale_price = 7.5 where sku = 'S-1' returning sale_price::text"
        )
        assert updated == "7.50"


async def test_a_sale_writes_every_number_at_its_columns_scale(db: asyncpg.Pool) -> None:
    """Integer and one-decimal inputs, tax and cash rounding: stored and returned at scale."""
    owner = await new_tenant(db, sst_enabled=True, cash_rounding=True)
    kuih = await new_product(db, owner, price="2.5", cost="1", stock=10)
    teh = await new_product(db, owner, price="3.00", cost="0.40", stock=10)
    sale = await call(
        db,
        owner,
        "create_sale",
        items=[line(kuih, 3), line(teh, D("1.5"), unit_price=D("2.1"), discount_amount=1)],
        discount_amount=D("0.53"),
    )
    async with as_tenant(db, owner) as conn:
        stored = await conn.fetchrow(
            "select total_amount::text t, discount_amount::text d, tax_amount::text x,"
            " rounding_amount::text r, final_amount::text f, items_quantity::text q,"
            " cost_amount::text c, items_discount_amount::text i"
            " from sales where id = $1",
            uuid.UUID(sale["id"]),
        )
        items = await conn.fetch(
            "select quantity::text q, unit_price::text p, discount_amount::text d,"
            " tax_amount::text x, subtotal::text s, unit_cost::text c"
            " from sale_items where sale_id = $1 order by line_no",
            uuid.UUID(sale["id"]),
        )
        moves = await conn.fetch(
            "select m.quantity::text q, m.unit_cost::text c, p.current_stock::text s"
            " from stock_movements m join products p on p.id = m.product_id"
            " where m.reference_id = $1 order by m.quantity",
            uuid.UUID(sale["id"]),
        )
    # 3 × 2.50 = 7.50; 1.5 × 2.10 = 3.15 − 1.00 = 2.15; total 9.65, less 0.53;
    # SST 6% on each line less its share (0.41 / 0.12): 0.43 + 0.12 = 0.55 → 9.67, cash 9.65.
    assert dict(stored) == {
        "t": "9.65",
        "d": "0.53",
        "x": "0.55",
        "r": "-0.02",
        "f": "9.65",
        "q": "4.500",
        "c": "3.60",
        "i": "1.00",
    }
    assert [dict(i) for i in items] == [
        {"q": "3.000", "p": "2.50", "d": "0.00", "x": "0.43", "s": "7.50", "c": "1.00"},
        {"q": "1.500", "p": "2.10", "d": "1.00", "x": "0.12", "s": "2.15", "c": "0.40"},
    ]
    assert [dict(m) for m in moves] == [
        {"q": "1.500", "c": "0.40", "s": "8.500"},
        {"q": "3.000", "c": "1.00", "s": "7.000"},
    ]
