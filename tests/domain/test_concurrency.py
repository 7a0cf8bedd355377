"""Concurrent sales on real connections: the last items, products in different orders, and a
retry that arrives while the first call is still running."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from decimal import Decimal

import asyncpg
from domain.helpers import as_tenant, call, line, new_product, new_tenant


async def _try_sale(pool: asyncpg.Pool, owner: uuid.UUID, items: list[dict[str, object]]) -> str:
    try:
        await call(pool, owner, "create_sale", items=items)
    except asyncpg.PostgresError as exc:
        return exc.sqlstate
    return "ok"


async def test_twenty_cashiers_sell_the_last_ten(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=10, name="Nasi lemak")

    outcomes = await asyncio.gather(*[_try_sale(db, owner, [line(product)]) for _ in range(20)])

    assert outcomes.count("ok") == 10
    assert sorted(set(outcomes)) == ["PT422", "ok"]  # the rest: 422, never a deadlock or 500
    async with as_tenant(db, owner) as conn:
        stock = await conn.fetchval("select current_stock from products where id = $1", product)
        outs = await conn.fetchval(
            "select count(*) from stock_movements where movement_type = 'out'"
        )
        numbers = await conn.fetch("select sale_number from sales order by sale_number")
    assert stock == 0 and outs == 10
    assert [r["sale_number"][-6:] for r in numbers] == [f"{n:06d}" for n in range(1, 11)]


async def test_sales_over_products_in_any_order_never_deadlock(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    products = [await new_product(db, owner, stock=1000) for _ in range(4)]
    rng = random.Random(7)
    baskets = []
    for _ in range(40):
        chosen = rng.sample(products, k=rng.randint(2, 4))
        baskets.append([line(p, rng.randint(1, 3)) for p in chosen])

    outcomes = await asyncio.gather(*[_try_sale(db, owner, b) for b in baskets])

    assert outcomes == ["ok"] * 40
    sold: dict[uuid.UUID, int] = {p: 0 for p in products}
    for basket in baskets:
        for item in basket:
            sold[uuid.UUID(str(item["product_id"]))] += int(str(item["quantity"]))
    async with as_tenant(db, owner) as conn:
        rows = await conn.fetch("select id, current_stock from products")
    assert {r["id"]: r["current_stock"] for r in rows} == {
        p: Decimal(1000 - n) for p, n in sold.items()
    }


async def test_retry_arriving_during_the_first_call_returns_the_first_sale(
    db: asyncpg.Pool,
) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=5)
    ref = uuid.uuid4()
    items = [line(product, 2)]

    first_conn = await db.acquire()
    first_tx = first_conn.transaction()
    await first_tx.start()
    try:
        await first_conn.execute(
            "select set_config('role', 'authenticated', true),"
            " set_config('request.jwt.claims', $1, true)",
            json.dumps({"sub": str(owner), "role": "authenticated"}),
        )
        first = await first_conn.fetchval(
            "select create_sale(items => $1, client_ref => $2)", items, ref
        )
        retry = asyncio.create_task(call(db, owner, "create_sale", items=items, client_ref=ref))
        # The retry must be waiting on the first call's lock, not racing past it.
        async with db.acquire() as watcher:
            for _ in range(200):
                waiting = await watcher.fetchval(
                    "select count(*) from pg_locks where locktype = 'advisory' and not granted"
                )
                if waiting:
                    break
                await asyncio.sleep(0.02)
        assert waiting and not retry.done()
        await first_tx.commit()
    except BaseException:
        await first_tx.rollback()
        raise
    finally:
        await db.release(first_conn)

    assert await retry == first
    async with as_tenant(db, owner) as conn:
        assert await conn.fetchval("select count(*) from sales") == 1
        assert await conn.fetchval("select current_stock from products") == 3


async def test_retry_after_a_failed_first_call_creates_the_sale(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=1)
    ref = uuid.uuid4()
    refused = await _try_sale_with_ref(db, owner, [line(product, 2)], ref)
    assert refused == "PT422"
    await call(
        db,
        owner,
        "record_purchase",
        product_id=product,
        quantity=Decimal(1),
        unit_cost=Decimal("2.00"),
    )
    sale = await call(db, owner, "create_sale", items=[line(product, 2)], client_ref=ref)
    assert sale["client_ref"] == str(ref)


async def _try_sale_with_ref(
    pool: asyncpg.Pool, owner: uuid.UUID, items: list[dict[str, object]], ref: uuid.UUID
) -> str:
    try:
        await call(pool, owner, "create_sale", items=items, client_ref=ref)
    except asyncpg.PostgresError as exc:
        return exc.sqlstate
    return "ok"


async def test_mixed_writers_concurrently_keep_the_ledger_without_deadlock(
    db: asyncpg.Pool,
) -> None:
    owner = await new_tenant(db)
    cake, flour, sugar, egg = [await new_product(db, owner, stock=5000) for _ in range(4)]
    async with as_tenant(db, owner) as conn:
        await conn.executemany(
            "insert into recipe_items (product_id, ingredient_id, quantity) values ($1, $2, $3)",
            [(cake, flour, Decimal("0.5")), (cake, sugar, Decimal("0.2")), (cake, egg, 2)],
        )
    earlier = [
        await call(db, owner, "create_sale", items=[line(egg, 2), line(cake), line(flour)])
        for _ in range(8)
    ]
    rng = random.Random(11)
    everything = [cake, flour, sugar, egg]

    async def one(n: int) -> str:
        try:
            if n < 8:
                await call(
                    db, owner, "void_sale", sale_id=uuid.UUID(earlier[n]["id"]), reason="mixed"
                )
            elif n < 14:
                await call(db, owner, "record_production", product_id=cake, quantity=Decimal(3))
            elif n < 20:
                await call(
                    db,
                    owner,
                    "record_purchase",
                    product_id=rng.choice(everything),
                    quantity=Decimal(10),
                    unit_cost=Decimal("1.10"),
                )
            elif n < 24:
                await call(
                    db,
                    owner,
                    "adjust_stock",
                    product_id=rng.choice(everything),
                    counted_quantity=Decimal(4000),
                    reason="count",
                )
            else:
                chosen = rng.sample(everything, k=3)
                await call(db, owner, "create_sale", items=[line(p) for p in chosen])
        except asyncpg.PostgresError as exc:
            return exc.sqlstate
        return "ok"

    outcomes = await asyncio.gather(*[one(n) for n in rng.sample(range(44), k=44)])

    assert outcomes == ["ok"] * 44
    async with as_tenant(db, owner) as conn:
        drift = await conn.fetchval(
            "select count(*) from products p where p.current_stock <> (select coalesce(sum("
            "case m.movement_type when 'in' then m.quantity else -m.quantity end), 0)"
            " from stock_movements m where m.product_id = p.id)"
        )
    assert drift == 0


async def test_recipe_edited_during_production_keeps_stock_equal_to_the_ledger(
    db: asyncpg.Pool,
) -> None:
    """Issue 13.6: production reads the recipe once. A client's recipe edit that commits while
    production is held just after writing its ledger rows (by a probe trigger waiting on an
    advisory lock the test holds) must not make stock and ledger disagree; the version that
    read the recipe again for the stock update failed here (85 in stock, 94 in the ledger)."""
    owner = await new_tenant(db)
    flour, sugar = [await new_product(db, owner, stock=100) for _ in range(2)]
    cake = await new_product(db, owner)
    async with as_tenant(db, owner) as conn:
        await conn.executemany(
            "insert into recipe_items (product_id, ingredient_id, quantity) values ($1, $2, $3)",
            [(cake, flour, Decimal(2)), (cake, sugar, Decimal(1))],
        )
    key = random.Random().randint(1, 2**31 - 1)
    marker = f"pause-probe-{uuid.uuid4().hex}"
    await db.execute(
        "create function pb_internal.test_pause_probe() returns trigger language plpgsql as"
        f" $$ begin perform pg_advisory_xact_lock({key}); return null; end $$;"
        " grant execute on function pb_internal.test_pause_probe() to pb_definer;"
        " create trigger test_pause_probe after insert on public.stock_movements for each row"
        f" when (new.notes = '{marker}') execute function pb_internal.test_pause_probe()"
    )
    try:
        async with db.acquire() as holder:
            hold = holder.transaction()
            await hold.start()
            await holder.execute("select pg_advisory_xact_lock($1)", key)
            production = asyncio.create_task(
                call(
                    db,
                    owner,
                    "record_production",
                    product_id=cake,
                    quantity=Decimal(3),
                    notes=marker,
                )
            )
            for _ in range(500):
                waiting = await db.fetchval(
                    "select exists (select from pg_locks where locktype = 'advisory'"
                    " and not granted and objid = $1::bigint::oid)",
                    key,
                )
                if waiting:
                    break
                await asyncio.sleep(0.01)
            assert waiting, "production never reached the probe"
            async with as_tenant(db, owner) as conn:
                await conn.execute(
                    "update recipe_items set quantity = 5 where ingredient_id = $1", flour
                )
                await conn.execute("delete from recipe_items where ingredient_id = $1", sugar)
            await hold.rollback()
            made = await production
    finally:
        await db.execute(
            "drop trigger test_pause_probe on public.stock_movements;"
            " drop function pb_internal.test_pause_probe()"
        )
    assert [i["quantity"] for i in made["ingredients"]] in ([6, 3], [3, 6])
    async with as_tenant(db, owner) as conn:
        rows = await conn.fetch(
            "select p.id, p.current_stock, (select coalesce(sum(case m.movement_type when 'in'"
            " then m.quantity else -m.quantity end), 0) from stock_movements m"
            " where m.product_id = p.id) as ledger from products p"
        )
    assert {r["id"]: (r["current_stock"], r["ledger"]) for r in rows} == {
        flour: (Decimal("94.000"), Decimal("94.000")),
        sugar: (Decimal("97.000"), Decimal("97.000")),
        cake: (Decimal("3.000"), Decimal("3.000")),
    }
