"""analytics() against an independent Python computation over generated sales, including
sales a few seconds either side of midnight in Kuala Lumpur and void sales."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from domain.helpers import as_tenant, call, line, new_product, new_tenant
from domain.money_oracle import Line, price_sale, to_sen

D = Decimal
KL = ZoneInfo("Asia/Kuala_Lumpur")
FIGURES = (
    "sales_count",
    "gross_sales",
    "discounts",
    "tax",
    "rounding",
    "net_sales",
    "cogs",
    "gross_profit",
    "margin_pct",
    "average_ticket",
    "items_sold",
)


@dataclass
class Product:
    id: uuid.UUID
    name: str
    price: Decimal
    cost: Decimal
    tax_rate: Decimal


@dataclass
class Sold:
    at: dt.datetime
    channel: str
    method: str
    void: bool
    lines: list[tuple[Product, Decimal, Decimal]]  # product, quantity, line discount
    discount: Decimal
    amounts: Any  # SaleAmounts


def _round2(value: Decimal) -> Decimal:
    return value.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def figures(sales: list[Sold]) -> dict[str, Decimal | int]:
    """The report's figures, computed from what was sold (not from the tables)."""
    count = len(sales)
    gross = sum((to_sen(q * p.price) for s in sales for p, q, _ in s.lines), D(0))
    discounts = sum((d for s in sales for _, _, d in s.lines), D(0)) + sum(
        (s.discount for s in sales), D(0)
    )
    tax = sum((s.amounts.tax_amount for s in sales), D(0))
    rounding = sum((s.amounts.rounding_amount for s in sales), D(0))
    final = sum((s.amounts.final_amount for s in sales), D(0))
    cogs = sum((to_sen(q * p.cost) for s in sales for p, q, _ in s.lines), D(0))
    net = final - tax - rounding
    return {
        "sales_count": count,
        "gross_sales": gross,
        "discounts": discounts,
        "tax": tax,
        "rounding": rounding,
        "net_sales": net,
        "cogs": cogs,
        "gross_profit": net - cogs,
        "margin_pct": _round2((net - cogs) * 100 / net) if net > 0 else D(0),
        "average_ticket": _round2(final / count) if count else D(0),
        "items_sold": sum((q for s in sales for _, q, _ in s.lines), D(0)),
    }


def expected_report(sales: list[Sold], start: dt.date, end: dt.date) -> dict[str, Any]:
    kept = [s for s in sales if not s.void and start <= s.at.astimezone(KL).date() <= end]
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    by_channel: dict[str, list[Sold]] = defaultdict(list)
    by_method: dict[str, list[Sold]] = defaultdict(list)
    per_product: dict[uuid.UUID, list[Any]] = {}
    for s in kept:
        by_channel[s.channel].append(s)
        by_method[s.method].append(s)
        for product, qty, disc in s.lines:
            entry = per_product.setdefault(product.id, [product.name, D(0), D(0)])
            entry[1] += qty
            entry[2] += to_sen(qty * product.price) - disc
    top = [
        {"product_id": str(pid), "product_name": n, "quantity": q, "revenue": r}
        for pid, (n, q, r) in per_product.items()
    ]
    return {
        "totals": figures(kept),
        "by_day": [
            {"date": d.isoformat(), **figures([s for s in kept if s.at.astimezone(KL).date() == d])}
            for d in days
        ],
        "by_channel": [{"channel": c, **figures(v)} for c, v in sorted(by_channel.items())],
        "by_payment_method": [
            {"payment_method": m, **figures(v)} for m, v in sorted(by_method.items())
        ],
        "top_products": {
            "by_revenue": sorted(top, key=lambda t: (-t["revenue"], t["product_id"]))[:10],
            "by_quantity": sorted(top, key=lambda t: (-t["quantity"], t["product_id"]))[:10],
        },
    }


