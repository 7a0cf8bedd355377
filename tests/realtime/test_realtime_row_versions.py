"""Each event carries the row version its change wrote, and none is lost to a later change."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from harness import ServerProcess
from rt_helpers import Inbox, change, signed_in
from supabase import AsyncClient
from test_realtime_changes import rest, subscribe


async def test_bulk_insert_then_update_and_delete_keeps_every_version(
    server: ServerProcess, make_user: Callable[..., Any], clients: list[AsyncClient]
) -> None:
    a = make_user()
    client_a = await signed_in(server, a.email, a.password)
    clients.append(client_a)
    inbox = Inbox()
    await subscribe(client_a, "versions", products=inbox)

    rows = [{"sku": f"Q{i:02d}", "name": f"Kuih {i}", "sale_price": "2.00"} for i in range(20)]
    created = await rest(lambda: a.client.table("products").insert(rows).execute())
    ids = [r["id"] for r in created.data]
    # Changed and then deleted at once, before the INSERT events can have been delivered.
    await rest(
        lambda: (
            a.client.table("products").update({"sale_price": "9.99"}).like("sku", "Q%").execute()
        )
    )
    await rest(lambda: a.client.table("products").delete().like("sku", "Q%").execute())

    for type_, price in (("INSERT", Decimal("2.00")), ("UPDATE", Decimal("9.99"))):
        for row_id in ids:
            event = await inbox.wait_for(
                lambda i, t=type_, r=row_id: change(i, t, "products", r), within=3.0
            )
            assert Decimal(str(event["data"]["record"]["sale_price"])) == price, type_
    for row_id in ids:
        await inbox.wait_for(lambda i, r=row_id: change(i, "DELETE", "products", r), within=3.0)
    await asyncio.sleep(0.2)
    inserted = [
        i["data"]["record"]["id"] for i in inbox.items if str(i["data"]["type"].value) == "INSERT"
    ]
    assert sorted(inserted) == sorted(ids)  # each exactly once
