"""Inserts, upserts, updates and deletes with each `Prefer` option, checked against the rows
in the database afterwards (read directly in SQL as the same tenant)."""

from __future__ import annotations

from typing import Any

import pytest
from postgrest import APIError
from postgrest.types import CountMethod, ReturnMethod
from rest.support import Tenant, run_sql


def skus(owner_dsn: str, tenant: Tenant) -> dict[str, dict[str, Any]]:
    rows = run_sql(
        owner_dsn,
        "select sku, name, unit, category, sale_price::text as price "
        "from public.products order by sku",
        as_user=tenant.id,
    )
    return {r["sku"]: dict(r) for r in rows}


def test_insert_return_minimal_and_headers_only(tenant: Tenant, owner_dsn: str, rest: Any) -> None:
    res = (
        tenant.client.table("products")
        .insert({"sku": "M1", "name": "Minimal", "sale_price": 1}, returning=ReturnMethod.minimal)
        .execute()
    )
    assert res.data == []
    raw = rest(
        "POST",
        "/products",
        token=tenant.access_token,
        json={"sku": "H1", "name": "Headers", "sale_price": 1},
        headers={"Prefer": "return=headers-only"},
    )
    assert raw.status_code == 201 and raw.content == b""
    assert set(skus(owner_dsn, tenant)) == {"M1", "H1"}


def test_insert_representation_with_select_and_count(tenant: Tenant, rest: Any) -> None:
    res = (
        tenant.client.table("products")
        .insert(
            [
                {"sku": "A", "name": "a", "sale_price": 1},
                {"sku": "B", "name": "b", "sale_price": 2},
            ],
            count=CountMethod.exact,
        )
        .select("sku")
        .execute()
    )
    assert res.data == [{"sku": "A"}, {"sku": "B"}]
    assert res.count == 2
    one = (
        tenant.client.table("products")
        .insert({"sku": "C", "name": "c", "sale_price": 3})
        .select("sku, name")
        .single()
        .execute()
    )
    assert one.data == {"sku": "C", "name": "c"}


def test_bulk_insert_columns_null_versus_missing_default(tenant: Tenant, owner_dsn: str) -> None:
    rows = [
        {"sku": "X1", "name": "x", "sale_price": 1, "category": "c", "unit": "kg"},
        {"sku": "X2", "name": "y", "sale_price": 2},
    ]
    # default_to_null (the client's default): X2's unit is an explicit null → NOT NULL → 400,
    # and X1 is not written either.
    with pytest.raises(APIError) as err:
        tenant.client.table("products").insert(rows).execute()
    assert err.value.code == "23502"
    assert skus(owner_dsn, tenant) == {}
    # missing=default: X2 takes the column defaults instead.
    tenant.client.table("products").insert(rows, default_to_null=False).execute()
    stored = skus(owner_dsn, tenant)
    assert stored["X1"]["unit"] == "kg" and stored["X2"]["unit"] == "pcs"
    assert stored["X2"]["category"] is None


def test_columns_param_limits_what_is_written(tenant: Tenant, owner_dsn: str, rest: Any) -> None:
    raw = rest(
        "POST",
        "/products",
        token=tenant.access_token,
        params={"columns": '"sku","name","sale_price"'},
        json=[{"sku": "P1", "name": "p", "sale_price": 1, "category": "ignored"}],
    )
    assert raw.status_code == 201, raw.text
    assert skus(owner_dsn, tenant)["P1"]["category"] is None


def test_upsert_merge_and_ignore_duplicates(tenant: Tenant, owner_dsn: str) -> None:
    table = tenant.client.table("products")
    first = table.insert({"sku": "U1", "name": "old", "sale_price": 1}).execute().data[0]
    # on_conflict=sku: the key is (business_owner_id, sku); the owner column is implied.
    merged = (
        table.upsert({"sku": "U1", "name": "new", "sale_price": 2}, on_conflict="sku")
        .execute()
        .data
    )
    assert merged[0]["id"] == first["id"] and merged[0]["name"] == "new"
    ignored = table.upsert(
        {"sku": "U1", "name": "ignored", "sale_price": 9}, on_conflict="sku", ignore_duplicates=True
    ).execute()
    assert ignored.data == []
    # Primary-key upsert by id (the default conflict target), with a new row alongside.
    table.upsert(
        [
            {"id": first["id"], "sku": "U1", "name": "by id", "sale_price": 3},
            {"sku": "U2", "name": "fresh", "sale_price": 4},
        ],
        default_to_null=False,
    ).execute()
    stored = skus(owner_dsn, tenant)
    assert stored["U1"]["name"] == "by id" and stored["U1"]["price"] == "3.00"
    assert stored["U2"]["name"] == "fresh"


