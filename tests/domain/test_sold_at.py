"""create_sale's sold_at (issue 9): a sale made offline and replayed later is dated when it
happened — its created_at, its day in analytics, its sale-number period — within a window
(at most 5 minutes ahead, at most 7 days back); idempotency by client_ref covers sold_at; and
there is one create_sale, callable through the official client with and without it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from domain.helpers import as_tenant, call, line, new_product, new_tenant
from postgrest import APIError

KL = ZoneInfo("Asia/Kuala_Lumpur")


async def server_now(db: asyncpg.Pool) -> dt.datetime:
    # The database's clock decides the window, not the test machine's.
    now: dt.datetime = await db.fetchval("select now()")
    return now


async def test_a_replayed_sale_lands_on_its_day_and_in_its_period(db: asyncpg.Pool) -> None:
    owner = await new_tenant(
        db, timezone="Asia/Kuala_Lumpur", sale_number_format="S{YYYY}{MM}-{SEQ}"
    )
    kuih = await new_product(db, owner, price="2.50", stock=10)
    # Late evening, three days ago, in the shop's time zone: a UTC date would be a day earlier.
    local = (await server_now(db)).astimezone(KL) - dt.timedelta(days=3)
    sold_at = local.replace(hour=23, minute=30, second=5, microsecond=250000)

    sale = await call(db, owner, "create_sale", items=[line(kuih, 2)], sold_at=sold_at)

    assert dt.datetime.fromisoformat(sale["created_at"]) == sold_at
    assert sale["sale_number"] == f"S{sold_at:%Y%m}-000001"
    async with as_tenant(db, owner) as conn:
        stored = await conn.fetchval("select created_at from sales where id = $1", sale["id"])
        period = await conn.fetchval("select period from sale_number_counters")
    assert stored == sold_at
    assert period == f"{sold_at:%Y-%m}"
    report = await call(
        db,
        owner,
        "analytics",
        start_date=sold_at.date() - dt.timedelta(days=1),
        end_date=sold_at.date() + dt.timedelta(days=1),
    )
    assert [(d["date"], d["sales_count"]) for d in report["by_day"]] == [
        ((sold_at.date() - dt.timedelta(days=1)).isoformat(), 0),
        (sold_at.date().isoformat(), 1),
        ((sold_at.date() + dt.timedelta(days=1)).isoformat(), 0),
    ]
    assert Decimal(str(report["totals"]["net_sales"])) == Decimal("5.00")


async def test_without_sold_at_the_sale_is_dated_now(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    kuih = await new_product(db, owner, stock=5)
    async with as_tenant(db, owner) as conn:
        sale = await conn.fetchval(
            "select public.create_sale(items => $1, sold_at => null)", [line(kuih, 1)]
        )
        now = await conn.fetchval("select now()")
    assert dt.datetime.fromisoformat(sale["created_at"]) == now


@pytest.mark.parametrize(
    ("offset", "wording"),
    [
        (dt.timedelta(minutes=10), "is in the future"),
        (dt.timedelta(days=-7, minutes=-1), "is more than 7 days ago"),
    ],
)
async def test_sold_at_outside_the_window_is_refused(
    db: asyncpg.Pool, offset: dt.timedelta, wording: str
) -> None:
    owner = await new_tenant(db)
    kuih = await new_product(db, owner, stock=5)
    with pytest.raises(asyncpg.PostgresError) as refused:
        await call(
            db, owner, "create_sale", items=[line(kuih, 1)], sold_at=await server_now(db) + offset
        )
    assert refused.value.sqlstate == "22023"
    assert "sold_at" in str(refused.value) and wording in str(refused.value)
    async with as_tenant(db, owner) as conn:
        assert await conn.fetchval("select count(*) from sales") == 0
        assert await conn.fetchval("select current_stock from products") == 5


async def test_a_device_clock_slightly_fast_is_recorded_as_now(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    kuih = await new_product(db, owner, stock=5)
    ahead = await server_now(db) + dt.timedelta(minutes=4)
    async with as_tenant(db, owner) as conn:
        sale = await conn.fetchval(
            "select public.create_sale(items => $1, sold_at => $2)", [line(kuih, 1)], ahead
        )
        now = await conn.fetchval("select now()")
    # Never dated after it was recorded.
    assert dt.datetime.fromisoformat(sale["created_at"]) == now


async def test_client_ref_retry_matches_only_the_same_sold_at(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    kuih = await new_product(db, owner, stock=10)
    ref = uuid.uuid4()
    sold_at = (await server_now(db) - dt.timedelta(hours=5)).astimezone(dt.UTC)
    first = await call(
        db, owner, "create_sale", items=[line(kuih, 1)], client_ref=ref, sold_at=sold_at
    )

    # The same instant written in another zone is the same body: the first sale comes back.
    again = await call(
        db,
        owner,
        "create_sale",
        items=[line(kuih, 1)],
        client_ref=ref,
        sold_at=sold_at.astimezone(KL),
    )
    assert again == first

    for other in ({"sold_at": sold_at + dt.timedelta(seconds=1)}, {}):
        with pytest.raises(asyncpg.PostgresError) as refused:
            await call(db, owner, "create_sale", items=[line(kuih, 1)], client_ref=ref, **other)
        assert refused.value.sqlstate == "PT409"
    async with as_tenant(db, owner) as conn:
        assert await conn.fetchval("select count(*) from sales") == 1


async def test_a_call_without_sold_at_hashes_as_before(db: asyncpg.Pool) -> None:
    # A client_ref recorded before sold_at existed must still match its retry: the hash of a
    # call without it is the one the previous definition wrote (no sold_at key at all).
    owner = await new_tenant(db)
    kuih = await new_product(db, owner, stock=10)
    ref = uuid.uuid4()
    sale = await call(db, owner, "create_sale", items=[line(kuih, 1)], client_ref=ref)
    async with as_tenant(db, owner) as conn:
        stored = await conn.fetchval("select request_hash from sales where id = $1", sale["id"])
    expected = await db.fetchval(
        """
        select md5(jsonb_build_object(
            'items', jsonb_build_array(jsonb_build_object(
                'product_id', $1::uuid, 'quantity', 1, 'unit_price', null,
                'discount_amount', 0)),
            'channel', 'walk-in', 'customer_id', null, 'discount_amount', 0,
            'payment_method', 'cash', 'payment_status', 'paid', 'notes', null)::text)
        """,
        kuih,
    )
    assert stored == expected


async def test_there_is_one_create_sale_with_its_rights_and_description(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        """
        select p.oid::regprocedure::text as signature, pg_get_userbyid(p.proowner) as owner,
               obj_description(p.oid, 'pg_proc') as description,
               has_function_privilege('authenticated', p.oid, 'execute') as authenticated,
               has_function_privilege('service_role', p.oid, 'execute') as service_role,
               has_function_privilege('anon', p.oid, 'execute') as anon
        from pg_proc p
        where p.proname = 'create_sale' and p.pronamespace = 'public'::regnamespace
        """
    )
    assert len(rows) == 1
    row = rows[0]
    assert row["signature"] == (
        "create_sale(jsonb,text,uuid,numeric,text,text,text,uuid,timestamp with time zone)"
    )
    assert row["owner"] == "pb_definer"
    assert (row["authenticated"], row["service_role"], row["anon"]) == (True, True, False)
    assert row["description"].startswith(
        "Record a sale atomically: lines, totals, sale number and stock movements\n"
    )
    assert "sold_at" in row["description"]


def test_the_official_client_calls_it_with_and_without_sold_at(
    make_user: Callable[..., Any],
) -> None:
    user = make_user()
    product = (
        user.client.table("products")
        .insert({"sku": "KL-1", "name": "Kuih lapis", "sale_price": "2.50", "cost_price": "1"})
        .execute()
        .data[0]
    )
    user.client.rpc(
        "record_purchase", {"product_id": product["id"], "quantity": 10, "unit_cost": "1"}
    ).execute()
    items = [{"product_id": product["id"], "quantity": 1}]

    now_sale = user.client.rpc("create_sale", {"items": items}).execute().data
    # The app sends the device's time as ISO 8601 with its offset.
    made = (dt.datetime.now(KL) - dt.timedelta(days=2)).replace(microsecond=123000)
    ref = str(uuid.uuid4())
    body = {"items": items, "client_ref": ref, "sold_at": made.isoformat()}
    late = user.client.rpc("create_sale", body).execute().data
    again = user.client.rpc("create_sale", body).execute().data

    assert dt.datetime.fromisoformat(late["created_at"]) == made
    assert again["id"] == late["id"]
    assert dt.datetime.fromisoformat(now_sale["created_at"]) > made
    read = user.client.table("sales").select("id, created_at").eq("id", late["id"]).execute()
    assert dt.datetime.fromisoformat(read.data[0]["created_at"]) == made

    with pytest.raises(APIError) as refused:
        user.client.rpc(
            "create_sale",
            {"items": items, "sold_at": (made - dt.timedelta(days=6)).isoformat()},
        ).execute()
    assert refused.value.code == "22023"
    assert refused.value.message is not None and "sold_at" in refused.value.message
