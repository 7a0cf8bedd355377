"""analytics() runs its report query on one generic plan per session when the day cache leaves at
most 3 days to compute live, and plans it per call otherwise (definitions/analytics/analytics.sql,
issue 12.3). A session's plan is built for whichever tenant and range came first and then serves
every other: the answers must be each call's own, whichever path a session took before, and the
switch must not outlive the call."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from domain.helpers import as_tenant, call, init_connection, line, new_product, new_tenant

D = Decimal
KL = ZoneInfo("Asia/Kuala_Lumpur")


async def _history(db: asyncpg.Pool, owner: uuid.UUID, sales: int, seed: int) -> None:
    """`sales` sales spread over the last 400 days (re-dated as the owner), a few voided."""
    rng = random.Random(seed)
    products = [
        await new_product(db, owner, price=f"{rng.randint(100, 2500) / 100:.2f}", stock=100_000)
        for _ in range(4)
    ]
    now = dt.datetime.now(dt.UTC)
    for n in range(sales):
        basket = rng.sample(products, k=rng.randint(1, 3))
        sale = await call(
            db,
            owner,
            "create_sale",
            items=[line(p, rng.randint(1, 5)) for p in basket],
            payment_method=rng.choice(["cash", "card"]),
        )
        if n % 3:  # a third stay today: the days computed live
            async with db.acquire() as conn:
                await conn.execute(
                    "update sales set created_at = $2 where id = $1",
                    uuid.UUID(sale["id"]),
                    now - dt.timedelta(hours=rng.uniform(3, 400 * 24)),
                )
        if n % 7 == 0:
            await call(db, owner, "void_sale", sale_id=uuid.UUID(sale["id"]), reason="test")


async def _totals(db: asyncpg.Pool, owner: uuid.UUID, start: dt.date, end: dt.date) -> Any:
    """The completed sales' count and net sales in [start, end] (Kuala Lumpur days), read from
    the sales table as the owner."""
    async with db.acquire() as conn:
        return await conn.fetchrow(
            "select count(*) as n, coalesce(sum(final_amount - tax_amount - rounding_amount), 0)"
            " as net from sales where business_owner_id = $1 and status = 'completed'"
            " and created_at >= $2 and created_at < $3",
            owner,
            dt.datetime.combine(start, dt.time(), KL),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), KL),
        )


async def _live_in_a_new_session(
    owner_dsn: str, owner: uuid.UUID, start: dt.date, end: dt.date
) -> Any:
    """The same report with every day computed live, by a session that ran nothing before."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        await init_connection(conn)
        async with as_tenant(conn, owner):
            await conn.execute("set local pb.analytics_cache = 'off'")
            return await conn.fetchval("select public.analytics($1, $2)", start, end)
    finally:
        await conn.close()


async def test_one_session_answers_every_tenant_and_range_with_its_own_figures(
    db: asyncpg.Pool, owner_dsn: str
) -> None:
    shops = [await new_tenant(db), await new_tenant(db)]
    await _history(db, shops[0], 45, seed=1)
    await _history(db, shops[1], 12, seed=2)
    today = dt.datetime.now(KL).date()
    # Short live parts (the generic plan) and long ones (planned per call: the cache off, or a
    # range reaching 10 days into the future), alternating tenants and both ways in one session,
    # more than five times each (past the point where PostgreSQL would weigh a generic plan on
    # its own).
    ranges = [(29, 0), (0, 0), (364, 0), (6, 0), (120, 0), (2, 0), (29, -10)]
    compared = 0
    async with db.acquire() as session:
        for back, ahead in ranges * 2:
            start = today - dt.timedelta(days=back)
            end = today - dt.timedelta(days=ahead)
            for owner in shops:
                expected = await _live_in_a_new_session(owner_dsn, owner, start, end)
                totals = await _totals(db, owner, start, end)
                assert expected["totals"]["sales_count"] == totals["n"], (owner, start, end)
                assert expected["totals"]["net_sales"] == totals["net"], (owner, start, end)
                for cache in ("on", "off"):
                    async with as_tenant(session, owner):
                        await session.execute(f"set local pb.analytics_cache = '{cache}'")
                        report = await session.fetchval(
                            "select public.analytics($1, $2)", start, end
                        )
                    assert report == expected, (owner, start, end, cache)
                    compared += 1
    assert compared == len(ranges) * 2 * 2 * 2


async def test_the_plan_setting_is_the_callers_again_after_the_call(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    await _history(db, owner, 6, seed=3)
    today = dt.datetime.now(KL).date()
    async with as_tenant(db, owner) as conn:
        await conn.execute("set local plan_cache_mode = auto")
        # The generic path (the cache serves all but today) and the planned one (cache off).
        for back, cache in ((29, "on"), (364, "off")):
            start = today - dt.timedelta(days=back)
            await conn.execute(f"set local pb.analytics_cache = '{cache}'")
            report = await conn.fetchval("select public.analytics($1, $2)", start, today)
            assert report["totals"]["sales_count"] == (await _totals(db, owner, start, today))["n"]
            assert await conn.fetchval("select current_setting('plan_cache_mode')") == "auto"
