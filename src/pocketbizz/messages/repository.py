"""All SQL of outbound messages. The sender and the webhook run as service_role (they act for
whichever tenant a message belongs to); queueing runs as the caller."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class Attempt:
    business_owner_id: UUID
    sale_id: UUID
    to_phone: str
    attempts: int


async def queue(conn: asyncpg.Connection, sale_id: UUID, to_phone: str) -> UUID:
    """A queued message for one of the caller's sales (pb_internal.queue_receipt_message)."""
    message_id = await conn.fetchval(
        "select pb_internal.queue_receipt_message($1, $2)", sale_id, to_phone
    )
    return UUID(str(message_id))


async def start_attempt(conn: asyncpg.Connection, message_id: UUID) -> Attempt | None:
    """Count one more attempt of a message still queued; None once it is sent or failed (a job
    run twice sends once)."""
    row = await conn.fetchrow(
        """
        update public.outbound_messages set attempts = attempts + 1, updated_at = now()
        where id = $1 and status = 'queued' and provider_message_id is null
        returning business_owner_id, sale_id, to_phone, attempts
        """,
        message_id,
    )
    return None if row is None else Attempt(**dict(row))


async def record_error(
    conn: asyncpg.Connection, message_id: UUID, code: int | None, detail: str, *, final: bool
) -> None:
    await conn.execute(
        """
        update public.outbound_messages
        set error_code = $2, error_detail = $3, updated_at = now(),
            status = case when $4 then 'failed' else status end
        where id = $1 and status = 'queued'
        """,
        message_id,
        code,
        detail[:2000],
        final,
    )


async def fail_queued(conn: asyncpg.Connection, message_id: UUID) -> None:
    await conn.execute(
        "update public.outbound_messages set status = 'failed', updated_at = now()"
        " where id = $1 and status = 'queued'",
        message_id,
    )


async def record_sent(conn: asyncpg.Connection, message_id: UUID, wamid: str) -> None:
    """Accepted by the Cloud API: `sent`, unless a webhook status for this wamid that arrived
    first says more (it waited in the inbox for the id to be known)."""
    await conn.execute(
        """
        update public.outbound_messages
        set status = 'sent', provider_message_id = $2, error_code = null, error_detail = null,
            updated_at = now()
        where id = $1 and status = 'queued'
        """,
        message_id,
        wamid,
    )
    for event in await conn.fetch(
        "select status, error_code, error_detail from pb_internal.whatsapp_status_events"
        " where provider_message_id = $1",
        wamid,
    ):
        await apply_status(conn, wamid, event["status"], event["error_code"], event["error_detail"])


async def record_status_event(
    conn: asyncpg.Connection, wamid: str, status: str, code: int | None, detail: str | None
) -> bool:
    """The webhook's inbox: False when this (wamid, status) was already received."""
    inserted = await conn.fetchval(
        """
        insert into pb_internal.whatsapp_status_events
            (provider_message_id, status, error_code, error_detail)
        values ($1, $2, $3, $4)
        on conflict do nothing
        returning true
        """,
        wamid,
        status,
        code,
        detail,
    )
    return bool(inserted)


async def apply_status(
    conn: asyncpg.Connection, wamid: str, status: str, code: int | None, detail: str | None
) -> None:
    """Move the message forward to `status`; a status behind the current one changes nothing."""
    await conn.execute(
        """
        update public.outbound_messages
        set status = $2, updated_at = now(),
            error_code = case when $2 = 'failed' then $3 else error_code end,
            error_detail = case when $2 = 'failed' then $4 else error_detail end
        where provider_message_id = $1
          and pb_internal.message_status_rank($2) > pb_internal.message_status_rank(status)
        """,
        wamid,
        status,
        code,
        detail,
    )
