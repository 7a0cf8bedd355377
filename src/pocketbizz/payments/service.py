"""Subscriptions: a checkout (`subscribe`), and its settlement — by the verified callback or by
the re-query job, the same way, once.

A payment is settled only on evidence ToyyibPay vouches for (a callback whose hash is right, or
its own getBillTransactions answer); the browser's return URL shows, never settles. The amount
must be the bill's, in either unit ToyyibPay may report (sen, or ringgit), else the payment is
flagged for a person, and the plan is not extended.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import asyncpg
import structlog

from pocketbizz.db import Database
from pocketbizz.errors import ApiError, BadRequest
from pocketbizz.functions.context import FunctionContext
from pocketbizz.payments import repository, toyyibpay
from pocketbizz.payments.runtime import payments_transaction
from pocketbizz.payments.toyyibpay import Evidence
from pocketbizz.settings import Settings

log = structlog.get_logger("pocketbizz.payments")

PAID, PENDING, FAILED = "1", "2", "3"  # ToyyibPay's status codes
CENT = Decimal("0.01")


class NotConfigured(ApiError):
    status = 503
    code = "payments_not_configured"


class ProviderError(ApiError):
    status = 502
    code = "payment_provider_error"


def configured(settings: Settings) -> bool:
    return bool(settings.toyyibpay_secret_key and settings.toyyibpay_category_code)


# --- checkout -------------------------------------------------------------------------------


async def subscribe(ctx: FunctionContext) -> dict[str, Any]:
    """POST /functions/v1/subscribe {"plan", "months"} → a pending payment and its bill."""
    settings = ctx.settings
    body = ctx.body if isinstance(ctx.body, dict) else {}
    plan_code, months = body.get("plan"), body.get("months", 1)
    if not isinstance(plan_code, str):
        raise BadRequest('"plan" must be a plan code such as "pro"', code="invalid_plan")
    if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 12:
        raise BadRequest('"months" must be a whole number from 1 to 12', code="invalid_months")
    # Through the caller's transaction: only active plans are visible (RLS on plans).
    plan = await ctx.conn.fetchrow(
        "select code, price_monthly from public.plans where code = $1", plan_code
    )
    if plan is None or plan["price_monthly"] <= 0:
        raise BadRequest(f"No paid plan {plan_code!r} to subscribe to", code="invalid_plan")
    owner = await ctx.conn.fetchrow("select full_name, email, phone from public.users")
    if owner is None:
        raise BadRequest("The signed-in user has no business profile", code="no_owner")
    if not configured(settings):
        raise NotConfigured("Subscriptions are not configured on this server")
    amount = (plan["price_monthly"] * months).quantize(CENT)
    payment_id = uuid.uuid4()
    fields = {
        "userSecretKey": settings.toyyibpay_secret_key or "",
        "categoryCode": settings.toyyibpay_category_code or "",
        "billName": bill_text(f"PocketBizz {plan_code}", 30),
        "billDescription": bill_text(f"PocketBizz {plan_code} plan {months} month", 100),
        "billPriceSetting": "1",  # fixed amount
        "billPayorInfo": "1",
        "billAmount": str(int(amount * 100)),  # in sen
        "billReturnUrl": f"{settings.url}/webhooks/toyyibpay/return",
        "billCallbackUrl": f"{settings.url}/webhooks/toyyibpay",
        "billExternalReferenceNo": str(payment_id),
        "billTo": owner["full_name"] or owner["email"],
        "billEmail": owner["email"],
        "billPhone": owner["phone"] or "",
    }
    # The bill first, the row second: a refused or unreachable ToyyibPay leaves no row.
    try:
        bill_code = await toyyibpay.create_bill(settings.toyyibpay_url, fields)
    except toyyibpay.ToyyibPayError as exc:
        raise ProviderError(str(exc)) from None
    # In the caller's transaction, as the caller: the row is theirs by auth.uid().
    await repository.open_pending(
        ctx.conn,
        payment_id=payment_id,
        plan=plan_code,
        months=months,
        amount=amount,
        bill_code=bill_code,
    )
    return {
        "payment_id": str(payment_id),
        "bill_code": bill_code,
        "payment_url": toyyibpay.payment_url(settings.toyyibpay_url, bill_code),
        "amount": str(amount),
    }


def bill_text(text: str, limit: int) -> str:
    # ToyyibPay accepts only letters, digits, spaces and underscores here.
    return re.sub(r"[^A-Za-z0-9 _]", "_", text)[:limit]


# --- settlement -----------------------------------------------------------------------------


async def settle(
    conn: asyncpg.Connection, payment_id: uuid.UUID, bill_code: str, evidence: Evidence
) -> str | None:
    """Apply verified evidence to the payment, once (pb_internal.settle_subscription_payment
    decides, under the payment's row lock); its status afterwards (None: no such bill)."""
    status = await repository.settle(conn, payment_id, bill_code, evidence)
    if status == "flagged" and evidence.status == PAID:
        log.warning("payment amount differs from its bill", payment_id=str(payment_id))
    return status


Settle = Callable[[asyncpg.Connection, uuid.UUID, str, Evidence], Awaitable[str | None]]
Pending = Callable[[asyncpg.Connection, float], Awaitable[list[asyncpg.Record]]]


async def requery_pending(db: Database, settings: Settings) -> int:
    """Settle pending subscription payments older than PB_TOYYIBPAY_REQUERY_AFTER_S from
    ToyyibPay's own record of their bills (callbacks get lost). The number settled."""
    if not configured(settings):
        return 0
    return await requery(db, settings, repository.pending_older_than, settle)


async def requery(db: Database, settings: Settings, pending: Pending, apply: Settle) -> int:
    """Ask ToyyibPay about each bill `pending` lists and `apply` what it vouches for; the number
    settled. getBillTransactions needs no secret key. No transaction is open while it is asked."""
    async with payments_transaction(db) as conn:
        rows = await pending(conn, settings.toyyibpay_requery_after_s)
    settled = 0
    for row in rows:
        try:
            transactions = await toyyibpay.bill_transactions(
                settings.toyyibpay_url, row["bill_code"]
            )
        except toyyibpay.ToyyibPayError as exc:
            log.warning("re-query failed", bill_code=row["bill_code"], error=str(exc))
            continue
        evidence = _evidence(transactions, str(row["id"]))
        if evidence is not None:
            async with payments_transaction(db) as conn:
                status = await apply(conn, row["id"], row["bill_code"], evidence)
            settled += status in ("paid", "failed", "flagged")
    return settled


def _evidence(transactions: list[dict[str, Any]], payment_id: str) -> Evidence | None:
    ours = [
        t for t in transactions if str(t.get("billExternalReferenceNo", payment_id)) == payment_id
    ]
    for t in ours:
        if str(t.get("billpaymentStatus")) == PAID:
            return Evidence(
                PAID, str(t.get("billpaymentAmount", "")), _opt(t, "billpaymentInvoiceNo"), None
            )
    if ours and all(str(t.get("billpaymentStatus")) == FAILED for t in ours):
        t = ours[-1]
        return Evidence(
            FAILED, str(t.get("billpaymentAmount", "")), _opt(t, "billpaymentInvoiceNo"), None
        )
    return None


def _opt(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    return None if value is None else str(value)
