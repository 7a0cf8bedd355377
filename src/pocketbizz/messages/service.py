"""WhatsApp receipts: the `wa.me` link, sending a queued receipt through the Cloud API, and
applying the statuses its webhook reports.

Sending is a job (it talks to Meta outside any transaction): one transaction counts the attempt
and reads the receipt, the HTTP calls follow, a second transaction records the outcome. A
retryable failure (5xx, unreachable, rate limits 130429/131056) keeps the message queued and
raises, so the job queue tries again later; a permanent one (e.g. 131026, undeliverable) marks
it failed with Meta's code and details.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from typing import Any
from urllib.parse import quote
from uuid import UUID

import asyncpg
import structlog

from pocketbizz.db import Database
from pocketbizz.db.database import SERVICE
from pocketbizz.functions.receipt_text import ReceiptData, render, wrap
from pocketbizz.messages import repository
from pocketbizz.messages.whatsapp import GraphError, WhatsAppClient
from pocketbizz.receipts import documents
from pocketbizz.receipts import repository as receipts
from pocketbizz.settings import Settings

log = structlog.get_logger("pocketbizz.messages")

STATUSES = ("sent", "delivered", "read", "failed")
# Opens one transaction as service_role (the sender acts for whichever tenant a message is of).
ServiceTransaction = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]
_PDF_PAPER_MM = 80


def client(settings: Settings) -> WhatsAppClient | None:
    """The Cloud API client, or None when WhatsApp is not configured."""
    if not (settings.whatsapp_token and settings.whatsapp_phone_number_id):
        return None
    return WhatsAppClient(
        settings.whatsapp_api_url,
        settings.whatsapp_token,
        settings.whatsapp_phone_number_id,
        settings.whatsapp_timeout_s,
    )


def total_text(amount: Decimal) -> str:
    return f"RM {amount:.2f}"


def wa_me_url(phone: str, receipt: ReceiptData, receipt_url: str) -> str:
    """The no-cost fallback: a chat with the customer opened on the cashier's phone, the
    receipt summary and its e-receipt link already typed."""
    name = receipt.business_name or "Resit"
    text = f"{name}\nResit {receipt.sale_number}: {total_text(receipt.final)}\n{receipt_url}"
    return f"https://wa.me/{phone}?text={quote(text, safe='')}"


def document_name(receipt: ReceiptData) -> str:
    return "Resit-" + re.sub(r"[^A-Za-z0-9._-]", "-", receipt.sale_number) + ".pdf"


def pool_transactions(db: Database) -> ServiceTransaction:
    """Service transactions on the request pool (the webhook and the sending job)."""
    return lambda: db.transaction(SERVICE)


async def deliver_receipt(
    transaction: ServiceTransaction, settings: Settings, message_id: UUID
) -> str | None:
    """Send one queued receipt message; the message's status afterwards (None: nothing to do,
    it was already sent or failed). Raises GraphError when the job should try again."""
    api = client(settings)
    if api is None:
        raise RuntimeError(
            "WhatsApp is not configured (PB_WHATSAPP_TOKEN, PB_WHATSAPP_PHONE_NUMBER_ID)"
        )
    async with transaction() as conn:
        attempt = await repository.start_attempt(conn, message_id)
        if attempt is None:
            return None
        owner, sale_id = attempt.business_owner_id, attempt.sale_id
        receipt = await receipts.load_receipt(conn, owner, sale_id)
        token = await receipts.live_token(conn, owner, sale_id)
    if receipt is None:  # the sale went with its account; the cascade took the message too
        return None
    columns = documents.COLUMNS[_PDF_PAPER_MM]
    url = None if token is None else f"{settings.url}/r/{token}"
    pdf = await asyncio.to_thread(
        documents.pdf,
        render(receipt, columns),
        len(wrap(receipt.business_name or "RECEIPT", columns)),
        url,
        _PDF_PAPER_MM,
        f"Resit {receipt.sale_number}",
    )
    filename = document_name(receipt)
    try:
        media_id = await api.upload_document(pdf, filename, "application/pdf")
        wamid = await api.send_template(
            attempt.to_phone,
            settings.whatsapp_receipt_template,
            settings.whatsapp_template_language,
            document_id=media_id,
            filename=filename,
            body_parameters=[receipt.business_name or "PocketBizz", total_text(receipt.final)],
        )
    except GraphError as exc:
        async with transaction() as conn:
            await repository.record_error(
                conn, message_id, exc.code, exc.details, final=not exc.retryable
            )
        log.warning(
            "whatsapp send failed",
            message_id=str(message_id),
            code=exc.code,
            status=exc.status,
            attempts=attempt.attempts,
            retry=exc.retryable,
        )
        if exc.retryable:
            raise
        return "failed"
    async with transaction() as conn:
        await repository.record_sent(conn, message_id, wamid)
    return "sent"


async def give_up(transaction: ServiceTransaction, message_id: UUID) -> None:
    """The job's last attempt failed too: the message is failed, its last error kept."""
    async with transaction() as conn:
        await repository.fail_queued(conn, message_id)


def statuses(payload: Any) -> list[tuple[str, str, int | None, str | None]]:
    """(wamid, status, error code, error details) of every status in a webhook payload."""
    found = []
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            items = value.get("statuses") if isinstance(value, dict) else None
            for item in items if isinstance(items, list) else []:
                if not isinstance(item, dict):
                    continue
                wamid, status = item.get("id"), item.get("status")
                if not isinstance(wamid, str) or status not in STATUSES:
                    continue
                code, detail = None, None
                errors = item.get("errors")
                if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                    first = errors[0]
                    code = first.get("code") if isinstance(first.get("code"), int) else None
                    data = first.get("error_data")
                    detail = data.get("details") if isinstance(data, dict) else None
                    detail = str(detail or first.get("message") or first.get("title") or "")
                found.append((wamid[:200], str(status), code, detail))
    return found


async def apply_webhook(db: Database, payload: Any) -> int:
    """Record and apply the statuses of one verified webhook call; how many were new."""
    fresh = 0
    async with db.transaction(SERVICE) as conn:
        for wamid, status, code, detail in statuses(payload):
            if await repository.record_status_event(conn, wamid, status, code, detail):
                fresh += 1
                await repository.apply_status(conn, wamid, status, code, detail)
    return fresh
