"""Spread embeds (issue 14 C): `...products(sku,name)` merges the one related row's columns
into the parent's, nulls when there is none; a to-many spread is PostgREST's PGRST119."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from harness import ServerProcess
from rest.support import Tenant, insert_sale, run_sql, sign_up


@pytest.fixture(scope="module")
def spread_shop(server: ServerProcess, owner_dsn: str) -> dict[str, Any]:
    tenant = sign_up(server)
    rows = [
        {"sku": "K", "name": "Kopi", "sale_price": "2.50", "is_active": True},
        {"sku": "N", "name": "Nasi Lemak", "sale_price": "6.50", "is_active": True},
    ]
    products = tenant.client.table("products").insert(rows).execute().data
    by_sku = {p["sku"]: p for p in products}
    sale = insert_sale(owner_dsn, tenant.id, [(by_sku["K"], Decimal(2)), (by_sku["N"], Decimal(1))])
    customer = tenant.client.table("customers").insert({"name": "Aminah"}).execute().data[0]
    run_sql(
        owner_dsn,
        "update public.sales set customer_id = $1 where id = $2",
        uuid.UUID(customer["id"]),
        uuid.UUID(sale),
    )
    other = insert_sale(owner_dsn, tenant.id, [(by_sku["K"], Decimal(1))])  # no customer
    return {"tenant": tenant, "sale": sale, "other": other}


@pytest.fixture
def get(server: ServerProcess, spread_shop: dict[str, Any]) -> Callable[..., httpx.Response]:
    tenant: Tenant = spread_shop["tenant"]

    def call(path: str, **params: str) -> httpx.Response:
        headers = {"apikey": server.anon_key, "Authorization": f"Bearer {tenant.access_token}"}
        return httpx.get(f"{server.url}/rest/v1{path}", headers=headers, params=params)

    return call


def test_to_one_spread_merges_columns(
    owner_dsn: str, spread_shop: dict[str, Any], get: Callable[..., httpx.Response]
) -> None:
    tenant: Tenant = spread_shop["tenant"]
    res = get(
        "/sale_items",
        select="line_no,quantity,...products(sku,product_name:name)",
        sale_id=f"eq.{spread_shop['sale']}",
        order="line_no",
    )
    assert res.status_code == 200, res.text
    expected = run_sql(
        owner_dsn,
        "select i.line_no, i.quantity, p.sku, p.name from public.sale_items i "
        "left join public.products p on p.business_owner_id = i.business_owner_id "
        "and p.id = i.product_id where i.sale_id = $1 order by i.line_no",
        uuid.UUID(spread_shop["sale"]),
        as_user=tenant.id,
    )
    assert [
        (r["line_no"], Decimal(str(r["quantity"])), r["sku"], r["product_name"]) for r in res.json()
    ] == [(e["line_no"], e["quantity"], e["sku"], e["name"]) for e in expected]
    assert set(res.json()[0]) == {"line_no", "quantity", "sku", "product_name"}


def test_spread_without_a_row_gives_nulls_and_nests(
    spread_shop: dict[str, Any], get: Callable[..., httpx.Response]
) -> None:
    res = get(
        "/sales",
        select="id,...customers(customer_name:name),sale_items(line_no,...products(sku))",
        order="created_at",
        **{"sale_items.order": "line_no"},
    )
    assert res.status_code == 200, res.text
    by_id = {r["id"]: r for r in res.json()}
    assert by_id[spread_shop["sale"]]["customer_name"] == "Aminah"
    assert by_id[spread_shop["other"]]["customer_name"] is None
    assert by_id[spread_shop["sale"]]["sale_items"] == [
        {"line_no": 1, "sku": "K"},
        {"line_no": 2, "sku": "N"},
    ]
    # `!inner` keeps only the sales that have a customer.
    res = get("/sales", select="id,...customers!inner(name)")
    assert [r["id"] for r in res.json()] == [spread_shop["sale"]]


def test_to_many_spread_is_refused(get: Callable[..., httpx.Response]) -> None:
    res = get("/sales", select="id,...sale_items(line_no)")
    assert res.status_code == 400, res.text
    assert res.json() == {
        "code": "PGRST119",
        "details": "'sales' and 'sale_items' do not form a many-to-one or one-to-one relationship",
        "hint": None,
        "message": "A spread operation on 'sale_items' is not possible",
    }
