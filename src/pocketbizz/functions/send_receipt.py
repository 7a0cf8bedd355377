"""`send-receipt`: a sale's receipt to a customer's WhatsApp.

Body `{"sale_id", "phone"}`; the phone is normalised to Malaysian international form
(`012-345 6789` → `60123456789`, anything else 400). The answer always has `wa_me_url`, a chat
link with the receipt summary and e-receipt link (the no-cost way, opened on the cashier's
phone). When WhatsApp is configured a message is also queued, in this transaction, for the
sender to deliver as the approved template with the PDF: `202 {"message_id", "status":
"queued", "wa_me_url"}`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pocketbizz.errors import BadRequest, NotFound, Unauthorized
from pocketbizz.functions.context import FunctionContext, WithStatus
from pocketbizz.functions.receipt import receipt_url
from pocketbizz.messages import phone as phones
from pocketbizz.messages import repository as messages
from pocketbizz.messages import service
from pocketbizz.receipts import repository as receipts


def _arguments(body: Any) -> tuple[UUID, str]:
    if not isinstance(body, dict):
        raise BadRequest(
            "Body must be a JSON object with sale_id and phone", code="invalid_argument"
        )
    try:
        sale_id = UUID(str(body.get("sale_id")))
    except ValueError as exc:
        raise BadRequest("sale_id must be a uuid", code="invalid_argument") from exc
    given = body.get("phone")
    number = phones.normalise(given) if isinstance(given, str) else None
    if number is None:
        raise BadRequest("phone must be a Malaysian phone number", code="invalid_phone")
    return sale_id, number


async def run(ctx: FunctionContext) -> Any:
    sale_id, number = _arguments(ctx.body)
    owner = ctx.identity.user_id
    if owner is None:
        raise Unauthorized("This function needs a signed-in user", code="no_user")
    receipt = await receipts.load_receipt(ctx.conn, owner, sale_id)
    if receipt is None:
        raise NotFound("Sale not found", code="not_found")
    url = receipt_url(ctx, await receipts.ensure_link(ctx.conn, owner, sale_id))
    link = service.wa_me_url(number, receipt, url)
    if service.client(ctx.settings) is None:
        return {"status": "not_configured", "wa_me_url": link}
    message_id = await messages.queue(ctx.conn, sale_id, number)
    body = {"message_id": str(message_id), "status": "queued", "wa_me_url": link}
    return WithStatus(body, 202)
