"""Payment links (issue 10.3): a business collects an unpaid sale online through its OWN
ToyyibPay account.

- `payment-settings` (GET/PUT/DELETE /functions/v1/payment-settings): the owner's secret key and
  category code. The key is sealed (payments.sealing) before it reaches the database and no
  answer ever carries it.
- `payment-link` (POST /functions/v1/payment-link {"sale_id"}): a bill for the sale's final
  amount, made with the tenant's key; a second request for the same sale gets the open link.
- Settlement: ToyyibPay's callback to /webhooks/toyyibpay/link, verified with THAT tenant's key
  (payments.routes), or the re-query job; either way pb_internal.settle_payment_link marks the
  sale paid once, or flags the link when the amount or the sale is not what the bill was for.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import structlog

from pocketbizz.db import Database
from pocketbizz.errors import ApiError, BadRequest, Conflict, NotFound, Unauthorized
from pocketbizz.functions.context import FunctionContext
from pocketbizz.payments import repository, sealing, service, toyyibpay
from pocketbizz.payments.service import CENT, PAID, ProviderError, bill_text
from pocketbizz.payments.toyyibpay import Evidence
from pocketbizz.settings import Settings

log = structlog.get_logger("pocketbizz.payments")

# ToyyibPay's user secret keys are UUID-like; category codes are short alphanumeric codes.
_SECRET_KEY = re.compile(r"[A-Za-z0-9-]{8,128}")
_CATEGORY_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")

CALLBACK_PATH = "/webhooks/toyyibpay/link"
RETURN_PATH = "/webhooks/toyyibpay/link/return"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


def _owner(ctx: FunctionContext) -> uuid.UUID:
    owner = ctx.identity.user_id
    if owner is None:
        raise Unauthorized("This function needs a signed-in user", code="no_user")
    return owner


# --- payment-settings -----------------------------------------------------------------------


async def payment_settings(ctx: FunctionContext) -> dict[str, Any]:
    """GET → {"configured", "category_code"}; PUT {"secret_key", "category_code"} stores them
    (the key sealed); DELETE forgets them. Never the key, in any answer."""
    owner = _owner(ctx)
    if ctx.method not in ("GET", "PUT", "DELETE"):
        raise MethodNotAllowed("payment-settings answers GET, PUT and DELETE")
    if ctx.method == "PUT":
        secret_key, category_code = _settings_body(ctx.body)
        sealed = sealing.seal(ctx.settings.secrets_key_material, owner, secret_key)
        await repository.put_settings(ctx.conn, category_code, sealed)
    elif ctx.method == "DELETE":
        await repository.delete_settings(ctx.conn)
    category = await repository.settings_category(ctx.conn)
    return {"configured": category is not None, "category_code": category}


def _settings_body(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise BadRequest(
            'Body must be a JSON object with "secret_key" and "category_code"',
            code="invalid_argument",
        )
    secret_key, category_code = body.get("secret_key"), body.get("category_code")
    if not isinstance(secret_key, str) or not _SECRET_KEY.fullmatch(secret_key.strip()):
        raise BadRequest(
            '"secret_key" must be your ToyyibPay user secret key (8 to 128 letters, digits '
            "or dashes)",
            code="invalid_secret_key",
        )
    if not isinstance(category_code, str) or not _CATEGORY_CODE.fullmatch(category_code.strip()):
        raise BadRequest(
            '"category_code" must be a ToyyibPay category code (1 to 64 letters, digits, '
            "dashes or underscores)",
            code="invalid_category_code",
        )
    return secret_key.strip(), category_code.strip()


# --- payment-link ---------------------------------------------------------------------------


async def payment_link(ctx: FunctionContext) -> dict[str, Any]:
    """POST {"sale_id"} → {"sale_id", "bill_code", "payment_url", "amount"} for an unpaid sale of
    the caller: its open link, or a new bill made with the caller's own ToyyibPay account."""
    owner = _owner(ctx)
    if ctx.method != "POST":
        raise MethodNotAllowed("payment-link answers POST")
    sale_id = _sale_id(ctx.body)
    settings = ctx.settings
    account = await repository.link_account(ctx.conn)
    if account is None:
        raise Conflict(
            "Set your ToyyibPay secret key and category code first (payment-settings)",
            code="payment_settings_missing",
        )
    # Held to the end of this transaction: concurrent requests for one sale make one bill.
    await repository.lock_sale_for_link(ctx.conn, sale_id)
    sale = await repository.sale_for_link(ctx.conn, sale_id)
    if sale is None:  # another tenant's sale too (RLS): not found, never forbidden
        raise NotFound("Sale not found", code="not_found")
    if sale["status"] == "void":
        raise Conflict("The sale is void", code="sale_void")
    if sale["payment_status"] == "paid":
        raise Conflict("The sale is already paid", code="already_paid")
    if sale["payment_status"] != "pending":
        raise Conflict(
            f"Only a pending sale can be paid by link (this one is {sale['payment_status']})",
            code="not_pending",
        )
    existing = await repository.open_link_of_sale(ctx.conn, sale_id)
    if existing is not None:
        return _answer(settings, sale_id, existing["bill_code"], existing["amount"])
    amount: Decimal = sale["final_amount"].quantize(CENT)
    if amount <= 0:
        raise BadRequest("A sale of RM 0.00 needs no payment link", code="nothing_to_pay")
    try:
        secret_key = sealing.unseal(
            settings.secrets_key_material, owner, bytes(account["secret_key_sealed"])
        )
    except sealing.SealError:
        # The server's PB_SECRETS_KEY changed since the key was stored.
        raise Conflict(
            "The stored ToyyibPay key can no longer be read: set payment-settings again",
            code="payment_settings_unreadable",
        ) from None
    link_id = uuid.uuid4()
    fields = _bill_fields(settings, sale, amount, link_id, secret_key, account["category_code"])
    try:
        bill_code = await toyyibpay.create_bill(settings.toyyibpay_url, fields)
    except toyyibpay.ToyyibPayError as exc:
        raise ProviderError(str(exc)) from None
    await repository.open_link(
        ctx.conn, link_id=link_id, sale_id=sale_id, amount=amount, bill_code=bill_code
    )
    return _answer(settings, sale_id, bill_code, amount)


