"""create_sale / void_sale at the SQL level: amounts, numbering, stock, errors, plan limits,
idempotency and tenant isolation. Calls run as `authenticated`, committed."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import pytest
from domain.helpers import as_tenant, call, line, new_product, new_tenant
from domain.money_oracle import Line, cash_rounding, price_sale

D = Decimal


async def stock_of(pool: asyncpg.Pool, owner: uuid.UUID, product: uuid.UUID) -> Decimal:
    async with as_tenant(pool, owner) as conn:
        value: Decimal = await conn.fetchval(
            "select current_stock from products where id = $1", product
        )
    return value


async def counts(pool: asyncpg.Pool, owner: uuid.UUID) -> tuple[int, int, int]:
    async with as_tenant(pool, owner) as conn:
        row = await conn.fetchrow(
            "select (select count(*) from sales) s, (select count(*) from sale_items) i,"
            " (select count(*) from stock_movements) m"
        )
    return (row["s"], row["i"], row["m"])


async def test_sale_writes_items_movements_and_returns_the_contract(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    kuih = await new_product(db, owner, price="2.50", cost="1.10", stock=10, name="Kuih lapis")
    teh = await new_product(db, owner, price="1.99", cost="0.40", stock=5, name="Teh tarik")

    sale = await call(
        db,
        owner,
        "create_sale",
        items=[line(kuih, 3), line(teh, D("1.5"), discount_amount=D("0.10"))],
        channel="delivery",
        payment_method="card",
    )

    assert set(sale) >= {
        "id",
        "sale_number",
        "channel",
        "customer_id",
        "total_amount",
        "discount_amount",
        "tax_amount",
        "rounding_amount",
        "final_amount",
        "payment_method",
        "payment_status",
        "client_ref",
        "created_at",
        "items",
    }
    assert sale["channel"] == "delivery" and sale["payment_status"] == "paid"
    assert [i["product_name"] for i in sale["items"]] == ["Kuih lapis", "Teh tarik"]
    assert [i["subtotal"] for i in sale["items"]] == [D("7.50"), D("2.89")]
    # card: no cash rounding
    assert (sale["total_amount"], sale["rounding_amount"], sale["final_amount"]) == (
        D("10.39"),
        D("0.00"),
        D("10.39"),
    )
    assert await stock_of(db, owner, kuih) == D("7")
    assert await stock_of(db, owner, teh) == D("3.5")
    async with as_tenant(db, owner) as conn:
        moves = await conn.fetch(
            "select product_id, movement_type, quantity, unit_cost from stock_movements"
            " where reference_type = 'sale' and reference_id = $1 order by quantity",
            uuid.UUID(sale["id"]),
        )
        costs = await conn.fetch(
            "select unit_cost from sale_items where sale_id = $1 order by line_no",
            uuid.UUID(sale["id"]),
        )
    assert [
        (m["product_id"], m["movement_type"], m["quantity"], m["unit_cost"]) for m in moves
    ] == [(teh, "out", D("1.5"), D("0.40")), (kuih, "out", D("3"), D("1.10"))]
    assert [c["unit_cost"] for c in costs] == [D("1.10"), D("0.40")]


async def test_sale_numbers_are_per_tenant_gapless_and_follow_the_format(
    db: asyncpg.Pool,
) -> None:
    a = await new_tenant(db)
    b = await new_tenant(db, sale_number_format="KB{YY}{MM}-{SEQ}", sale_number_digits=3)
    pa = await new_product(db, a, stock=10)
    pb = await new_product(db, b, stock=10)

    numbers_a = [
        (await call(db, a, "create_sale", items=[line(pa)]))["sale_number"] for _ in range(3)
    ]
    # A refused sale between two good ones does not burn a number.
    with pytest.raises(asyncpg.PostgresError):
        await call(db, b, "create_sale", items=[line(pb, 99)])
    numbers_b = [
        (await call(db, b, "create_sale", items=[line(pb)]))["sale_number"] for _ in range(2)
    ]

    async with db.acquire() as conn:
        year, yymm = await conn.fetchval(
            "select array[to_char(now() at time zone 'Asia/Kuala_Lumpur', 'YYYY'),"
            " to_char(now() at time zone 'Asia/Kuala_Lumpur', 'YYMM')]"
        )
    assert numbers_a == [f"INV-{year}-00000{n}" for n in (1, 2, 3)]
    assert numbers_b == [f"KB{yymm}-001", f"KB{yymm}-002"]

    # The counter restarts per period: yearly for {YYYY}, monthly with {MM}. Last year's (or
    # last month's) counter is left alone; this period's continues.
    async with db.acquire() as conn:
        periods = await conn.fetch(
            "select business_owner_id, period, last_value from sale_number_counters"
            " where business_owner_id = any($1::uuid[]) order by last_value",
            [a, b],
        )
        assert [(r["business_owner_id"], r["period"], r["last_value"]) for r in periods] == [
            (b, f"{year}-{yymm[2:]}", 2),
            (a, year, 3),
        ]
        await conn.execute(
            "insert into sale_number_counters (business_owner_id, period, last_value)"
            " values ($1, $2, 41)",
            a,
            str(int(year) - 1),
        )
        await conn.execute(
            "update sale_number_counters set last_value = 122 where business_owner_id = $1"
            " and period = $2",
            a,
            year,
        )
    following = await call(db, a, "create_sale", items=[line(pa)])
    assert following["sale_number"] == f"INV-{year}-000123"


@pytest.mark.parametrize(
    ("total", "adjustment"),
    [
        ("82.00", "0.00"),
        ("82.01", "-0.01"),
        ("82.02", "-0.02"),
        ("82.03", "0.02"),
        ("82.04", "0.01"),
        ("82.05", "0.00"),
        ("82.06", "-0.01"),
        ("82.07", "-0.02"),
        ("82.08", "0.02"),
        ("82.09", "0.01"),
    ],
)
async def test_cash_rounding_table(db: asyncpg.Pool, total: str, adjustment: str) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, price=total, stock=2)
    cash = await call(db, owner, "create_sale", items=[line(product)])
    card = await call(db, owner, "create_sale", items=[line(product)], payment_method="ewallet")
    assert cash["rounding_amount"] == D(adjustment) == cash_rounding(D(total))
    assert cash["final_amount"] == D(total) + D(adjustment)
    assert (card["rounding_amount"], card["final_amount"]) == (D("0.00"), D(total))


@pytest.mark.parametrize("inclusive", [False, True])
async def test_tax_and_discounts_exact_to_the_sen(db: asyncpg.Pool, inclusive: bool) -> None:
    owner = await new_tenant(db, sst_enabled=True, sst_rate=D("6"), prices_include_tax=inclusive)
    bread = await new_product(db, owner, price="3.33", stock=100)
    cake = await new_product(db, owner, price="12.90", stock=100, tax_rate=D("10"))
    exempt = await new_product(db, owner, price="4.45", stock=100, tax_rate=D("0"))
    items = [
        line(bread, D("2.5"), discount_amount=D("0.33")),
        line(cake, 3),
        line(exempt, 1, discount_amount=D("0.45")),
        line(bread, 1, unit_price=D("3.00")),
    ]

    sale = await call(db, owner, "create_sale", items=items, discount_amount=D("1.37"))

    expected = price_sale(
        [
            Line(D("2.5"), D("3.33"), D("0.33"), D("6")),
            Line(D("3"), D("12.90"), D("0"), D("10")),
            Line(D("1"), D("4.45"), D("0.45"), D("0")),
            Line(D("1"), D("3.00"), D("0"), D("6")),
        ],
        D("1.37"),
        prices_include_tax=inclusive,
        cash_rounding_applies=True,
    )
    assert [i["subtotal"] for i in sale["items"]] == expected.line_subtotals
    assert [i["tax_amount"] for i in sale["items"]] == expected.line_taxes
    assert sale["total_amount"] == expected.total_amount == D("53.70")
    assert sale["discount_amount"] == D("1.37")
    assert sale["tax_amount"] == expected.tax_amount
    assert sale["rounding_amount"] == expected.rounding_amount
    assert sale["final_amount"] == expected.final_amount
    # Worked by hand: subtotals 8.00/38.70/4.00/3.00 (2.5 x 3.33 = 8.325 -> 8.33, less 0.33);
    # 1.37 shared by subtotal is 20.4/98.7/10.2/7.65 sen -> floors 20/98/10/7, the two missing
    # sen go to the largest remainders (.73, .65) -> 0.20/0.99/0.10/0.08.
    if inclusive:
        # 7.80x6/106 = 0.4415, 37.71x10/110 = 3.4282, 2.92x6/106 = 0.1653
        assert expected.line_taxes == [D("0.44"), D("3.43"), D("0.00"), D("0.17")]
        assert sale["final_amount"] == D("52.35")  # 52.33 rounds up to 52.35
    else:
        # 7.80x6% = 0.468, 37.71x10% = 3.771, 2.92x6% = 0.1752
        assert expected.line_taxes == [D("0.47"), D("3.77"), D("0.00"), D("0.18")]
        assert sale["final_amount"] == D("56.75")  # 53.70 - 1.37 + 4.42, already on 5 sen


async def test_sst_is_off_by_default(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, price="10.00", stock=1, tax_rate=D("10"))
    sale = await call(db, owner, "create_sale", items=[line(product)])
    assert (sale["tax_amount"], sale["final_amount"]) == (D("0.00"), D("10.00"))


async def test_negative_stock_policy_block_allow_and_override(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    blocked = await new_product(db, owner, stock=2, name="Roti canai")
    allowed = await new_product(db, owner, stock=0, negative_stock_policy="allow")

    with pytest.raises(asyncpg.PostgresError) as refused:
        await call(db, owner, "create_sale", items=[line(blocked, 2), line(allowed), line(blocked)])
    assert refused.value.sqlstate == "PT422"
    assert "Roti canai" in str(refused.value)
    assert await counts(db, owner) == (0, 0, 1)  # only the opening purchase
    await call(db, owner, "create_sale", items=[line(allowed, 3)])
    assert await stock_of(db, owner, allowed) == D("-3")

    relaxed = await new_tenant(db, negative_stock_policy="allow")
    anything = await new_product(db, relaxed, stock=0)
    strict = await new_product(db, relaxed, stock=0, negative_stock_policy="block")
    await call(db, relaxed, "create_sale", items=[line(anything, 2)])
    with pytest.raises(asyncpg.PostgresError, match="insufficient stock"):
        await call(db, relaxed, "create_sale", items=[line(strict)])


async def test_void_returns_stock_keeps_the_sale_and_is_retry_safe(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=5, cost="1.25")
    sale = await call(db, owner, "create_sale", items=[line(product, 2), line(product, 1)])
    assert await stock_of(db, owner, product) == D("2")

    voided = await call(db, owner, "void_sale", sale_id=uuid.UUID(sale["id"]), reason="wrong item")
    again = await call(db, owner, "void_sale", sale_id=uuid.UUID(sale["id"]), reason="retry")

    assert voided["status"] == "void" and voided["void_reason"] == "wrong item"
    assert voided["voided_at"] is not None and again == voided
    assert await stock_of(db, owner, product) == D("5")
    async with as_tenant(db, owner) as conn:
        back = await conn.fetch(
            "select quantity, unit_cost from stock_movements where reference_type = 'void'"
            " order by quantity"
        )
    assert [(r["quantity"], r["unit_cost"]) for r in back] == [
        (D("1"), D("1.25")),
        (D("2"), D("1.25")),
    ]
    with pytest.raises(asyncpg.PostgresError) as no_reason:
        await call(db, owner, "void_sale", sale_id=uuid.UUID(sale["id"]), reason=" ")
    assert no_reason.value.sqlstate == "22023"


@pytest.mark.parametrize(
    ("items", "extra", "sqlstate"),
    [
        ([], {}, "22023"),
        ("not-a-list", {}, "22023"),
        ([{"quantity": 1}], {}, "22023"),
        ([{"product_id": "P", "quantity": 0}], {}, "22023"),
        ([{"product_id": "P", "quantity": -1}], {}, "22023"),
        ([{"product_id": "P", "quantity": 1.0001}], {}, "22023"),
        ([{"product_id": "P", "quantity": 1, "unit_price": 1.001}], {}, "22023"),
        ([{"product_id": "P", "quantity": 1, "discount_amount": -1}], {}, "22023"),
        ([{"product_id": "P", "quantity": 1, "discount_amount": 9}], {}, "PT422"),
        ([{"product_id": "P", "quantity": 1}], {"discount_amount": D("5.01")}, "PT422"),
        ([{"product_id": "P", "quantity": 1}], {"channel": "shopee"}, "22023"),
        ([{"product_id": "P", "quantity": 1}], {"payment_method": "gold"}, "22023"),
        ([{"product_id": str(uuid.uuid4()), "quantity": 1}], {}, "PT404"),
        ([{"product_id": "P", "quantity": 1}], {"customer_id": uuid.uuid4()}, "PT404"),
    ],
)
async def test_refused_sales_write_nothing(
    db: asyncpg.Pool, items: object, extra: dict[str, object], sqlstate: str
) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=5, price="5.00")
    if isinstance(items, list):
        items = [
            {**i, "product_id": str(product)} if i.get("product_id") == "P" else i for i in items
        ]
    with pytest.raises(asyncpg.PostgresError) as refused:
        await call(db, owner, "create_sale", items=items, **extra)
    assert refused.value.sqlstate == sqlstate
    assert await counts(db, owner) == (0, 0, 1)
    assert await stock_of(db, owner, product) == D("5")


async def test_inactive_product_cannot_be_sold(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=5, is_active=False, name="Old stock")
    with pytest.raises(asyncpg.PostgresError, match="Old stock") as refused:
        await call(db, owner, "create_sale", items=[line(product)])
    assert refused.value.sqlstate == "PT422"


async def test_idempotent_replay_and_conflict(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=10)
    ref = uuid.uuid4()
    first = await call(db, owner, "create_sale", items=[line(product, 2)], client_ref=ref)
    replay = await call(db, owner, "create_sale", items=[line(product, D("2.000"))], client_ref=ref)
    assert replay == first
    assert await counts(db, owner) == (1, 1, 2)
    assert await stock_of(db, owner, product) == D("8")

    with pytest.raises(asyncpg.PostgresError) as conflict:
        await call(db, owner, "create_sale", items=[line(product, 3)], client_ref=ref)
    assert conflict.value.sqlstate == "PT409"
    with pytest.raises(asyncpg.PostgresError) as conflict:
        await call(
            db,
            owner,
            "create_sale",
            items=[line(product, 2)],
            client_ref=ref,
            payment_method="card",
        )
    assert conflict.value.sqlstate == "PT409"
    assert await counts(db, owner) == (1, 1, 2)

    # The same client_ref in another tenant is that tenant's own, unrelated key.
    other = await new_tenant(db)
    theirs = await new_product(db, other, stock=1)
    sale = await call(db, other, "create_sale", items=[line(theirs)], client_ref=ref)
    assert sale["id"] != first["id"]


async def test_plan_limits_name_the_limit_and_expired_plans_fall_back(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=100)
    async with db.acquire() as conn:
        # A tenant that already used 499 sales this month (made as the owner for speed).
        await conn.execute(
            "insert into sales (business_owner_id, sale_number, total_amount, final_amount)"
            " select $1, 'OLD-' || g, 1, 1 from generate_series(1, 499) g",
            owner,
        )
    await call(db, owner, "create_sale", items=[line(product)])
    with pytest.raises(asyncpg.PostgresError) as limited:
        await call(db, owner, "create_sale", items=[line(product)])
    assert limited.value.sqlstate == "PT402"
    assert "max_sales_per_month" in str(limited.value) and "free" in str(limited.value)

    async with db.acquire() as conn:
        await conn.execute(
            "update users set subscription_plan = 'pro',"
            " subscription_expires_at = now() + interval '30 days' where id = $1",
            owner,
        )
    await call(db, owner, "create_sale", items=[line(product)])
    async with db.acquire() as conn:
        await conn.execute(
            "update users set subscription_expires_at = now() - interval '1 day' where id = $1",
            owner,
        )
    with pytest.raises(asyncpg.PostgresError, match="max_sales_per_month"):
        await call(db, owner, "create_sale", items=[line(product)])


async def test_active_product_limit(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    async with as_tenant(db, owner) as conn:
        await conn.execute(
            "insert into products (sku, name, sale_price)"
            " select 'S' || g, 'P' || g, 1 from generate_series(1, 50) g"
        )
    with pytest.raises(asyncpg.PostgresError) as limited:
        async with as_tenant(db, owner) as conn:
            await conn.execute("insert into products (sku, name, sale_price) values ('X', 'X', 1)")
    assert limited.value.sqlstate == "PT402" and "max_active_products" in str(limited.value)
    async with as_tenant(db, owner) as conn:
        # Inactive products do not count; swapping one active for another is fine.
        await conn.execute(
            "insert into products (sku, name, sale_price, is_active) values ('Y', 'Y', 1, false)"
        )
        await conn.execute("update products set is_active = false where sku = 'S1'")
        await conn.execute("update products set is_active = true where sku = 'Y'")
    with pytest.raises(asyncpg.PostgresError, match="max_active_products"):
        async with as_tenant(db, owner) as conn:
            await conn.execute("update products set is_active = true where sku = 'S1'")


async def test_clients_cannot_write_sales_stock_or_counters_directly(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=3)
    sale = await call(db, owner, "create_sale", items=[line(product)])
    statements = [
        ("insert into sales (sale_number, total_amount, final_amount) values ('X', 1, 1)", ()),
        ("update sales set final_amount = 0 where id = $1", (uuid.UUID(sale["id"]),)),
        ("delete from sale_items", ()),
        (
            "insert into stock_movements (product_id, reference_type, movement_type, quantity)"
            " values ($1, 'purchase', 'in', 5)",
            (product,),
        ),
        ("update products set current_stock = 100 where id = $1", (product,)),
        ("update sale_number_counters set last_value = 1", ()),
    ]
    for sql, args in statements:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with as_tenant(db, owner) as conn:
                await conn.execute(sql, *args)


async def test_tenant_isolation_for_every_function(db: asyncpg.Pool) -> None:
    a = await new_tenant(db)
    b = await new_tenant(db)
    a_product = await new_product(db, a, stock=5)
    b_product = await new_product(db, b, stock=5)
    async with as_tenant(db, a) as conn:
        a_customer = await conn.fetchval("insert into customers (name) values ('Ali') returning id")
    a_sale = await call(db, a, "create_sale", items=[line(a_product)], customer_id=a_customer)

    attempts = [
        ("create_sale", {"items": [line(a_product)]}),
        ("create_sale", {"items": [line(b_product)], "customer_id": a_customer}),
        ("void_sale", {"sale_id": uuid.UUID(a_sale["id"]), "reason": "mine now"}),
        ("record_purchase", {"product_id": a_product, "quantity": D(1), "unit_cost": D(1)}),
        ("adjust_stock", {"product_id": a_product, "counted_quantity": D(0), "reason": "count"}),
        ("record_production", {"product_id": a_product, "quantity": D(1)}),
    ]
    for function, args in attempts:
        with pytest.raises(asyncpg.PostgresError) as refused:
            await call(db, b, function, **args)
        assert refused.value.sqlstate == "PT404", function
        assert "not found" in str(refused.value)

    report = await call(db, b, "analytics", start_date=_today(), end_date=_today())
    assert report["totals"]["sales_count"] == 0
    assert [p["product_id"] for p in report["low_stock"]] == []
    async with as_tenant(db, a) as conn:
        state = await conn.fetchrow(
            "select current_stock, (select status from sales where id = $2) as status"
            " from products where id = $1",
            a_product,
            uuid.UUID(a_sale["id"]),
        )
    assert (state["current_stock"], state["status"]) == (D("4"), "completed")


async def test_anonymous_and_subjectless_callers_are_refused(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=1)
    async with db.acquire() as conn:
        for role in ("anon", "authenticated"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute(
                        "select set_config('role', $1, true),"
                        " set_config('request.jwt.claims', $2, true)",
                        role,
                        f'{{"role": "{role}"}}',
                    )
                    await conn.fetchval("select create_sale($1::jsonb)", [line(product)])


def _today() -> object:
    import datetime as dt
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo("Asia/Kuala_Lumpur")).date()
