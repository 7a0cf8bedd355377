"""`receipt`: one of the caller's sales as plain-text receipt lines (32 or 48 columns).

Body `{"sale_id": "<uuid>", "width": 32|48}` → `{"lines": [...], "text": "...", "width": n}`.
Another tenant's sale is simply not found (RLS hides it), never forbidden.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pocketbizz.errors import BadRequest, NotFound
from pocketbizz.functions.context import FunctionContext
from pocketbizz.functions.receipt_text import WIDTHS, ReceiptData, ReceiptItem, render

_SALE = """
select s.sale_number, s.status, s.channel, s.total_amount, s.discount_amount, s.tax_amount,
       s.rounding_amount, s.final_amount, s.payment_method, s.payment_status,
       to_char(s.created_at at time zone coalesce(b.timezone, 'Asia/Kuala_Lumpur'),
               'DD/MM/YYYY HH24:MI') as local_time,
       b.business_name, b.registration_number, b.tax_number, b.phone, b.address,
       coalesce(b.prices_include_tax, false) as prices_include_tax
from public.sales s
left join public.business_profiles b on b.business_owner_id = s.business_owner_id
where s.business_owner_id = (select auth.uid()) and s.id = $1
"""

_ITEMS = """
select product_name, quantity, unit_price, discount_amount, subtotal
from public.sale_items
where business_owner_id = (select auth.uid()) and sale_id = $1
order by line_no, created_at, id
"""


def _arguments(body: Any) -> tuple[UUID, int]:
    if not isinstance(body, dict):
        raise BadRequest("Body must be a JSON object with sale_id", code="invalid_argument")
    try:
        sale_id = UUID(str(body.get("sale_id")))
    except ValueError as exc:
        raise BadRequest("sale_id must be a uuid", code="invalid_argument") from exc
    width = body.get("width", 32)
    if isinstance(width, bool) or width not in WIDTHS:
        raise BadRequest("width must be 32 or 48", code="invalid_argument")
    return sale_id, int(width)


async def run(ctx: FunctionContext) -> dict[str, Any]:
    sale_id, width = _arguments(ctx.body)
    sale = await ctx.conn.fetchrow(_SALE, sale_id)
    if sale is None:
        raise NotFound("Sale not found", code="not_found")
    items = await ctx.conn.fetch(_ITEMS, sale_id)
    receipt = ReceiptData(
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
        registration_number=sale["registration_number"],
        tax_number=sale["tax_number"],
        phone=sale["phone"],
        address=sale["address"],
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
    lines = render(receipt, width)
    return {
        "sale_id": str(sale_id),
        "width": width,
        "lines": lines,
        "text": "\n".join(lines) + "\n",
    }
