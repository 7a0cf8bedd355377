"""All receipt SQL: a sale loaded as `ReceiptData`, and the sale's public e-receipt link.

Every query names the tenant explicitly as well as running under its RLS, so the public page
(which runs as service_role after finding the tenant by token) reads exactly one tenant's rows.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from pocketbizz.functions.receipt_text import ReceiptData, ReceiptItem

_SALE = """
select s.sale_number, s.status, s.channel, s.total_amount, s.discount_amount, s.tax_amount,
       s.rounding_amount, s.final_amount, s.payment_method, s.payment_status,
       to_char(s.created_at at time zone coalesce(b.timezone, 'Asia/Kuala_Lumpur'),
               'DD/MM/YYYY HH24:MI') as local_time,
       b.business_name, b.registration_number, b.tax_number, b.phone, b.address,
       coalesce(b.prices_include_tax, false) as prices_include_tax,
       coalesce(b.sst_enabled, false) as sst_enabled,
       b.settings ->> 'receipt_footer' as footer
from public.sales s
left join public.business_profiles b on b.business_owner_id = s.business_owner_id
where s.business_owner_id = $1 and s.id = $2
"""

_ITEMS = """
select product_name, quantity, unit_price, discount_amount, subtotal
from public.sale_items
where business_owner_id = $1 and sale_id = $2
order by line_no, created_at, id
"""

# One live link per sale: the partial unique index makes a concurrent second insert wait and
# then do nothing, and the select that follows sees the winner's row.
_ENSURE_LINK = """
with made as (
    insert into public.receipt_links (sale_id) values ($2)  -- the tenant: auth.uid()
    on conflict (business_owner_id, sale_id) where revoked_at is null do nothing
    returning token
)
select token from made
union all
select token from public.receipt_links
where business_owner_id = $1 and sale_id = $2 and revoked_at is null
limit 1
"""

_REVOKE = """
update public.receipt_links set revoked_at = now()
where business_owner_id = $1 and sale_id = $2 and revoked_at is null
"""

_BY_TOKEN = """
select business_owner_id, sale_id from public.receipt_links
where token = $1 and revoked_at is null
"""


async def load_receipt(conn: asyncpg.Connection, owner: UUID, sale_id: UUID) -> ReceiptData | None:
    sale = await conn.fetchrow(_SALE, owner, sale_id)
    if sale is None:
        return None
    items = await conn.fetch(_ITEMS, owner, sale_id)
    return ReceiptData(
        business_name=sale["business_name"] or "",
        sale_number=sale["sale_number"],
        local_time=sale["local_time"],
        channel=sale["channel"],
        status=sale["status"],
        total=sale["total_amount"],
        discount=sale["discount_amount"],
        tax=sale["tax_amount"],
        rounding=sale["rounding_amount"],
        final=sale["final_amount"],
        payment_method=sale["payment_method"],
        payment_status=sale["payment_status"],
        prices_include_tax=sale["prices_include_tax"],
        sst_enabled=sale["sst_enabled"],
        registration_number=sale["registration_number"],
        tax_number=sale["tax_number"],
        phone=sale["phone"],
        address=sale["address"],
        footer=sale["footer"],
        items=[
            ReceiptItem(
                name=i["product_name"],
                quantity=i["quantity"],
                unit_price=i["unit_price"],
                discount=i["discount_amount"],
                subtotal=i["subtotal"],
            )
            for i in items
        ],
    )


async def ensure_link(conn: asyncpg.Connection, owner: UUID, sale_id: UUID) -> str:
    """The sale's live e-receipt token, made now if it has none."""
    token = await conn.fetchval(_ENSURE_LINK, owner, sale_id)
    if token is None:
        # A concurrent request made the link after this statement's snapshot: read it now.
        token = await conn.fetchval(_ENSURE_LINK, owner, sale_id)
    return str(token)


async def live_token(conn: asyncpg.Connection, owner: UUID, sale_id: UUID) -> str | None:
    """The sale's live e-receipt token, if it has one (read-only)."""
    token = await conn.fetchval(
        "select token from public.receipt_links"
        " where business_owner_id = $1 and sale_id = $2 and revoked_at is null",
        owner,
        sale_id,
    )
    return None if token is None else str(token)


async def revoke_link(conn: asyncpg.Connection, owner: UUID, sale_id: UUID) -> bool:
    status = await conn.execute(_REVOKE, owner, sale_id)
    return status != "UPDATE 0"


async def sale_for_token(conn: asyncpg.Connection, token: str) -> tuple[UUID, UUID] | None:
    row = await conn.fetchrow(_BY_TOKEN, token)
    return None if row is None else (row["business_owner_id"], row["sale_id"])
