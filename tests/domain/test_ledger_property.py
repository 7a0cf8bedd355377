"""Property: any sequence of sales, voids, purchases, counts and production runs (valid or not)
keeps current_stock = Σ in − Σ out for every product, matches a plain Python model of the
stock, and a refused call leaves no rows behind."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
from domain.helpers import call, init_connection, line, new_tenant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

D = Decimal
quantities = st.decimals(min_value=D("-1"), max_value=D("6"), places=1)

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("sale"),
            st.lists(st.tuples(st.integers(0, 3), quantities), min_size=1, max_size=3),
        ),
        st.tuples(st.just("void"), st.integers(0, 5)),
        st.tuples(st.just("purchase"), st.integers(0, 3), quantities),
        st.tuples(st.just("adjust"), st.integers(0, 3), quantities),
        st.tuples(st.just("production"), st.integers(0, 3), quantities),
    ),
    min_size=1,
    max_size=12,
)


class Shop:
    """The model: stock per product, under the default `block` policy."""

    def __init__(self, products: list[uuid.UUID], recipe: dict[int, Decimal]) -> None:
        self.products = products
        self.stock = [D(0)] * len(products)
        self.recipe = recipe  # product 0 is made from these ingredients, per unit
        self.sales: list[tuple[uuid.UUID, list[tuple[int, Decimal]], bool]] = []

    def expect(self, op: tuple[Any, ...]) -> bool:
        kind = op[0]
        if kind == "sale":
            wanted: dict[int, Decimal] = {}
            for index, qty in op[1]:
                wanted[index] = wanted.get(index, D(0)) + qty
            return all(q > 0 for _, q in op[1]) and all(
                self.stock[i] >= q for i, q in wanted.items()
            )
        if kind == "void":
            return op[1] < len(self.sales)
        if kind == "purchase" or kind == "production":
            if op[2] <= 0:
                return False
            if kind == "production" and op[1] == 0:
                return all(self.stock[i] >= per * op[2] for i, per in self.recipe.items())
            return True
        return op[2] >= 0  # adjust

    def apply(self, op: tuple[Any, ...], result: Any) -> None:
        kind = op[0]
        if kind == "sale":
            for index, qty in op[1]:
                self.stock[index] -= qty
            self.sales.append((uuid.UUID(result["id"]), op[1], False))
        elif kind == "void":
            sale_id, lines, voided = self.sales[op[1]]
            if not voided:
                for index, qty in lines:
                    self.stock[index] += qty
                self.sales[op[1]] = (sale_id, lines, True)
        elif kind == "purchase":
            self.stock[op[1]] += op[2]
        elif kind == "adjust":
            self.stock[op[1]] = op[2]
        else:
            self.stock[op[1]] += op[2]
            if op[1] == 0:
                for index, per in self.recipe.items():
                    self.stock[index] -= per * op[2]


async def _perform(pool: asyncpg.Pool, owner: uuid.UUID, shop: Shop, op: tuple[Any, ...]) -> Any:
    kind = op[0]
    if kind == "sale":
        return await call(
            pool, owner, "create_sale", items=[line(shop.products[i], q) for i, q in op[1]]
        )
    if kind == "void":
        sale_id = shop.sales[op[1]][0] if op[1] < len(shop.sales) else uuid.uuid4()
        return await call(pool, owner, "void_sale", sale_id=sale_id, reason="property")
    if kind == "purchase":
        return await call(
            pool,
            owner,
            "record_purchase",
            product_id=shop.products[op[1]],
            quantity=op[2],
            unit_cost=D("1.50"),
        )
    if kind == "adjust":
        return await call(
            pool,
            owner,
            "adjust_stock",
            product_id=shop.products[op[1]],
            counted_quantity=op[2],
            reason="count",
        )
    return await call(
        pool, owner, "record_production", product_id=shop.products[op[1]], quantity=op[2]
    )


async def _footprint(conn: asyncpg.Connection, owner: uuid.UUID) -> tuple[Any, ...]:
    row = await conn.fetchrow(
        "select (select count(*) from sales where business_owner_id = $1) s,"
        " (select count(*) from sales where business_owner_id = $1 and status = 'void') v,"
        " (select count(*) from sale_items where business_owner_id = $1) i,"
        " (select count(*) from stock_movements where business_owner_id = $1) m,"
        " (select array_agg(current_stock order by id) from products"
        "  where business_owner_id = $1) st",
        owner,
    )
    return tuple(row)


async def _check_ledger(conn: asyncpg.Connection, owner: uuid.UUID) -> dict[uuid.UUID, Decimal]:
    rows = await conn.fetch(
        "select p.id, p.current_stock, coalesce(sum(case m.movement_type when 'in' then m.quantity"
        " else -m.quantity end), 0) as ledger"
        " from products p left join stock_movements m"
        "   on m.business_owner_id = p.business_owner_id and m.product_id = p.id"
        " where p.business_owner_id = $1 group by p.id, p.current_stock",
        owner,
    )
    for row in rows:
        assert row["current_stock"] == row["ledger"], row
    return {r["id"]: r["current_stock"] for r in rows}


async def _run(dsn: str, ops: list[tuple[Any, ...]]) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, init=init_connection)
    try:
        owner = await new_tenant(pool)
        async with pool.acquire() as conn:
            products = [
                await conn.fetchval(
                    "insert into products (business_owner_id, sku, name, sale_price, cost_price)"
                    " values ($1, $2, $2, 4.00, 1.00) returning id",
                    owner,
                    f"P{i}",
                )
                for i in range(4)
            ]
            recipe = {1: D("0.5"), 2: D("2")}
            for index, per in recipe.items():
                await conn.execute(
                    "insert into recipe_items (business_owner_id, product_id, ingredient_id,"
                    " quantity) values ($1, $2, $3, $4)",
                    owner,
                    products[0],
                    products[index],
                    per,
                )
        shop = Shop(products, recipe)
        for op in ops:
            async with pool.acquire() as conn:
                before = await _footprint(conn, owner)
            expected = shop.expect(op)
            try:
                result = await _perform(pool, owner, shop, op)
            except asyncpg.PostgresError as exc:
                assert not expected, (op, exc)
                assert exc.sqlstate in {"22023", "PT404", "PT422"}, exc
                async with pool.acquire() as conn:
                    assert await _footprint(conn, owner) == before, op
            else:
                assert expected, op
                shop.apply(op, result)
            async with pool.acquire() as conn:
                stock = await _check_ledger(conn, owner)
            assert [stock[p] for p in products] == shop.stock, op
    finally:
        await pool.close()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_stock_always_equals_the_ledger(owner_dsn: str, ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(_run(owner_dsn, ops))
