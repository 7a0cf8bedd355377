"""Row changes reach their tenant's subscribers through the official async client — and
nobody else's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from harness import ServerProcess
from realtime import RealtimeSubscribeStates
from rt_helpers import Inbox, change, signed_in
from supabase import AsyncClient


async def subscribe(client: AsyncClient, name: str, **inboxes: Inbox) -> None:
    """Subscribe `client` to every change of each table named in `inboxes`."""
    channel = client.channel(name)
    for table, inbox in inboxes.items():
        channel.on_postgres_changes("*", inbox, table=table, schema="public")
    states: list[RealtimeSubscribeStates] = []
    await channel.subscribe(lambda state, _err: states.append(state))
    assert states == [RealtimeSubscribeStates.SUBSCRIBED]


def rest(call: Callable[[], Any]) -> Any:
    """Run a sync REST call off the event loop, so realtime frames keep flowing meanwhile."""
    return asyncio.to_thread(call)


async def test_a_tenant_receives_its_own_changes_and_never_another_tenants(
    server: ServerProcess, make_user: Callable[..., Any], clients: list[AsyncClient]
) -> None:
    a, b = make_user(), make_user()
    client_a = await signed_in(server, a.email, a.password)
    client_b = await signed_in(server, b.email, b.password)
    clients.extend([client_a, client_b])
    a_products, a_sales, b_seen = Inbox(), Inbox(), Inbox()
    await subscribe(client_a, "a-shop", products=a_products, sales=a_sales)
    await subscribe(client_b, "b-shop", products=b_seen, sales=b_seen)

    # A adds a product through REST: the INSERT arrives within a second, money exact.
    created = await rest(
        lambda: (
            a.client.table("products")
            .insert(
                {"sku": "NL-1", "name": "Nasi lemak", "sale_price": "12.50", "cost_price": "4.00"}
            )
            .execute()
        )
    )
    product_id = created.data[0]["id"]
    event = await a_products.wait_for(lambda i: change(i, "INSERT", "products", product_id))
    data = event["data"]
    assert data["schema"] == "public" and data["errors"] is None
    assert data["commit_timestamp"].endswith("Z")
    assert {"name": "sale_price", "type": "numeric"} in data["columns"]
    assert data["record"]["business_owner_id"] == a.id
    assert Decimal(str(data["record"]["sale_price"])) == Decimal("12.50")
    assert "old_record" not in data

    # An update carries the new row and the key of the old one.
    await rest(
        lambda: (
            a.client.table("products")
            .update({"name": "Nasi lemak ayam"})
            .eq("id", product_id)
            .execute()
        )
    )
    event = await a_products.wait_for(lambda i: change(i, "UPDATE", "products", product_id))
    assert event["data"]["record"]["name"] == "Nasi lemak ayam"
    assert event["data"]["old_record"] == {"business_owner_id": a.id, "id": product_id}

    # A sale through create_sale: the sale and the product's stock update both arrive.
    await rest(
        lambda: a.client.rpc(
            "record_purchase", {"product_id": product_id, "quantity": 10, "unit_cost": "4.00"}
        ).execute()
    )
    sale = await rest(
        lambda: a.client.rpc(
            "create_sale", {"items": [{"product_id": product_id, "quantity": 2}]}
        ).execute()
    )
    sale_id = sale.data["id"]
    event = await a_sales.wait_for(lambda i: change(i, "INSERT", "sales", sale_id))
    assert event["data"]["record"]["business_owner_id"] == a.id

    # A deletes a product: the DELETE carries the key only.
    spare = await rest(
        lambda: (
            a.client.table("products")
            .insert({"sku": "TMP", "name": "Teh tarik", "sale_price": "3.00"})
            .execute()
        )
    )
    spare_id = spare.data[0]["id"]
    await rest(lambda: a.client.table("products").delete().eq("id", spare_id).execute())
    event = await a_products.wait_for(lambda i: change(i, "DELETE", "products", spare_id))
    assert event["data"]["old_record"] == {"business_owner_id": a.id, "id": spare_id}
    assert "record" not in event["data"] or event["data"]["record"] is None

    # B's own change reaches B; nothing of A's ever did, and B's row does not reach A.
    mine = await rest(
        lambda: (
            b.client.table("products")
            .insert({"sku": "B-1", "name": "Roti canai", "sale_price": "2.00"})
            .execute()
        )
    )
    b_product = mine.data[0]["id"]
    await b_seen.wait_for(lambda i: change(i, "INSERT", "products", b_product))
    owners = {
        (item["data"].get("record") or item["data"].get("old_record"))["business_owner_id"]
        for item in b_seen.items
    }
    assert owners == {b.id}
    assert all(
        (item["data"].get("record") or item["data"]["old_record"])["business_owner_id"] == a.id
        for item in (*a_products.items, *a_sales.items)
    )


async def test_filters_are_honoured(
    server: ServerProcess, make_user: Callable[..., Any], clients: list[AsyncClient]
) -> None:
    a = make_user()
    client = await signed_in(server, a.email, a.password)
    clients.append(client)
    pricey, snacks, one_sku, cheap_or_free = Inbox(), Inbox(), Inbox(), Inbox()
    channel = client.channel("filters")
    channel.on_postgres_changes("INSERT", pricey, table="products", filter="sale_price=gt.10")
    channel.on_postgres_changes("*", snacks, table="products", filter="category=in.(snack,drink)")
    channel.on_postgres_changes("*", one_sku, table="products", filter="sku=eq.KOPI-1")
    channel.on_postgres_changes(
        "INSERT", cheap_or_free, table="products", filter="sale_price=lte.2.00,is_active=eq.true"
    )
    await channel.subscribe()

    listed = [
        ("KOPI-1", "2.00", "drink", True),
        ("CAKE-1", "10.00", "cake", True),
        ("CAKE-2", "10.01", "cake", True),
        ("KEROPOK", "1.50", "snack", False),
        ("SET-9", "100", "set", True),
    ]
    rows = [
        {
            "sku": sku,
            "name": sku.title(),
            "sale_price": price,
            "category": category,
            "is_active": active,
        }
        for sku, price, category, active in listed
    ]
    created = await rest(lambda: a.client.table("products").insert(rows).execute())
    ids = {row["sku"]: row["id"] for row in created.data}
    # The last insert has arrived on the broadest binding: everything before it has too.
    await pricey.wait_for(lambda i: change(i, "INSERT", "products", ids["SET-9"]))
    await asyncio.sleep(0.3)

    def skus(inbox: Inbox) -> list[str]:
        return sorted(item["data"]["record"]["sku"] for item in inbox.items)

    # Numbers compare as numbers: 100 > 10 although "100" < "10.01" as text.
    assert skus(pricey) == ["CAKE-2", "SET-9"]
    assert skus(snacks) == ["KEROPOK", "KOPI-1"]
    assert skus(one_sku) == ["KOPI-1"]
    assert skus(cheap_or_free) == ["KOPI-1"]


async def test_a_row_too_big_for_a_notification_is_read_back(
    server: ServerProcess, make_user: Callable[..., Any], clients: list[AsyncClient]
) -> None:
    a = make_user()
    client = await signed_in(server, a.email, a.password)
    clients.append(client)
    inbox = Inbox()
    await subscribe(client, "big", products=inbox)
    description = "Sambal " * 2000  # ~14 kB: over the 8 kB NOTIFY limit
    created = await rest(
        lambda: (
            a.client.table("products")
            .insert({"sku": "BIG", "name": "Big", "sale_price": "1.00", "description": description})
            .execute()
        )
    )
    product_id = created.data[0]["id"]
    event = await inbox.wait_for(lambda i: change(i, "INSERT", "products", product_id))
    assert event["data"]["record"]["description"] == description
