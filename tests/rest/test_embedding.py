"""Embedded resources over the composite tenant foreign keys: a sale with its items and each
item's product in one request, to-one and to-many, nested, with filters, order and limit on
the embedded level, `!inner`, and one-to-one."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from harness import ServerProcess
from postgrest import APIError
from rest.support import Tenant, insert_sale, run_sql, sign_up


@pytest.fixture(scope="module")
def sales_shop(server: ServerProcess, owner_dsn: str) -> dict[str, Any]:
    tenant = sign_up(server)
    products = (
        tenant.client.table("products")
        .insert(
            [
                {"sku": "K", "name": "Kopi", "sale_price": "2.50"},
                {"sku": "T", "name": "Teh", "sale_price": "3.00"},
                {"sku": "N", "name": "Nasi Lemak", "sale_price": "6.50"},
            ]
        )
        .execute()
        .data
    )
    by_sku = {p["sku"]: p for p in products}
    customer = tenant.client.table("customers").insert({"name": "Aminah"}).execute().data[0]
    big = insert_sale(
        owner_dsn,
        tenant.id,
        [(by_sku["K"], Decimal(2)), (by_sku["N"], Decimal(1)), (by_sku["T"], Decimal("0.5"))],
    )
    small = insert_sale(owner_dsn, tenant.id, [(by_sku["T"], Decimal(1))])
    run_sql(
        owner_dsn,
        "update public.sales set customer_id = $1 where id = $2",
        uuid.UUID(customer["id"]),
        uuid.UUID(big),
    )
    return {"tenant": tenant, "products": by_sku, "big": big, "small": small, "customer": customer}


def test_sale_with_items_and_their_products(sales_shop: dict[str, Any], owner_dsn: str) -> None:
    tenant: Tenant = sales_shop["tenant"]
    sale = (
        tenant.client.table("sales")
        .select(
            "id, sale_number, customer:customers(name), "
            "sale_items(line_no, quantity, products(sku, name))"
        )
        .eq("id", sales_shop["big"])
        .order("line_no", foreign_table="sale_items")
        .single()
        .execute()
        .data
    )
    expected = run_sql(
        owner_dsn,
        "select i.line_no, i.quantity, p.sku, p.name from public.sale_items i "
        "join public.products p on p.business_owner_id = i.business_owner_id "
        "and p.id = i.product_id where i.sale_id = $1 order by i.line_no",
        uuid.UUID(sales_shop["big"]),
        as_user=tenant.id,
    )
    assert sale["id"] == sales_shop["big"]
    assert sale["customer"] == {"name": "Aminah"}
    assert [
        (i["line_no"], Decimal(str(i["quantity"])), i["products"]["sku"], i["products"]["name"])
        for i in sale["sale_items"]
    ] == [(r["line_no"], r["quantity"], r["sku"], r["name"]) for r in expected]


def test_embedded_filter_order_limit_and_inner(sales_shop: dict[str, Any]) -> None:
    client = sales_shop["tenant"].client
    rows = (
        client.table("sales")
        .select("id, sale_items(quantity)")
        .gt("sale_items.quantity", 1)
        .order("id")
        .execute()
        .data
    )
    by_id = {r["id"]: r["sale_items"] for r in rows}
    assert len(by_id) == 2  # without !inner every sale stays, with filtered items
    assert by_id[sales_shop["small"]] == []
    assert [Decimal(str(i["quantity"])) for i in by_id[sales_shop["big"]]] == [Decimal(2)]

    inner = (
        client.table("sales")
        .select("id, sale_items!inner(quantity)")
        .gt("sale_items.quantity", 1)
        .execute()
        .data
    )
    assert [r["id"] for r in inner] == [sales_shop["big"]]

    # A filter two levels down: items whose product is Kopi, and only sales that have one.
    kopi = (
        client.table("sales")
        .select("id, sale_items!inner(product_name, products!inner(sku))")
        .eq("sale_items.products.sku", "K")
        .execute()
        .data
    )
    assert [r["id"] for r in kopi] == [sales_shop["big"]]
    assert [i["product_name"] for i in kopi[0]["sale_items"]] == ["Kopi"]

    limited = (
        client.table("sales")
        .select("id, sale_items(product_name)")
        .eq("id", sales_shop["big"])
        .order("product_name", desc=True, foreign_table="sale_items")
        .limit(2, foreign_table="sale_items")
        .execute()
        .data
    )
    assert [i["product_name"] for i in limited[0]["sale_items"]] == ["Teh", "Nasi Lemak"]


def test_to_many_from_products_and_to_one_back(sales_shop: dict[str, Any]) -> None:
    client = sales_shop["tenant"].client
    teh = (
        client.table("products")
        .select("sku, sale_items(sale_id)")
        .eq("sku", "T")
        .single()
        .execute()
        .data
    )
    assert sorted(i["sale_id"] for i in teh["sale_items"]) == sorted(
        [sales_shop["big"], sales_shop["small"]]
    )
    items = (
        client.table("sale_items")
        .select("product_name, sales(sale_number), products(sku)")
        .execute()
        .data
    )
    assert all(isinstance(i["sales"], dict) and i["products"]["sku"] for i in items)


def test_one_to_one_and_owner_only_relationships(sales_shop: dict[str, Any]) -> None:
    tenant: Tenant = sales_shop["tenant"]
    me = (
        tenant.client.table("users")
        .select("id, business_profiles(timezone), products(sku)")
        .single()
        .execute()
        .data
    )
    assert me["id"] == tenant.id
    # business_profiles is keyed by its owner: one-to-one, so an object, not a list.
    assert me["business_profiles"] == {"timezone": "Asia/Kuala_Lumpur"}
    assert sorted(p["sku"] for p in me["products"]) == ["K", "N", "T"]


def test_hint_and_unknown_relationship(sales_shop: dict[str, Any]) -> None:
    client = sales_shop["tenant"].client
    hinted = (
        client.table("sales")
        .select("id, customers!sales_business_owner_id_customer_id_fkey(name)")
        .eq("id", sales_shop["big"])
        .execute()
        .data
    )
    assert hinted[0]["customers"] == {"name": "Aminah"}
    by_column = (
        client.table("sales")
        .select("id, customers!customer_id(name)")
        .eq("id", sales_shop["small"])
        .execute()
        .data
    )
    assert by_column[0]["customers"] is None
    with pytest.raises(APIError) as err:
        client.table("products").select("id, customers(name)").execute()
    assert err.value.code == "PGRST200"
    with pytest.raises(APIError) as err:
        client.table("sales").select("id").order("line_no", foreign_table="sale_items").execute()
    assert err.value.code == "PGRST108"
