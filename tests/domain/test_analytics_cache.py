"""analytics()'s cache of closed days (migration 0023, definitions/analytics/analytics_cache.sql)
against the live computation: the same function with pb.analytics_cache off, which neither
reads nor fills the cache. Random histories over the last seven weeks in several time zones, with
voids, back-dated and re-dated sales, deleted sales and a change of time zone between calls."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from domain.helpers import as_tenant, call, line, new_product, new_tenant

D = Decimal


async def _live(db: asyncpg.Pool, owner: uuid.UUID, start: dt.date, end: dt.date) -> Any:
    """analytics() computed from the tables alone (pb.analytics_cache off: every day live)."""
    claims = json.dumps({"sub": str(owner), "role": "authenticated"})
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(
            "select set_config('role', 'authenticated', true),"
            " set_config('request.jwt.claims', $1, true),"
            " set_config('pb.analytics_cache', 'off', true)",
            claims,
        )
        return await conn.fetchval("select public.analytics($1, $2)", start, end)


async def _cached_days(db: asyncpg.Pool, owner: uuid.UUID) -> int:
    async with db.acquire() as conn:
        n: int = await conn.fetchval(
            "select count(*) from pb_internal.analytics_days where business_owner_id = $1", owner
        )
        return n


async def _compare(db: asyncpg.Pool, owner: uuid.UUID, rng: random.Random, today: dt.date) -> int:
    """Several random ranges: analytics() (filling and reading the cache) equals the live
    computation, twice (the second call reads what the first filled)."""
    compared = 0
    for _ in range(4):
        start = today - dt.timedelta(days=rng.randint(0, 50))
        end = min(today, start + dt.timedelta(days=rng.randint(0, 40)))
        for _ in range(2):
            cached = await call(db, owner, "analytics", start_date=start, end_date=end)
            live = await _live(db, owner, start, end)
            assert cached == live, (start, end)
            compared += 1
    return compared


async def _sell(
    db: asyncpg.Pool, owner: uuid.UUID, products: list[uuid.UUID], rng: random.Random
) -> uuid.UUID:
    basket = rng.sample(products, k=rng.randint(1, 3))
    sale = await call(
        db,
        owner,
        "create_sale",
        items=[line(p, D(rng.randint(1, 12)) / rng.choice([1, 2, 4])) for p in basket],
        channel=rng.choice(["walk-in", "online", "delivery"]),
        payment_method=rng.choice(["cash", "card", "ewallet"]),
        # Within create_sale's own window: up to 7 days back, open days only.
        sold_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=rng.uniform(0, 7 * 24 - 1)),
    )
    return uuid.UUID(sale["id"])


async def _redate(db: asyncpg.Pool, sale: uuid.UUID, at: dt.datetime) -> None:
    """History older than create_sale's window, written as the owner."""
    async with db.acquire() as conn:
        await conn.execute("update sales set created_at = $2 where id = $1", sale, at)


@pytest.mark.parametrize(
    ("seed", "zone"),
    [
        (1, "Asia/Kuala_Lumpur"),
        (2, "America/New_York"),  # a DST change falls inside the seven weeks at some dates
        (3, "Pacific/Chatham"),  # +12:45/+13:45: days that start at odd UTC times
        (4, "UTC"),
    ],
)
async def test_cached_analytics_equal_the_live_computation(
    db: asyncpg.Pool, seed: int, zone: str
) -> None:
    rng = random.Random(seed)
    owner = await new_tenant(db, timezone=zone)
    products = [
        await new_product(db, owner, price=f"{rng.randint(100, 2500) / 100:.2f}", stock=100_000)
        for _ in range(6)
    ]
    now = dt.datetime.now(dt.UTC)
    today = now.astimezone(ZoneInfo(zone)).date()

    sales: list[uuid.UUID] = []
    for _ in range(40):
        sale = await _sell(db, owner, products, rng)
        if rng.random() < 0.7:  # most of the history is older than the sold_at window
            await _redate(db, sale, now - dt.timedelta(hours=rng.uniform(0, 50 * 24)))
        sales.append(sale)
    assert await _cached_days(db, owner) == 0
    compared = await _compare(db, owner, rng, today)
    assert await _cached_days(db, owner) > 0  # the calls above did fill the cache

    # Changes after the fill: voids (of closed days too), sales re-dated from one closed day to
    # another, a deleted sale, new sales (back-dated up to 7 days, into closed days too), more
    # history.
    for sale in rng.sample(sales, 8):
        await call(db, owner, "void_sale", sale_id=sale, reason="test")
    for sale in rng.sample(sales, 5):
        await _redate(db, sale, now - dt.timedelta(hours=rng.uniform(9 * 24, 50 * 24)))
    async with db.acquire() as conn:
        await conn.execute("delete from sales where id = $1", sales[0])
    for _ in range(10):
        sale = await _sell(db, owner, products, rng)
        if rng.random() < 0.5:
            await _redate(db, sale, now - dt.timedelta(hours=rng.uniform(0, 50 * 24)))
    compared += await _compare(db, owner, rng, today)

    # Another time zone: the days are other days; the old zone's rows are never read.
    async with db.acquire() as conn:
        await conn.execute(
            "update business_profiles set timezone = 'Asia/Kolkata' where business_owner_id = $1",
            owner,
        )
    compared += await _compare(db, owner, rng, now.astimezone(ZoneInfo("Asia/Kolkata")).date())
    assert compared == 24


