"""RPC: named JSON arguments, defaults, GET for stable functions, scalar/composite/setof/void
results, `select` and filters on set results. The functions are created while the server runs,
so the suite also proves the schema cache reloads after DDL without a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from harness import ServerProcess
from postgrest import APIError
from rest.support import Tenant, run_sql, sign_up
from supabase import Client

FUNCTIONS = """
create function public.rest_test_add(a integer, b integer default 10) returns integer
language sql immutable as $$ select a + b $$;
create function public.rest_test_products_under(max_price numeric) returns setof public.products
language sql stable as $$ select * from public.products where sale_price < max_price $$;
create function public.rest_test_price_stats() returns table (n bigint, top numeric)
language sql stable as $$ select count(*), max(sale_price) from public.products $$;
create function public.rest_test_cheapest() returns public.products
language sql stable as $$ select * from public.products order by sale_price, sku limit 1 $$;
create function public.rest_test_names() returns setof text
language sql stable as $$ select name from public.products order by name $$;
create function public.rest_test_echo(payload jsonb, tags text[] default '{}') returns jsonb
language sql immutable as $$ select jsonb_build_object('payload', payload, 'tags', tags) $$;
create function public.rest_test_note(note text) returns void
language plpgsql as $$ begin perform note; end $$;
create function public.rest_test_pay() returns integer
language plpgsql as $$ begin raise exception 'upgrade first' using errcode = 'PT402'; end $$;
grant execute on function public.rest_test_add(integer, integer), public.rest_test_echo(jsonb,
    text[]) to anon, authenticated;
grant execute on function public.rest_test_products_under(numeric),
    public.rest_test_price_stats(), public.rest_test_cheapest(), public.rest_test_names(),
    public.rest_test_note(text), public.rest_test_pay() to authenticated;