@pytest.mark.parametrize(("seed", "inclusive"), [(1, False), (2, True)])
async def test_analytics_matches_python(db: asyncpg.Pool, seed: int, inclusive: bool) -> None:
    rng = random.Random(seed)
    owner = await new_tenant(db, sst_enabled=seed == 2, prices_include_tax=inclusive)
    products = []
    for n in range(12):
        price = D(rng.randint(100, 2500)) / 100
        cost = _round2(price * D(rng.randint(20, 80)) / 100)
        rate = rng.choice([D(0), D(6), D(10)])
        pid = await new_product(
            db,
            owner,
            price=str(price),
            cost=str(cost),
            stock=10_000,
            name=f"Produk {n:02d}",
            tax_rate=rate,
        )
        products.append(Product(pid, f"Produk {n:02d}", price, cost, rate if seed == 2 else D(0)))

    # The report covers three Kuala Lumpur days; sales land inside, outside and within
    # seconds of each midnight (16:00 UTC).
    start = dt.date(2026, 3, 10)
    end = dt.date(2026, 3, 12)
    midnights = [dt.datetime.combine(start + dt.timedelta(days=n), dt.time(), KL) for n in range(4)]
    moments = [m + dt.timedelta(seconds=s) for m in midnights for s in (-1, 0, 1)]
    moments += [midnights[0] + dt.timedelta(hours=rng.uniform(-30, 80)) for _ in range(25)]

    sold: list[Sold] = []
    for at in moments:
        basket = rng.sample(products, k=rng.randint(1, 3))
        lines = [(p, D(rng.randint(1, 40)) / rng.choice([1, 2, 4]), D(0)) for p in basket]
        lines = [
            (p, q, D(rng.randint(0, 50)) / 100 if to_sen(q * p.price) > 1 else D(0))
            for p, q, _ in lines
        ]
        subtotal = sum((to_sen(q * p.price) - d for p, q, d in lines), D(0))
        discount = _round2(subtotal * D(rng.choice([0, 0, 5, 10])) / 100)
        method = rng.choice(["cash", "cash", "card", "ewallet"])
        channel = rng.choice(["walk-in", "online", "delivery"])
        sale = await call(
            db,
            owner,
            "create_sale",
            items=[line(p.id, q, discount_amount=d) for p, q, d in lines],
            channel=channel,
            payment_method=method,
            discount_amount=discount,
        )
        async with db.acquire() as conn:  # back-date it, as the owner
            await conn.execute(
                "update sales set created_at = $2 where id = $1", uuid.UUID(sale["id"]), at
            )
        void = rng.random() < 0.15
        if void:
            await call(db, owner, "void_sale", sale_id=uuid.UUID(sale["id"]), reason="test")
        amounts = price_sale(
            [Line(q, p.price, d, p.tax_rate) for p, q, d in lines],
            discount,
            prices_include_tax=inclusive,
            cash_rounding_applies=method == "cash",
        )
        assert sale["final_amount"] == amounts.final_amount
        sold.append(Sold(at, channel, method, void, lines, discount, amounts))

    report = await call(db, owner, "analytics", start_date=start, end_date=end)
    expected = expected_report(sold, start, end)

    assert report["start_date"] == "2026-03-10" and report["timezone"] == "Asia/Kuala_Lumpur"
    assert report["totals"] == expected["totals"]
    assert report["by_day"] == expected["by_day"]
    assert report["by_channel"] == expected["by_channel"]
    assert report["by_payment_method"] == expected["by_payment_method"]
    assert report["top_products"] == expected["top_products"]
    assert expected["totals"]["sales_count"] > 10  # the generator did produce a real sample

    # The sale one second before the first midnight is outside; the one at midnight is in.
    edge = await call(db, owner, "analytics", start_date=start, end_date=start)
    first_day = [s for s in sold if not s.void and s.at.astimezone(KL).date() == start]
    assert edge["totals"]["sales_count"] == len(first_day)
    assert edge["by_day"] == [expected["by_day"][0]]

    # Ranges past 92 days take the other plan for top products; same answers.
    wide_start, wide_end = start - dt.timedelta(days=60), end + dt.timedelta(days=60)
    wide = await call(db, owner, "analytics", start_date=wide_start, end_date=wide_end)
    expected_wide = expected_report(sold, wide_start, wide_end)
    assert (wide_end - wide_start).days > 92
    assert wide["totals"] == expected_wide["totals"]
    assert wide["top_products"] == expected_wide["top_products"]


async def test_empty_range_has_every_day_and_low_stock(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    low = await new_product(db, owner, stock=2, reorder_level=D(2), name="Gula")
    await new_product(db, owner, stock=5, reorder_level=D(2), name="Tepung")
    await new_product(db, owner, stock=0, reorder_level=D(3), name="Lama", is_active=False)
    lower = await new_product(db, owner, stock=1, reorder_level=D(4), name="Santan")

    report = await call(
        db, owner, "analytics", start_date=dt.date(2026, 2, 27), end_date=dt.date(2026, 3, 2)
    )

    assert [d["date"] for d in report["by_day"]] == [
        "2026-02-27",
        "2026-02-28",
        "2026-03-01",
        "2026-03-02",
    ]
    assert all(d["sales_count"] == 0 and d["net_sales"] == 0 for d in report["by_day"])
    assert {k: report["totals"][k] for k in FIGURES} == dict.fromkeys(FIGURES, 0)
    assert report["by_channel"] == [] and report["top_products"]["by_revenue"] == []
    assert [(p["product_id"], p["name"]) for p in report["low_stock"]] == [
        (str(lower), "Santan"),
        (str(low), "Gula"),
    ]


async def test_bad_ranges_are_refused(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    for start, end in [
        (dt.date(2026, 3, 2), dt.date(2026, 3, 1)),
        (dt.date(2024, 1, 1), dt.date(2026, 1, 3)),
    ]:
        with pytest.raises(asyncpg.PostgresError) as refused:
            await call(db, owner, "analytics", start_date=start, end_date=end)
        assert refused.value.sqlstate == "22023"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with as_tenant(db, owner) as conn:
            await conn.execute("select set_config('request.jwt.claims', '{}', true)")
            await conn.fetchval("select analytics(current_date, current_date)")