def test_update_and_delete_with_filters_and_counts(tenant: Tenant, owner_dsn: str) -> None:
    table = tenant.client.table("products")
    table.insert(
        [{"sku": f"D{i}", "name": f"d{i}", "sale_price": i, "category": "c"} for i in range(5)]
    ).execute()
    res = table.update({"category": "cheap"}, count=CountMethod.exact).lt("sale_price", 2).execute()
    assert res.count == 2 and {r["sku"] for r in res.data} == {"D0", "D1"}
    assert table.update({"name": "none"}).eq("sku", "nope").execute().data == []
    minimal = table.update({"name": "z"}, returning=ReturnMethod.minimal).eq("sku", "D4").execute()
    assert minimal.data == []
    gone = table.delete(count=CountMethod.exact).eq("category", "cheap").execute()
    assert gone.count == 2
    stored = skus(owner_dsn, tenant)
    assert set(stored) == {"D2", "D3", "D4"} and stored["D4"]["name"] == "z"


def test_max_affected_strict_rolls_back(tenant: Tenant, owner_dsn: str) -> None:
    def products() -> Any:
        return tenant.client.table("products")

    products().insert([{"sku": f"S{i}", "name": "s", "sale_price": 1} for i in range(3)]).execute()
    with pytest.raises(APIError) as err:
        products().update({"name": "many"}).eq("name", "s").max_affected(2).execute()
    assert err.value.code == "PGRST124"
    with pytest.raises(APIError):
        products().delete().eq("name", "s").max_affected(1).execute()
    assert {r["name"] for r in skus(owner_dsn, tenant).values()} == {"s"}
    assert len(skus(owner_dsn, tenant)) == 3
    assert len(products().delete().eq("sku", "S0").max_affected(1).execute().data) == 1


def test_single_object_mutation_that_hits_many_rows_is_rolled_back(
    tenant: Tenant, owner_dsn: str, rest: Any
) -> None:
    tenant.client.table("products").insert(
        [{"sku": f"R{i}", "name": "r", "sale_price": 1} for i in range(2)]
    ).execute()
    raw = rest(
        "PATCH",
        "/products",
        token=tenant.access_token,
        params={"name": "eq.r"},
        json={"name": "changed"},
        headers={"Accept": "application/vnd.pgrst.object+json", "Prefer": "return=representation"},
    )
    assert raw.status_code == 406 and raw.json()["code"] == "PGRST116"
    assert {r["name"] for r in skus(owner_dsn, tenant).values()} == {"r"}


def test_tx_rollback_preference(tenant: Tenant, owner_dsn: str, rest: Any) -> None:
    raw = rest(
        "POST",
        "/products",
        token=tenant.access_token,
        json={"sku": "TX", "name": "t", "sale_price": 1},
        headers={"Prefer": "return=representation,tx=rollback"},
    )
    assert raw.status_code == 201 and raw.json()[0]["sku"] == "TX"
    assert skus(owner_dsn, tenant) == {}


def test_strip_nulls(tenant: Tenant) -> None:
    tenant.client.table("products").insert({"sku": "N", "name": "n", "sale_price": 1}).execute()
    row = tenant.client.table("products").select("sku,category").strip_nulls().execute().data
    assert row == [{"sku": "N"}]


def test_delete_ignores_its_empty_body(tenant: Tenant, rest: Any) -> None:
    tenant.client.table("products").insert({"sku": "E", "name": "e", "sale_price": 1}).execute()
    raw = rest(
        "DELETE",
        "/products",
        token=tenant.access_token,
        params={"sku": "eq.E"},
        content=b"{}",
        headers={"Content-Type": "application/json"},
    )
    assert raw.status_code == 204