"""
NAMES = [
    "rest_test_add(integer, integer)",
    "rest_test_products_under(numeric)",
    "rest_test_price_stats()",
    "rest_test_cheapest()",
    "rest_test_names()",
    "rest_test_echo(jsonb, text[])",
    "rest_test_note(text)",
    "rest_test_pay()",
]


def wait_for(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the schema cache did not reload")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def rpc_shop(server: ServerProcess, owner_dsn: str) -> Iterator[Tenant]:
    tenant = sign_up(server)
    tenant.client.table("products").insert(
        [
            {"sku": "A", "name": "Kopi", "sale_price": "2.50"},
            {"sku": "B", "name": "Teh", "sale_price": "3.00"},
            {"sku": "C", "name": "Nasi", "sale_price": "6.50"},
        ]
    ).execute()
    url = f"{server.url}/rest/v1/rpc/rest_test_pay"
    headers = {"apikey": server.anon_key, "Authorization": f"Bearer {tenant.access_token}"}
    assert httpx.post(url, headers=headers, json={}).status_code == 404
    # No NOTIFY here: the DDL's event trigger (migration 0006) announces the change.
    run_sql(owner_dsn, f"do $do$ begin {FUNCTIONS.replace('$$', '$f$')} end $do$")
    wait_for(lambda: httpx.post(url, headers=headers, json={}).status_code == 402)
    yield tenant
    drops = "".join(f"drop function public.{n};" for n in NAMES)
    run_sql(owner_dsn, f"do $do$ begin {drops} end $do$")


def test_scalar_with_named_args_and_defaults(rpc_shop: Tenant, anon_client: Client) -> None:
    assert rpc_shop.client.rpc("rest_test_add", {"a": 1, "b": 2}).execute().data == 3
    assert rpc_shop.client.rpc("rest_test_add", {"a": 1}).execute().data == 11
    assert anon_client.rpc("rest_test_add", {"a": 5, "b": 5}, get=True).execute().data == 10


def test_json_and_array_arguments(rpc_shop: Tenant) -> None:
    res = rpc_shop.client.rpc(
        "rest_test_echo", {"payload": {"x": [1, 2.5, None]}, "tags": ["a", "b,c"]}
    ).execute()
    assert res.data == {"payload": {"x": [1, 2.5, None]}, "tags": ["a", "b,c"]}


def test_setof_table_with_select_filters_order(rpc_shop: Tenant, owner_dsn: str) -> None:
    res = (
        rpc_shop.client.rpc("rest_test_products_under", {"max_price": 5}, count="exact")
        .select("sku, name")
        .gt("sale_price", 2.6)
        .order("sku", desc=True)
        .execute()
    )
    expected = run_sql(
        owner_dsn,
        "select sku, name from public.rest_test_products_under(5) "
        "where sale_price > 2.6 order by sku desc",
        as_user=rpc_shop.id,
    )
    assert res.data == [dict(r) for r in expected]
    assert res.count == len(expected)
    embedded = (
        rpc_shop.client.rpc("rest_test_products_under", {"max_price": 3})
        .select("sku, users(email)")
        .execute()
        .data
    )
    assert [r["sku"] for r in embedded] == ["A"] and "email" in embedded[0]["users"]
    got = (
        rpc_shop.client.rpc("rest_test_products_under", {"max_price": "3"}, get=True)
        .select("sku")
        .execute()
        .data
    )
    assert got == [{"sku": "A"}]


def test_composite_record_and_scalar_sets(rpc_shop: Tenant) -> None:
    stats = rpc_shop.client.rpc("rest_test_price_stats", {}).execute().data
    assert stats == [{"n": 3, "top": 6.5}]
    cheapest = rpc_shop.client.rpc("rest_test_cheapest", {}).select("sku").execute().data
    assert cheapest == {"sku": "A"}
    assert rpc_shop.client.rpc("rest_test_names", {}).execute().data == ["Kopi", "Nasi", "Teh"]


def test_void_errors_and_permissions(
    rpc_shop: Tenant, anon_client: Client, server: ServerProcess
) -> None:
    void = rpc_shop.client.rpc("rest_test_note", {"note": "hi"}).execute()
    assert void.data in ([], None, "")
    with pytest.raises(APIError) as err:
        rpc_shop.client.rpc("rest_test_pay", {}).execute()
    assert err.value.code == "PT402" and err.value.message == "upgrade first"
    with pytest.raises(APIError) as err:
        rpc_shop.client.rpc("rest_test_add", {"x": 1}).execute()
    assert err.value.code == "PGRST202"
    # A VOLATILE function that writes nothing may be called with GET (read-only transaction);
    # one that writes fails there — see test_compat.py.
    assert rpc_shop.client.rpc("rest_test_note", {"note": "x"}, get=True).execute().data in (
        [],
        None,
        "",
    )
    with pytest.raises(APIError) as err:
        anon_client.rpc("rest_test_names", {}).execute()
    assert err.value.code == "42501"
    raw = httpx.post(
        f"{server.url}/rest/v1/rpc/rest_test_add",
        headers={"apikey": server.anon_key},
        json={"a": "x"},
    )
    assert raw.status_code == 400 and raw.json()["code"] == "22P02"


def test_openapi_describes_tables_and_functions(rpc_shop: Tenant, server: ServerProcess) -> None:
    doc = httpx.get(f"{server.url}/rest/v1/", headers={"apikey": server.anon_key}).json()
    assert doc["swagger"] == "2.0"
    assert "/products" in doc["paths"] and "post" in doc["paths"]["/products"]
    props = doc["definitions"]["products"]["properties"]
    assert props["sale_price"]["type"] == "number" and props["id"]["format"] == "uuid"
    assert "sale_price" in doc["definitions"]["products"]["required"]
    # As PostgREST lists them (since 13.0.5): GET and POST for a STABLE or IMMUTABLE function,
    # POST only for a VOLATILE one, although GET runs it read-only (test_compat.py).
    assert set(doc["paths"]["/rpc/rest_test_add"]) == {"get", "post"}
    assert set(doc["paths"]["/rpc/rest_test_names"]) == {"get", "post"}
    assert set(doc["paths"]["/rpc/rest_test_note"]) == {"post"}
    assert set(doc["paths"]["/rpc/rest_test_pay"]) == {"post"}


def test_openapi_serves_column_comments_and_enums(server: ServerProcess) -> None:
    """A CHECK listing values (0002: `channel in ('walk-in', 'online', 'delivery')`) is the
    column's `enum`; a column comment (0014_comments.sql) is its description."""
    for key in (server.anon_key, server.service_key):
        doc = httpx.get(f"{server.url}/rest/v1/", headers={"apikey": key}).json()
        sales = doc["definitions"]["sales"]["properties"]
        assert sales["channel"]["enum"] == ["walk-in", "online", "delivery"]
        assert sales["sale_number"]["description"] == (
            "Per-tenant gapless number from business_profiles.sale_number_format."
        )
        assert "enum" not in sales["notes"]


def test_explicit_notify_reloads_without_the_event_trigger(
    rpc_shop: Tenant, server: ServerProcess, owner_dsn: str
) -> None:
    url = f"{server.url}/rest/v1/rpc/rest_test_late"
    headers = {"apikey": server.anon_key, "Authorization": f"Bearer {rpc_shop.access_token}"}
    run_sql(owner_dsn, "alter event trigger pocketbizz_rest_schema_reload disable")
    try:
        run_sql(
            owner_dsn,
            "do $do$ begin create function public.rest_test_late() returns integer "
            "language sql immutable as $f$ select 7 $f$; grant execute on function "
            "public.rest_test_late() to authenticated; end $do$",
        )
        time.sleep(0.5)
        assert httpx.post(url, headers=headers, json={}).status_code == 404  # not announced
        run_sql(owner_dsn, "select pg_notify('pocketbizz_schema', 'reload')")
        wait_for(lambda: httpx.post(url, headers=headers, json={}).status_code == 200)
        assert httpx.post(url, headers=headers, json={}).json() == 7
    finally:
        run_sql(owner_dsn, "alter event trigger pocketbizz_rest_schema_reload enable")
        run_sql(owner_dsn, "drop function if exists public.rest_test_late()")
