"""Refused writes say what to do: an enum value lists the allowed ones, a function-only column
names the RPC to call. PostgREST's error shape and the status stay as they were."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
from harness import ServerProcess
from postgrest.exceptions import APIError
from supabase import Client

from pocketbizz.errors import ENUM_CHECKS, FUNCTION_ONLY_WRITES
from pocketbizz.rest.openapi import enum_values

_CHECKS = """
select con.conname, c.relname, pg_catalog.pg_get_constraintdef(con.oid) as definition
from pg_catalog.pg_constraint con
join pg_catalog.pg_class c on c.oid = con.conrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and con.contype = 'c'
"""


async def test_enum_checks_are_the_catalogs(shipped_schema: asyncpg.Pool) -> None:
    """errors.ENUM_CHECKS lists exactly the enum-like CHECKs of the schema, value for value."""
    in_catalog = {}
    for row in await shipped_schema.fetch(_CHECKS):
        found = enum_values(row["definition"])
        if found is not None:
            in_catalog[row["conname"]] = found
    assert in_catalog == ENUM_CHECKS
    assert in_catalog["sales_channel_check"] == ("channel", ("walk-in", "online", "delivery"))


async def test_function_only_tables_hold_back_a_client_write(shipped_schema: asyncpg.Pool) -> None:
    """Every table the wording explains really refuses some write of `authenticated`."""
    for table in FUNCTION_ONLY_WRITES:
        refused = await shipped_schema.fetchval(
            """
            select not (has_table_privilege('authenticated', $1, 'insert')
                        and has_table_privilege('authenticated', $1, 'update')
                        and has_table_privilege('authenticated', $1, 'delete'))
                   or exists (select from information_schema.columns c
                              where c.table_schema = 'public' and c.table_name = $2
                                and not has_column_privilege('authenticated', $1, c.column_name,
                                                             'update'))
            """,
            f"public.{table}",
            table,
        )
        assert refused, table


def _refused(call: Callable[[], Any]) -> APIError:
    with pytest.raises(APIError) as info:
        call()
    return info.value


def _product(client: Client) -> dict[str, Any]:
    rows = client.table("products").insert(
        {"sku": "TEH", "name": "Teh tarik", "sale_price": "2.50"}
    )
    return rows.execute().data[0]


def test_writing_current_stock_names_the_rpcs(make_user: Callable[..., Any]) -> None:
    user = make_user()
    product = _product(user.client)

    update = _refused(
        lambda: (
            user.client.table("products")
            .update({"current_stock": 99})
            .eq("id", product["id"])
            .execute()
        )
    )
    assert update.code == "42501"
    assert update.message is not None
    assert update.message.startswith("permission denied for table products: current_stock")
    for rpc in ("adjust_stock", "record_purchase", "record_production"):
        assert rpc in update.message
    assert update.hint is not None and "adjust_stock" in update.hint

    insert = _refused(
        lambda: (
            user.client.table("products")
            .insert({"sku": "KOPI", "name": "Kopi", "sale_price": 3, "current_stock": 10})
            .execute()
        )
    )
    assert insert.code == "42501" and insert.message == update.message


def test_writing_sales_names_create_sale(make_user: Callable[..., Any]) -> None:
    user = make_user()
    refused = _refused(
        lambda: (
            user.client.table("sales")
            .insert({"sale_number": "X-1", "total_amount": 1, "final_amount": 1})
            .execute()
        )
    )
    assert refused.code == "42501"
    assert refused.message is not None and "create_sale" in refused.message

    ledger = _refused(
        lambda: (
            user.client.table("stock_movements")
            .insert(
                {
                    "product_id": _product(user.client)["id"],
                    "reference_type": "opening",
                    "movement_type": "in",
                    "quantity": 5,
                }
            )
            .execute()
        )
    )
    assert ledger.message is not None and "record_purchase" in ledger.message


def test_subscription_fields_say_how_they_change(make_user: Callable[..., Any]) -> None:
    user = make_user()
    refused = _refused(
        lambda: (
            user.client.table("users")
            .update({"subscription_plan": "pro"})
            .eq("id", user.id)
            .execute()
        )
    )
    assert refused.code == "42501"
    assert refused.message is not None and "payment flow" in refused.message


def test_status_and_shape_are_postgrests(
    make_user: Callable[..., Any], server: ServerProcess
) -> None:
    user = make_user()
    product = _product(user.client)
    raw = httpx.patch(
        f"{server.url}/rest/v1/products?id=eq.{product['id']}",
        headers={"apikey": server.anon_key, "Authorization": f"Bearer {user.access_token}"},
        json={"current_stock": 1},
    )
    assert raw.status_code == 403
    assert set(raw.json()) == {"code", "details", "hint", "message"}

    # anon is refused before any rule applies: the plain message, 401.
    anon = httpx.patch(
        f"{server.url}/rest/v1/products?id=eq.{product['id']}",
        headers={"apikey": server.anon_key},
        json={"current_stock": 1},
    )
    assert anon.status_code == 401
    assert anon.json()["message"] == "permission denied for table products"


def test_refused_enum_value_lists_the_allowed_ones(
    make_user: Callable[..., Any], service_client: Client
) -> None:
    user = make_user()
    product = _product(user.client)
    refused = _refused(
        lambda: (
            user.client.table("products")
            .update({"negative_stock_policy": "sometimes"})
            .eq("id", product["id"])
            .execute()
        )
    )
    assert refused.code == "23514"
    assert refused.message == (
        'new row for relation "products" violates check constraint '
        '"products_negative_stock_policy_check"'
    )
    assert refused.hint == "negative_stock_policy must be one of: block, allow"

    # service_role writes sales directly (an import, a repair): same wording for channels.
    channel = _refused(
        lambda: (
            service_client.table("sales")
            .insert(
                {
                    "business_owner_id": user.id,
                    "sale_number": "IMPORT-1",
                    "channel": "shopee",
                    "total_amount": 10,
                    "final_amount": 10,
                }
            )
            .execute()
        )
    )
    assert channel.code == "23514"
    assert channel.hint == "channel must be one of: walk-in, online, delivery"


def test_other_check_violations_keep_postgres_wording(make_user: Callable[..., Any]) -> None:
    user = make_user()
    refused = _refused(
        lambda: (
            user.client.table("products")
            .insert({"sku": "NEG", "name": "Negative", "sale_price": -1})
            .execute()
        )
    )
    assert refused.code == "23514" and refused.hint is None
    assert refused.message is not None and "violates check constraint" in refused.message
