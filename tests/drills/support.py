"""What the failure drills share: a tenant on a server of the drill's own, sales over plain HTTP
with a bounded timeout on every call, and the invariants read as the owner (no RLS)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import psycopg
from harness import ServerProcess
from supabase import create_client

# Every client call in the drills is bounded: a request that hangs fails the drill.
CALL_TIMEOUT = httpx.Timeout(20.0, connect=5.0)


@dataclass
class Tenant:
    id: str
    access_token: str
    product_id: str

    def headers(self, server: ServerProcess) -> dict[str, str]:
        return {"apikey": server.anon_key, "Authorization": f"Bearer {self.access_token}"}


def new_tenant(server: ServerProcess, stock: int) -> Tenant:
    client = create_client(server.url, server.anon_key)
    signed_up = client.auth.sign_up(
        {"email": f"drill-{uuid.uuid4().hex[:12]}@example.com", "password": "drill password 1"}
    )
    assert signed_up.user is not None and signed_up.session is not None
    product = (
        client.table("products")
        .insert({"sku": "DRILL", "name": "Nasi lemak", "sale_price": "5.50"})
        .execute()
        .data[0]
    )
    client.rpc(
        "adjust_stock",
        {"product_id": product["id"], "counted_quantity": stock, "reason": "count"},
    ).execute()
    return Tenant(signed_up.user.id, signed_up.session.access_token, product["id"])


def sell(
    http: httpx.Client, server: ServerProcess, tenant: Tenant, client_ref: str, quantity: int = 1
) -> httpx.Response:
    return http.post(
        f"{server.url}/rest/v1/rpc/create_sale",
        headers=tenant.headers(server),
        json={
            "items": [{"product_id": tenant.product_id, "quantity": quantity}],
            "client_ref": client_ref,
        },
        timeout=CALL_TIMEOUT,
    )


def invariants(owner_dsn: str, tenant: Tenant) -> dict[str, Any]:
    """The tenant's sales by client_ref, and every way a sale could be partial or the ledger off."""
    with psycopg.connect(owner_dsn) as conn:
        sales = conn.execute(
            "select client_ref::text, count(*) from public.sales"
            " where business_owner_id = %s group by client_ref",
            (tenant.id,),
        ).fetchall()
        without_items = conn.execute(
            """select count(*) from public.sales s
                where s.business_owner_id = %s
                  and not exists (select 1 from public.sale_items i
                                   where i.business_owner_id = s.business_owner_id
                                     and i.sale_id = s.id)""",
            (tenant.id,),
        ).fetchone()
        items_without_movement = conn.execute(
            """select count(*) from public.sale_items i
                where i.business_owner_id = %s
                  and not exists (select 1 from public.stock_movements m
                                   where m.business_owner_id = i.business_owner_id
                                     and m.reference_type = 'sale' and m.reference_id = i.sale_id
                                     and m.product_id = i.product_id)""",
            (tenant.id,),
        ).fetchone()
        stock = conn.execute(
            """select p.current_stock,
                      coalesce(sum(case m.movement_type when 'in' then m.quantity
                                                         else -m.quantity end), 0)
                 from public.products p
                 left join public.stock_movements m
                        on m.business_owner_id = p.business_owner_id and m.product_id = p.id
                where p.business_owner_id = %s and p.id = %s
                group by p.current_stock""",
            (tenant.id, tenant.product_id),
        ).fetchone()
    assert without_items is not None and items_without_movement is not None and stock
    return {
        "sales_by_client_ref": {ref: n for ref, n in sales},
        "sales_without_items": without_items[0],
        "items_without_movement": items_without_movement[0],
        "current_stock": Decimal(stock[0]),
        "ledger_stock": Decimal(stock[1]),
    }
