"""SQL of subscription payments. Clients read their own rows (RLS) and write none; every write
is a pb_internal function owned by pb_settlement (definitions/payments/), which scopes it to the
payment's tenant. The checkout calls its function as the signed-in caller; settlement, the
return page and the re-query call theirs as pb_payments (payments.runtime)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg


async def open_pending(
    conn: asyncpg.Connection,
    *,
    payment_id: uuid.UUID,
    plan: str,
    months: int,
    amount: Decimal,
    bill_code: str,
) -> None:
    """The caller's pending payment (its tenant is the caller's auth.uid())."""
    await conn.execute(
        "select pb_internal.open_subscription_payment($1, $2, $3, $4, $5)",
        payment_id,
        plan,
        months,
        amount,
        bill_code,
    )


async def settle(
    conn: asyncpg.Connection,
    payment_id: uuid.UUID,
    bill_code: str,
    *,
    status: str,
    amount: str,
    ref: str | None,
    reason: str | None,
) -> str | None:
    """Apply verified evidence, once; the payment's status afterwards (None: no such bill)."""
    result = await conn.fetchval(
        "select pb_internal.settle_subscription_payment($1, $2, $3, $4, $5, $6)",
        payment_id,
        bill_code,
        status,
        amount,
        ref,
        reason,
    )
    return None if result is None else str(result)


async def find_payment(
    conn: asyncpg.Connection, payment_id: uuid.UUID, bill_code: str
) -> asyncpg.Record | None:
    """(status, plan, months, amount) of the payment with this id and bill code."""
    return await conn.fetchrow(
        "select * from pb_internal.subscription_payment_status($1, $2)", payment_id, bill_code
    )


async def pending_older_than(conn: asyncpg.Connection, seconds: float) -> list[asyncpg.Record]:
    """(id, bill_code) of pending payments older than `seconds`, oldest first, at most 100."""
    return await conn.fetch(
        "select id, bill_code from pb_internal.pending_subscription_payments($1)", float(seconds)
    )