def _sale_id(body: Any) -> uuid.UUID:
    raw = body.get("sale_id") if isinstance(body, dict) else None
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise BadRequest('"sale_id" must be a sale id (uuid)', code="invalid_argument") from None


def _bill_fields(
    settings: Settings,
    sale: asyncpg.Record,
    amount: Decimal,
    link_id: uuid.UUID,
    secret_key: str,
    category_code: str,
) -> dict[str, str]:
    business = sale["business_name"] or "PocketBizz"
    return {
        "userSecretKey": secret_key,
        "categoryCode": category_code,
        "billName": bill_text(f"{business} {sale['sale_number']}", 30),
        "billDescription": bill_text(f"{business} sale {sale['sale_number']}", 100),
        "billPriceSetting": "1",  # fixed amount
        # An open bill: the business's customer types their details at ToyyibPay when the
        # sale carries none.
        "billPayorInfo": "1" if sale["customer_email"] else "0",
        "billAmount": str(int(amount * 100)),  # in sen
        "billReturnUrl": f"{settings.url}{RETURN_PATH}",
        "billCallbackUrl": f"{settings.url}{CALLBACK_PATH}",
        "billExternalReferenceNo": str(link_id),
        "billTo": sale["customer_name"] or "",
        "billEmail": sale["customer_email"] or "",
        "billPhone": sale["customer_phone"] or "",
    }


def _answer(
    settings: Settings, sale_id: uuid.UUID, bill_code: str, amount: Decimal
) -> dict[str, Any]:
    return {
        "sale_id": str(sale_id),
        "bill_code": bill_code,
        "payment_url": toyyibpay.payment_url(settings.toyyibpay_url, bill_code),
        "amount": str(amount),
    }


# --- settlement -----------------------------------------------------------------------------


async def settle(
    conn: asyncpg.Connection, link_id: uuid.UUID, bill_code: str, evidence: Evidence
) -> str | None:
    """Apply verified evidence to the link, once; its status afterwards (None: no such link)."""
    status = await repository.settle_link(conn, link_id, bill_code, evidence)
    if status == "flagged" and evidence.status == PAID:
        log.warning("payment link flagged for review", link_id=str(link_id))
    return status


def callback_key(settings: Settings, row: asyncpg.Record) -> str | None:
    """The secret key a link's callback must be hashed with: its tenant's (None: unreadable)."""
    try:
        return sealing.unseal(
            settings.secrets_key_material, row["business_owner_id"], bytes(row["secret_key_sealed"])
        )
    except sealing.SealError:
        return None


async def requery_pending(db: Database, settings: Settings) -> int:
    """Settle open links older than PB_TOYYIBPAY_REQUERY_AFTER_S from ToyyibPay's record of
    their bills (no tenant key needed); the number settled."""
    return await service.requery(db, settings, repository.links_pending_older_than, settle)