async def _day_sales(db: asyncpg.Pool, owner: uuid.UUID) -> list[asyncpg.Record]:
    async with db.acquire() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            "select * from pb_internal.analytics_day_sales where business_owner_id = $1"
            " order by day",
            owner,
        )
        return rows


async def test_an_ordinary_sale_leaves_the_cache_alone(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=100)
    old = await call(db, owner, "create_sale", items=[line(product, 2)])
    await _redate(db, uuid.UUID(old["id"]), dt.datetime.now(dt.UTC) - dt.timedelta(days=20))
    today = dt.datetime.now(ZoneInfo("Asia/Kuala_Lumpur")).date()
    start = today - dt.timedelta(days=30)
    before = await call(db, owner, "analytics", start_date=start, end_date=today)
    cached = await _day_sales(db, owner)
    assert [r["sales_count"] for r in cached] == [1]
    days = await _cached_days(db, owner)

    # Dated now, or less than an hour back (a device clock, a short offline spell).
    await call(db, owner, "create_sale", items=[line(product, 1)])
    await call(
        db,
        owner,
        "create_sale",
        items=[line(product, 1)],
        sold_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=50),
    )
    assert await _day_sales(db, owner) == cached
    assert await _cached_days(db, owner) == days
    after = await call(db, owner, "analytics", start_date=start, end_date=today)
    assert after["totals"]["sales_count"] == before["totals"]["sales_count"] + 2
    assert after == await _live(db, owner, start, today)


async def test_a_sale_dated_into_a_closed_day_forgets_it(db: asyncpg.Pool) -> None:
    """An offline sale replayed days later lands in a day already cached."""
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=100)
    today = dt.datetime.now(ZoneInfo("Asia/Kuala_Lumpur")).date()
    start = today - dt.timedelta(days=10)
    empty = await call(db, owner, "analytics", start_date=start, end_date=today)
    assert empty["totals"]["sales_count"] == 0
    days = await _cached_days(db, owner)
    assert days >= 9

    when = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    await call(db, owner, "create_sale", items=[line(product, 1)], sold_at=when)
    assert await _cached_days(db, owner) == days - 1  # that day only
    report = await call(db, owner, "analytics", start_date=start, end_date=today)
    assert report["totals"]["sales_count"] == 1
    day = when.astimezone(ZoneInfo("Asia/Kuala_Lumpur")).date().isoformat()
    assert [d["date"] for d in report["by_day"] if d["sales_count"]] == [day]
    assert report == await _live(db, owner, start, today)
    assert await _cached_days(db, owner) == days


async def test_a_fill_waits_for_a_void_in_progress_and_sees_it(db: asyncpg.Pool) -> None:
    """The void's trigger holds the tenant's analytics lock until it commits; a fill that
    starts meanwhile waits, then computes from a snapshot that includes the void."""
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=100)
    sale = await call(db, owner, "create_sale", items=[line(product, 2)])
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
    await _redate(db, uuid.UUID(sale["id"]), old)
    day = old.astimezone(ZoneInfo("Asia/Kuala_Lumpur")).date()

    async with as_tenant(db, owner) as voiding:
        await voiding.fetchval("select public.void_sale($1, 'wrong till')", uuid.UUID(sale["id"]))
        report = asyncio.create_task(call(db, owner, "analytics", start_date=day, end_date=day))
        await asyncio.sleep(0.5)
        assert not report.done()  # waiting for the void's lock
    done = await asyncio.wait_for(report, 30)
    assert done["totals"]["sales_count"] == 0
    assert await _cached_days(db, owner) == 1
    assert done == await _live(db, owner, day, day)


async def test_clients_cannot_reach_the_cache(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    for table in ("analytics_days", "analytics_day_sales", "analytics_day_products"):
        async with as_tenant(db, owner) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"select * from pb_internal.{table}")


async def test_a_read_only_call_computes_live_and_fills_nothing(db: asyncpg.Pool) -> None:
    """GET /rest/v1/rpc/analytics runs read-only: the missing days are computed live."""
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=100)
    sale = await call(db, owner, "create_sale", items=[line(product, 2)])
    await _redate(db, uuid.UUID(sale["id"]), dt.datetime.now(dt.UTC) - dt.timedelta(days=20))
    today = dt.datetime.now(ZoneInfo("Asia/Kuala_Lumpur")).date()
    start = today - dt.timedelta(days=30)
    claims = json.dumps({"sub": str(owner), "role": "authenticated"})
    async with db.acquire() as conn, conn.transaction(readonly=True):
        await conn.execute(
            "select set_config('role', 'authenticated', true),"
            " set_config('request.jwt.claims', $1, true)",
            claims,
        )
        report = await conn.fetchval("select public.analytics($1, $2)", start, today)
    assert report["totals"]["sales_count"] == 1
    assert await _cached_days(db, owner) == 0
    assert report == await call(db, owner, "analytics", start_date=start, end_date=today)
    # The closed days of the range: those that ended more than 2 hours ago.
    now = dt.datetime.now(ZoneInfo("Asia/Kuala_Lumpur"))
    last_closed = (now - dt.timedelta(hours=2)).date() - dt.timedelta(days=1)
    assert await _cached_days(db, owner) == (last_closed - start).days + 1
