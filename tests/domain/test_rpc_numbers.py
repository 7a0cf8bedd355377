"""Every number argument of the domain functions refuses NaN, ±Infinity, too many decimals and
out-of-range values with SQLSTATE 22023 and a message naming the argument (issue 8 A.2) — and
a refused call changes no stock. Through SQL and through the official client."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from domain.helpers import as_tenant, call, line, new_product, new_tenant
from postgrest.exceptions import APIError

NOT_FINITE = ["NaN", "Infinity", "-Infinity"]


async def _refused(pool: asyncpg.Pool, owner: uuid.UUID, function: str, **args: Any) -> str:
    with pytest.raises(asyncpg.PostgresError) as info:
        await call(pool, owner, function, **args)
    assert info.value.sqlstate == "22023", (function, args, info.value)
    return str(info.value.args[0])


async def _ledger_holds(pool: asyncpg.Pool, owner: uuid.UUID, product: uuid.UUID) -> Decimal:
    async with as_tenant(pool, owner) as conn:
        row = await conn.fetchrow(
            "select p.current_stock, (select coalesce(sum(case m.movement_type when 'in'"
            " then m.quantity else -m.quantity end), 0) from stock_movements m"
            " where m.product_id = p.id) as ledger from products p where p.id = $1",
            product,
        )
    assert row["current_stock"] == row["ledger"]
    stock: Decimal = row["current_stock"]
    return stock


async def test_stock_functions_refuse_bad_numbers_naming_the_argument(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=5)
    bad_quantities = [*NOT_FINITE, "1.0005", "1000000000", "0", "-1"]
    for value in bad_quantities:
        q = Decimal(value)
        message = await _refused(
            db, owner, "record_purchase", product_id=product, quantity=q, unit_cost=Decimal(1)
        )
        assert message.startswith("quantity "), message
        message = await _refused(db, owner, "record_production", product_id=product, quantity=q)
        assert message.startswith("quantity "), message
    for value in [*NOT_FINITE, "1.0005", "1000000000", "-1"]:
        message = await _refused(
            db,
            owner,
            "adjust_stock",
            product_id=product,
            counted_quantity=Decimal(value),
            reason="count",
        )
        assert message.startswith("counted_quantity "), message
    for value in [*NOT_FINITE, "1.234", "10000000000", "-0.01"]:
        message = await _refused(
            db,
            owner,
            "record_purchase",
            product_id=product,
            quantity=Decimal(1),
            unit_cost=Decimal(value),
        )
        assert message.startswith("unit_cost "), message
    message = await _refused(
        db,
        owner,
        "record_purchase",
        product_id=product,
        quantity=Decimal("NaN"),
        unit_cost=Decimal(1),
    )
    assert message == "quantity must be a finite number, not NaN"
    message = await _refused(
        db,
        owner,
        "record_purchase",
        product_id=product,
        quantity=Decimal(1),
        unit_cost=Decimal("1.234"),
    )
    assert message == "unit_cost has more than 2 decimals"
    assert await _ledger_holds(db, owner, product) == Decimal("5.000")

    # Accepted values come back at the column's scale.
    done = await call(
        db,
        owner,
        "record_purchase",
        product_id=product,
        quantity=Decimal(2),
        unit_cost=Decimal("2.5"),
    )
    assert str(done["current_stock"]) == "7.000"


@pytest.mark.parametrize(
    ("item", "extra", "expected"),
    [
        ({"quantity": "NaN"}, {}, "item 1: quantity must be a finite number, not NaN"),
        ({"quantity": "Infinity"}, {}, "item 1: quantity must be a finite number, not Infinity"),
        ({"quantity": "abc"}, {}, "item 1: quantity must be a number"),
        ({"quantity": [1]}, {}, "item 1: quantity must be a number"),
        ({"quantity": None}, {}, "item 1: quantity is required"),
        ({"quantity": "1e9"}, {}, "item 1: quantity must be less than 1000000000"),
        ({"quantity": 1, "unit_price": "NaN"}, {}, "item 1: unit_price must be a finite number"),
        ({"quantity": 1, "unit_price": "-Infinity"}, {}, "item 1: unit_price must be a finite"),
        ({"quantity": 1, "unit_price": "1.001"}, {}, "item 1: unit_price has more than 2"),
        ({"quantity": 1, "discount_amount": "NaN"}, {}, "item 1: discount_amount must be a finite"),
        ({"quantity": 1, "discount_amount": 0.005}, {}, "item 1: discount_amount has more than 2"),
        ({"quantity": 1, "product_id": "nope"}, {}, "item 1: product_id must be a product id"),
        ({"quantity": 1}, {"discount_amount": Decimal("NaN")}, "discount_amount must be a finite"),
        ({"quantity": 1}, {"discount_amount": Decimal("0.001")}, "discount_amount has more than"),
        ({"quantity": 1}, {"discount_amount": Decimal("Infinity")}, "discount_amount must be a"),
    ],
)
async def test_create_sale_refuses_bad_numbers_naming_the_item_and_field(
    db: asyncpg.Pool, item: dict[str, Any], extra: dict[str, Any], expected: str
) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=5)
    items = [{**line(product), **item}]
    message = await _refused(db, owner, "create_sale", items=items, **extra)
    assert message.startswith(expected), message
    assert await _ledger_holds(db, owner, product) == Decimal("5.000")


async def test_the_second_bad_item_is_named(db: asyncpg.Pool) -> None:
    owner = await new_tenant(db)
    product = await new_product(db, owner, stock=5)
    items = [line(product, 1), line(product, "NaN")]
    message = await _refused(db, owner, "create_sale", items=items)
    assert message == "item 2: quantity must be a finite number, not NaN"


def test_rpc_through_the_client_refuses_nan(make_user: Callable[..., Any]) -> None:
    user = make_user()
    product = (
        user.client.table("products")
        .insert({"sku": "RPC-NAN", "name": "Dodol", "sale_price": "4.00"})
        .execute()
        .data[0]
    )
    calls: list[tuple[str, dict[str, Any], str]] = [
        ("record_purchase", {"quantity": "NaN", "unit_cost": "1.00"}, "quantity must be a finite"),
        ("record_purchase", {"quantity": 1, "unit_cost": "Infinity"}, "unit_cost must be a finite"),
        ("record_purchase", {"quantity": 1, "unit_cost": 1.234}, "unit_cost has more than 2"),
        ("adjust_stock", {"counted_quantity": "NaN", "reason": "count"}, "counted_quantity must"),
        ("record_production", {"quantity": "-Infinity"}, "quantity must be a finite"),
    ]
    for function, args, expected in calls:
        with pytest.raises(APIError) as info:
            user.client.rpc(function, {"product_id": product["id"], **args}).execute()
        assert info.value.code == "22023", (function, args)
        assert str(info.value.message).startswith(expected), info.value.message
    with pytest.raises(APIError) as info:
        user.client.rpc(
            "create_sale", {"items": [{"product_id": product["id"], "quantity": "NaN"}]}
        ).execute()
    assert info.value.code == "22023"
    assert info.value.message == "item 1: quantity must be a finite number, not NaN"
    stock = user.client.table("products").select("current_stock").eq("id", product["id"]).execute()
    assert Decimal(str(stock.data[0]["current_stock"])) == 0
