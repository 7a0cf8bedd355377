"""Tenant isolation over REST: with its own token, tenant B gets empty results, zero affected
rows or 42501 for everything aimed at tenant A's rows; anon gets nothing. A's rows are checked
directly in the database afterwards."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from harness import ServerProcess
from postgrest import APIError
from postgrest.types import CountMethod
from rest.support import Tenant, insert_sale, run_sql, sign_up
from supabase import Client


@pytest.fixture(scope="module")
def tenants(server: ServerProcess, owner_dsn: str) -> dict[str, Any]:
    a = sign_up(server)
    b = sign_up(server)
    product = (
        a.client.table("products")
        .insert({"sku": "A-1", "name": "A's kopi", "sale_price": "2.00"})
        .execute()
        .data[0]
    )
    customer = a.client.table("customers").insert({"name": "A's customer"}).execute().data[0]
    sale = insert_sale(owner_dsn, a.id, [(product, Decimal(1))])
    b.client.table("products").insert(
        {"sku": "B-1", "name": "B's teh", "sale_price": "1.00"}
    ).execute()
    return {"a": a, "b": b, "product": product, "customer": customer, "sale": sale}


def a_state(owner_dsn: str, a: Tenant) -> list[tuple[Any, ...]]:
    rows = run_sql(
        owner_dsn,
        "select id, sku, name, sale_price, business_owner_id "
        "from public.products where business_owner_id = $1 order by id",
        uuid.UUID(a.id),
    )
    return [tuple(r) for r in rows]


READ_TABLES = [
    "products",
    "customers",
    "sales",
    "sale_items",
    "stock_movements",
    "business_profiles",
    "users",
    "payment_settings",
    "payment_links",
]


@pytest.mark.parametrize("table", READ_TABLES)
def test_b_reads_none_of_a(tenants: dict[str, Any], table: str) -> None:
    a: Tenant = tenants["a"]
    b: Tenant = tenants["b"]
    rows = b.client.table(table).select("*", count=CountMethod.exact).execute()
    assert all(r["business_owner_id"] == b.id for r in rows.data)
    assert rows.count == len(rows.data)
    aimed = b.client.table(table).select("*").eq("business_owner_id", a.id).execute()
    assert aimed.data == []


def test_b_cannot_reach_a_by_id_or_embedding(tenants: dict[str, Any]) -> None:
    b: Tenant = tenants["b"]
    pid = tenants["product"]["id"]
    assert b.client.table("products").select("*").eq("id", pid).execute().data == []
    assert b.client.table("products").select("*").eq("id", pid).maybe_single().execute() is None
    with pytest.raises(APIError) as err:
        b.client.table("products").select("*").eq("id", pid).single().execute()
    assert err.value.code == "PGRST116"
    assert (
        b.client.table("sales")
        .select("*, sale_items(*, products(*))")
        .eq("id", tenants["sale"])
        .execute()
        .data
        == []
    )
    # B's own rows, embedding the tables where A's rows live: nothing of A comes along.
    mine = b.client.table("users").select("*, products(*), sales(*), customers(*)").execute().data
    assert len(mine) == 1 and mine[0]["id"] == b.id
    assert [p["sku"] for p in mine[0]["products"]] == ["B-1"]
    assert mine[0]["sales"] == [] and mine[0]["customers"] == []
    own = b.client.table("products").select("sku, sale_items(*), users(email)").execute().data
    assert [(p["sku"], p["sale_items"]) for p in own] == [("B-1", [])]


def test_b_updates_and_deletes_touch_nothing_of_a(tenants: dict[str, Any], owner_dsn: str) -> None:
    a: Tenant = tenants["a"]
    b: Tenant = tenants["b"]
    before = a_state(owner_dsn, a)
    pid = tenants["product"]["id"]
    res = (
        b.client.table("products")
        .update({"name": "hacked"}, count=CountMethod.exact)
        .eq("id", pid)
        .execute()
    )
    assert res.data == [] and res.count == 0
    res = (
        b.client.table("products")
        .update({"name": "hacked"})
        .eq("business_owner_id", a.id)
        .execute()
    )
    assert res.data == []
    res = b.client.table("products").delete(count=CountMethod.exact).eq("id", pid).execute()
    assert res.data == [] and res.count == 0
    assert (
        b.client.table("customers").delete().eq("id", tenants["customer"]["id"]).execute().data
        == []
    )
    assert a_state(owner_dsn, a) == before


def test_b_inserts_and_upserts_cannot_land_in_a(tenants: dict[str, Any], owner_dsn: str) -> None:
    a: Tenant = tenants["a"]
    b: Tenant = tenants["b"]
    before = a_state(owner_dsn, a)
    product = tenants["product"]
    aimed = [
        lambda: (
            b.client.table("products")
            .insert({"business_owner_id": a.id, "sku": "X", "name": "x", "sale_price": 1})
            .execute()
        ),
        lambda: (
            b.client.table("products")
            .upsert({**_writable(product), "business_owner_id": a.id, "name": "hijack"})
            .execute()
        ),
        lambda: (
            b.client.table("products")
            .upsert(
                {"business_owner_id": a.id, "sku": "A-1", "name": "hijack", "sale_price": 1},
                on_conflict="business_owner_id,sku",
            )
            .execute()
        ),
        lambda: (
            b.client.table("customers")
            .upsert({"business_owner_id": a.id, "id": tenants["customer"]["id"], "name": "hijack"})
            .execute()
        ),
    ]
    for attempt in aimed:
        with pytest.raises(APIError) as err:
            attempt()
        assert err.value.code == "42501"
    # Upserts naming A's keys without an owner land in B's own tenant, never in A's row.
    mine = (
        b.client.table("products")
        .upsert({"id": product["id"], "sku": "A-1", "name": "B's copy", "sale_price": 5})
        .execute()
        .data
    )
    assert mine[0]["business_owner_id"] == b.id
    by_sku = (
        b.client.table("products")
        .upsert({"sku": "A-1", "name": "B's copy 2", "sale_price": 5}, on_conflict="sku")
        .execute()
        .data
    )
    assert by_sku[0]["business_owner_id"] == b.id and by_sku[0]["name"] == "B's copy 2"
    assert a_state(owner_dsn, a) == before
    # Tables clients cannot write at all.
    with pytest.raises(APIError) as err:
        b.client.table("sale_items").insert(
            {
                "sale_id": tenants["sale"],
                "product_id": product["id"],
                "product_name": "x",
                "quantity": 1,
                "unit_price": 1,
                "subtotal": 1,
            }
        ).execute()
    assert err.value.code == "42501"


def _writable(product: dict[str, Any]) -> dict[str, Any]:
    return {k: product[k] for k in ("id", "sku", "name", "sale_price")}


def test_anon_gets_nothing(anon_client: Client, tenants: dict[str, Any], rest: Any) -> None:
    for table in READ_TABLES:
        raw = rest("GET", f"/{table}")
        assert raw.status_code == 401, (table, raw.text)
        assert raw.json()["code"] == "42501"
    with pytest.raises(APIError) as err:
        anon_client.table("products").insert({"sku": "Z", "name": "z", "sale_price": 1}).execute()
    assert err.value.code == "42501"
    with pytest.raises(APIError):
        anon_client.table("products").delete().eq("id", tenants["product"]["id"]).execute()
    # Plans are public reference data: the one table anon may read.
    assert {p["code"] for p in anon_client.table("plans").select("code").execute().data} >= {
        "free",
        "pro",
    }
