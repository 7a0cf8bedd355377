"""SQL of subscription payments, payment links and plan reminders. Clients read their own
payments and links (RLS) and write none; every write is a pb_internal function owned by
pb_settlement (definitions/payments/), which scopes it to the tenant. The checkout, the payment
settings and a new link call theirs as the signed-in caller; settlement, the return pages and
the re-query call theirs as pb_payments (payments.runtime). The reminder job reads across
tenants as service_role."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import asyncpg

from pocketbizz.payments.toyyibpay import Evidence


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
    conn: asyncpg.Connection, payment_id: uuid.UUID, bill_code: str, evidence: Evidence
) -> str | None:
    """Apply verified evidence, once; the payment's status afterwards (None: no such bill)."""
    return await _settle(
        conn, "pb_internal.settle_subscription_payment", payment_id, bill_code, evidence
    )


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


# --- payment links (the tenant's own ToyyibPay account) ------------------------------------


async def put_settings(conn: asyncpg.Connection, category_code: str, sealed_key: bytes) -> None:
    """The caller's account, replacing any before (tenant from auth.uid())."""
    await conn.execute("select pb_internal.put_payment_settings($1, $2)", category_code, sealed_key)


async def delete_settings(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("select pb_internal.delete_payment_settings()"))


async def settings_category(conn: asyncpg.Connection) -> str | None:
    """The caller's category code (RLS: its own row), None when no account is set."""
    value = await conn.fetchval("select category_code from public.payment_settings")
    return None if value is None else str(value)


async def link_account(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """(category_code, secret_key_sealed) of the caller's account."""
    return await conn.fetchrow("select * from pb_internal.payment_link_account()")


async def lock_sale_for_link(conn: asyncpg.Connection, sale_id: uuid.UUID) -> None:
    """Serialise link requests for one sale until the transaction ends: a second request waits
    and then finds the first one's open link, instead of making a second bill. (An advisory
    lock: the caller may read sales but not lock their rows.)"""
    await conn.execute(
        "select pg_advisory_xact_lock(hashtextextended('payment_link:' || $1::uuid, 0))",
        sale_id,
    )


async def sale_for_link(conn: asyncpg.Connection, sale_id: uuid.UUID) -> asyncpg.Record | None:
    """The caller's sale (RLS) with what a bill shows: its number, state, amount, and customer."""
    return await conn.fetchrow(
        """select s.sale_number, s.status, s.payment_status, s.final_amount,
                  c.name as customer_name, c.email as customer_email,
                  c.phone as customer_phone, p.business_name
           from public.sales s
           left join public.customers c
             on c.business_owner_id = s.business_owner_id and c.id = s.customer_id
           left join public.business_profiles p on p.business_owner_id = s.business_owner_id
           where s.id = $1""",
        sale_id,
    )


async def open_link_of_sale(conn: asyncpg.Connection, sale_id: uuid.UUID) -> asyncpg.Record | None:
    """(id, bill_code, amount) of the sale's open link."""
    return await conn.fetchrow(
        "select id, bill_code, amount from public.payment_links"
        " where sale_id = $1 and status = 'open'",
        sale_id,
    )


async def open_link(
    conn: asyncpg.Connection,
    *,
    link_id: uuid.UUID,
    sale_id: uuid.UUID,
    amount: Decimal,
    bill_code: str,
) -> None:
    await conn.execute(
        "select pb_internal.open_payment_link($1, $2, $3, $4)", link_id, sale_id, amount, bill_code
    )


async def link_secret(
    conn: asyncpg.Connection, link_id: uuid.UUID, bill_code: str
) -> asyncpg.Record | None:
    """(business_owner_id, secret_key_sealed) for the link with this id and bill code."""
    return await conn.fetchrow(
        "select * from pb_internal.payment_link_secret($1, $2)", link_id, bill_code
    )


async def settle_link(
    conn: asyncpg.Connection, link_id: uuid.UUID, bill_code: str, evidence: Evidence
) -> str | None:
    """Apply verified evidence to a link, once; its status afterwards (None: no such link)."""
    return await _settle(conn, "pb_internal.settle_payment_link", link_id, bill_code, evidence)


async def _settle(
    conn: asyncpg.Connection, function: str, row_id: uuid.UUID, bill_code: str, evidence: Evidence
) -> str | None:
    # Both settle functions take the same arguments and answer the status afterwards.
    result = await conn.fetchval(
        f"select {function}($1, $2, $3, $4, $5, $6)",
        row_id,
        bill_code,
        evidence.status,
        evidence.amount,
        evidence.ref,
        evidence.reason,
    )
    return None if result is None else str(result)


async def find_link(
    conn: asyncpg.Connection, link_id: uuid.UUID, bill_code: str
) -> asyncpg.Record | None:
    """(status, sale_number, amount, business_name) of the link with this id and bill code."""
    return await conn.fetchrow(
        "select * from pb_internal.payment_link_status($1, $2)", link_id, bill_code
    )


async def links_pending_older_than(
    conn: asyncpg.Connection, seconds: float
) -> list[asyncpg.Record]:
    """(id, bill_code) of open links older than `seconds`, oldest first, at most 100."""
    return await conn.fetch(
        "select id, bill_code from pb_internal.pending_payment_links($1)", float(seconds)
    )


# --- plan-expiry reminders (the reminder job, as service_role) ------------------------------


async def due_reminders(conn: asyncpg.Connection, within_days: int) -> list[asyncpg.Record]:
    """Owners whose paid plan ends within `within_days` and who have not been reminded of
    that expiry: (business_owner_id, expires_at, email, phone, full_name, plan_name,
    business_name, timezone), soonest first, at most 500 a run."""
    return await conn.fetch(
        """select u.business_owner_id, u.subscription_expires_at as expires_at, u.email,
                  u.phone, u.full_name, p.name as plan_name, b.business_name, b.timezone
           from public.users u
           join public.plans p on p.code = u.subscription_plan
           left join public.business_profiles b on b.business_owner_id = u.business_owner_id
           where u.subscription_expires_at > now()
             and u.subscription_expires_at <= now() + make_interval(days => $1)
             and p.price_monthly > 0
             and not exists (select from pb_internal.plan_reminders r
                             where r.business_owner_id = u.business_owner_id
                               and r.expires_at = u.subscription_expires_at)
           order by u.subscription_expires_at
           limit 500""",
        within_days,
    )


async def record_reminder(
    conn: asyncpg.Connection, owner: uuid.UUID, expires_at: datetime, channel: str
) -> bool:
    """The reminder of this expiry went out; False when another run recorded it first."""
    status = await conn.execute(
        """insert into pb_internal.plan_reminders (business_owner_id, expires_at, channel)
           values ($1, $2, $3) on conflict do nothing""",
        owner,
        expires_at,
        channel,
    )
    return status == "INSERT 0 1"
