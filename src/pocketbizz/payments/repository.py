"""SQL of subscription payments. Every statement here runs on the server's owner connection:
clients may only read their own rows (RLS), and the callback belongs to no tenant."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg


async def insert_pending(
    conn: asyncpg.Connection,
    *,
    owner_id: str,
    payment_id: uuid.UUID,
    plan: str,
    months: int,
    amount: Decimal,
    bill_code: str,
) -> None:
    await conn.execute(
        """insert into public.subscription_payments
               (business_owner_id, id, plan, months, amount, bill_code)
           values ($1, $2, $3, $4, $5, $6)""",
        owner_id,
        payment_id,
        plan,
        months,
        amount,
        bill_code,
    )


async def lock_payment(conn: asyncpg.Connection, payment_id: uuid.UUID) -> asyncpg.Record | None:
    """The payment, locked until the transaction ends: two callbacks settle it one at a time."""
    return await conn.fetchrow(
        "select * from public.subscription_payments where id = $1 for update", payment_id
    )


async def find_payment(conn: asyncpg.Connection, payment_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "select * from public.subscription_payments where id = $1", payment_id
    )


async def finish(
    conn: asyncpg.Connection,
    payment: asyncpg.Record,
    status: str,
    *,
    provider_ref: str | None,
    provider_amount: str | None,
    provider_reason: str | None,
) -> None:
    await conn.execute(
        """update public.subscription_payments
           set status = $3, settled_at = now(), provider_ref = $4, provider_amount = $5,
               provider_reason = $6
           where business_owner_id = $1 and id = $2""",
        payment["business_owner_id"],
        payment["id"],
        status,
        provider_ref,
        provider_amount,
        provider_reason,
    )


async def extend_plan(conn: asyncpg.Connection, payment: asyncpg.Record) -> None:
    """The paid plan from max(now, current expiry) for the payment's months."""
    await conn.execute(
        """update public.users
           set subscription_plan = $2,
               subscription_expires_at = greatest(now(), coalesce(subscription_expires_at, now()))
                                         + make_interval(months => $3)
           where business_owner_id = $1""",
        payment["business_owner_id"],
        payment["plan"],
        payment["months"],
    )


async def pending_older_than(conn: asyncpg.Connection, seconds: float) -> list[asyncpg.Record]:
    return await conn.fetch(
        """select id, bill_code from public.subscription_payments
           where status = 'pending' and created_at < now() - make_interval(secs => $1)
           order by created_at limit 100""",
        seconds,
    )
