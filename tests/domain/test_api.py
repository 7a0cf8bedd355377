"""The sales and stock functions through the real server with the official client:
`client.rpc(...)` for the functions, REST reads with embedding, `functions.invoke("analytics")`."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from harness import ServerProcess
from postgrest.exceptions import APIError

D = Decimal
TODAY = dt.datetime.now(ZoneInfo("Asia/Kuala_Lumpur")).date().isoformat()


def money(value: Any) -> Decimal:
    """JSON numbers arrive as floats; their shortest repr is the exact sen amount."""
    return D(str(value))


def stocked_product(user: Any, name: str, price: str, stock: int, **extra: Any) -> str:
    row = (
        user.client.table("products")
        .insert(
            {"sku": name[:20], "name": name, "sale_price": price, "cost_price": "1.00", **extra}
        )
        .execute()
        .data[0]
    )
    if stock:
        user.client.rpc(
            "record_purchase", {"product_id": row["id"], "quantity": stock, "unit_cost": "1.00"}
        ).execute()
    return str(row["id"])


def sell(user: Any, items: list[dict[str, Any]], **args: Any) -> dict[str, Any]:
    data: dict[str, Any] = user.client.rpc("create_sale", {"items": items, **args}).execute().data
    return data


def test_sale_through_rpc_and_read_back_with_embedding(make_user: Callable[..., Any]) -> None:
    user = make_user()
    kuih = stocked_product(user, "Kuih seri muka", "1.20", 20)
    air = stocked_product(user, "Air sirap", "2.00", 20)

    sale = sell(
        user,
        [
            {"product_id": kuih, "quantity": 4},
            {"product_id": air, "quantity": 1, "discount_amount": "0.30"},
        ],
        discount_amount="0.20",
        channel="online",
    )

    assert sale["sale_number"].startswith("INV-") and sale["channel"] == "online"
    # 4.80 + 1.70 - 0.20 = 6.30, cash: on 5 sen already
    assert [money(sale[k]) for k in ("total_amount", "discount_amount", "final_amount")] == [
        D("6.50"),
        D("0.20"),
        D("6.30"),
    ]
    read = (
        user.client.table("sales")
        .select("sale_number, final_amount, sale_items(product_name, quantity, subtotal)")
        .eq("id", sale["id"])
        .single()
        .execute()
        .data
    )
    assert read["sale_number"] == sale["sale_number"]
    assert sorted(i["product_name"] for i in read["sale_items"]) == ["Air sirap", "Kuih seri muka"]
    stock = user.client.table("products").select("id, current_stock").execute().data
    assert {r["id"]: money(r["current_stock"]) for r in stock} == {kuih: D(16), air: D(19)}


def test_twenty_concurrent_sales_through_the_api(make_user: Callable[..., Any]) -> None:
    user = make_user()
    product = stocked_product(user, "Nasi kerabu", "7.00", 10)

    def attempt(_: int) -> str:
        try:
            sell(user, [{"product_id": product, "quantity": 1}])
        except APIError as exc:
            assert "Nasi kerabu" in str(exc.message)
            return str(exc.code)
        return "ok"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, range(20)))

    assert outcomes.count("ok") == 10 and outcomes.count("PT422") == 10
    row = user.client.table("products").select("current_stock").eq("id", product).single()
    assert money(row.execute().data["current_stock"]) == 0
    outs = (
        user.client.table("stock_movements")
        .select("id", count="exact")
        .eq("product_id", product)
        .eq("movement_type", "out")
        .execute()
    )
    assert outs.count == 10


def test_idempotency_and_status_codes_over_http(
    make_user: Callable[..., Any], server: ServerProcess
) -> None:
    user = make_user()
    product = stocked_product(user, "Roti jala", "3.00", 5)
    ref = str(uuid.uuid4())
    first = sell(user, [{"product_id": product, "quantity": 2}], client_ref=ref)
    again = sell(user, [{"product_id": product, "quantity": 2}], client_ref=ref)
    assert again == first

    def post(body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{server.url}/rest/v1/rpc/create_sale",
            json=body,
            headers={"apikey": server.anon_key, "Authorization": f"Bearer {user.access_token}"},
        )

    conflict = post({"items": [{"product_id": product, "quantity": 1}], "client_ref": ref})
    short = post({"items": [{"product_id": product, "quantity": 99}]})
    unknown = post({"items": [{"product_id": str(uuid.uuid4()), "quantity": 1}]})
    invalid = post({"items": []})
    assert (conflict.status_code, conflict.json()["code"]) == (409, "PT409")
    assert (short.status_code, short.json()["code"]) == (422, "PT422")
    assert "Roti jala" in short.json()["message"]
    assert (unknown.status_code, unknown.json()["code"]) == (404, "PT404")
    assert invalid.status_code == 400
    sales = user.client.table("sales").select("id", count="exact").execute()
    assert sales.count == 1


def test_clients_cannot_write_sales_or_stock_through_rest(make_user: Callable[..., Any]) -> None:
    user = make_user()
    product = stocked_product(user, "Cendol", "4.50", 3)
    sale = sell(user, [{"product_id": product, "quantity": 1}])
    attempts = [
        lambda: (
            user.client.table("sales")
            .insert({"sale_number": "FAKE-1", "total_amount": 1, "final_amount": 1})
            .execute()
        ),
        lambda: (
            user.client.table("sales").update({"final_amount": 0}).eq("id", sale["id"]).execute()
        ),
        lambda: (
            user.client.table("stock_movements")
            .insert(
                {
                    "product_id": product,
                    "reference_type": "purchase",
                    "movement_type": "in",
                    "quantity": 100,
                }
            )
            .execute()
        ),
        lambda: (
            user.client.table("products").update({"current_stock": 100}).eq("id", product).execute()
        ),
    ]
    for attempt in attempts:
        with pytest.raises(APIError) as refused:
            attempt()
        assert refused.value.code == "42501"
    row = user.client.table("products").select("current_stock").eq("id", product).single()
    assert money(row.execute().data["current_stock"]) == 2


def test_tenant_b_cannot_touch_tenant_a(make_user: Callable[..., Any]) -> None:
    a, b = make_user(), make_user()
    a_product = stocked_product(a, "Karipap", "1.00", 5)
    b_product = stocked_product(b, "Popia", "1.00", 5)
    a_customer = a.client.table("customers").insert({"name": "Mak Cik Ros"}).execute().data[0]
    a_sale = sell(a, [{"product_id": a_product, "quantity": 2}], customer_id=a_customer["id"])

    calls = [
        ("create_sale", {"items": [{"product_id": a_product, "quantity": 1}]}),
        (
            "create_sale",
            {"items": [{"product_id": b_product, "quantity": 1}], "customer_id": a_customer["id"]},
        ),
        ("void_sale", {"sale_id": a_sale["id"], "reason": "not mine"}),
        ("record_purchase", {"product_id": a_product, "quantity": 1, "unit_cost": 1}),
        ("adjust_stock", {"product_id": a_product, "counted_quantity": 0, "reason": "count"}),
    ]
    for name, args in calls:
        with pytest.raises(APIError) as refused:
            b.client.rpc(name, args).execute()
        assert refused.value.code == "PT404", name

    span = {"start_date": TODAY, "end_date": TODAY}
    theirs = b.client.functions.invoke("analytics", {"body": span, "responseType": "json"})
    via_rpc = b.client.rpc("analytics", span).execute().data
    mine = a.client.rpc("analytics", span).execute().data
    assert theirs["totals"]["sales_count"] == via_rpc["totals"]["sales_count"] == 0
    assert mine["totals"]["sales_count"] == 1 and money(mine["totals"]["net_sales"]) == D("2.00")
    assert a.client.table("sales").select("status").single().execute().data["status"] == (
        "completed"
    )
    assert (
        money(
            a.client.table("products")
            .select("current_stock")
            .single()
            .execute()
            .data["current_stock"]
        )
        == 3
    )


def test_void_production_and_count_through_rpc(make_user: Callable[..., Any]) -> None:
    user = make_user()
    flour = stocked_product(user, "Tepung", "0.00", 10, unit="kg")
    sugar = stocked_product(user, "Gula", "0.00", 10, unit="kg")
    cake = stocked_product(user, "Kek", "25.00", 0)
    user.client.table("recipe_items").insert(
        [
            {"product_id": cake, "ingredient_id": flour, "quantity": "0.5"},
            {"product_id": cake, "ingredient_id": sugar, "quantity": "0.25"},
        ]
    ).execute()

    made = user.client.rpc("record_production", {"product_id": cake, "quantity": 4}).execute()
    assert money(made.data["current_stock"]) == 4
    sale = sell(user, [{"product_id": cake, "quantity": 1}])
    voided = user.client.rpc("void_sale", {"sale_id": sale["id"], "reason": "cancelled"}).execute()
    assert voided.data["status"] == "void"
    counted = user.client.rpc(
        "adjust_stock", {"product_id": flour, "counted_quantity": "7.5", "reason": "count"}
    ).execute()
    assert money(counted.data["difference"]) == D("-0.5")

    rows = user.client.table("products").select("name, current_stock").execute().data
    assert {r["name"]: money(r["current_stock"]) for r in rows} == {
        "Tepung": D("7.5"),
        "Gula": D("9"),
        "Kek": D("4"),
    }
