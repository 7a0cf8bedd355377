"""The plan-expiry reminder (issue 10.2): a paid plan's owner is told PB_PLAN_REMINDER_DAYS
(3) days before it ends, once per expiry.

By the approved WhatsApp template PB_WHATSAPP_REMINDER_TEMPLATE when the server has WhatsApp
and the owner a Malaysian phone number, otherwise (or when WhatsApp refuses) by e-mail through
the auth mailer when SMTP is set. A reminder is recorded in pb_internal.plan_reminders only
after it went out, so one that could not be sent is tried again at the next run; renewing moves
the expiry, and the new expiry gets its own reminder. With neither channel configured the job
does nothing.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
import structlog

from pocketbizz.auth.mail_templates import Letter
from pocketbizz.auth.mailer import Mailer, MailFailed
from pocketbizz.db import Database
from pocketbizz.db.database import SERVICE
from pocketbizz.messages import phone as phones
from pocketbizz.messages import service as messages
from pocketbizz.messages.whatsapp import GraphError, WhatsAppClient
from pocketbizz.payments import repository
from pocketbizz.settings import Settings

log = structlog.get_logger("pocketbizz.payments")

_DEFAULT_ZONE = "Asia/Kuala_Lumpur"


async def remind_expiring_plans(db: Database, settings: Settings) -> int:
    """Send the reminders due now; how many went out. No transaction is open while sending."""
    whatsapp = messages.client(settings)
    mailer = Mailer.from_settings(settings)
    if whatsapp is None and not mailer.configured:
        return 0
    # Across tenants: service_role, as the WhatsApp sender.
    async with db.transaction(SERVICE) as conn:
        due = await repository.due_reminders(conn, settings.plan_reminder_days)
    sent = 0
    for owner in due:
        channel = await _send(owner, settings, whatsapp, mailer)
        if channel is None:
            continue
        async with db.transaction(SERVICE) as conn:
            await repository.record_reminder(
                conn, owner["business_owner_id"], owner["expires_at"], channel
            )
        sent += 1
    return sent


def expiry_date(expires_at: datetime, timezone: str | None) -> str:
    """The day the plan ends, in the business's time zone: "3 Dec 2026"."""
    try:
        zone = ZoneInfo(timezone or _DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(_DEFAULT_ZONE)
    local = expires_at.astimezone(zone)
    return f"{local.day} {local:%b %Y}"


async def _send(
    owner: asyncpg.Record, settings: Settings, whatsapp: WhatsAppClient | None, mailer: Mailer
) -> str | None:
    """The channel the reminder went out by, or None when none took it."""
    name = owner["business_name"] or owner["full_name"] or owner["email"]
    plan = owner["plan_name"]
    date = expiry_date(owner["expires_at"], owner["timezone"])
    number = phones.normalise(owner["phone"]) if owner["phone"] else None
    if whatsapp is not None and number is not None:
        try:
            await whatsapp.send_template(
                number,
                settings.whatsapp_reminder_template,
                settings.whatsapp_template_language,
                body_parameters=[name, plan, date],
            )
            return "whatsapp"
        except GraphError as exc:
            log.warning("plan reminder by whatsapp failed", code=exc.code, status=exc.status)
    if mailer.configured:
        letter = Letter(
            f"Your PocketBizz {plan} plan ends on {date}",
            f"Hello {name},\n\n"
            f"Your PocketBizz {plan} plan ends on {date}. Renew it in the app (Settings, "
            "Subscription) to keep its limits; after that day the free plan's limits apply.\n\n"
            f"{settings.url}/app/\n",
        )
        try:
            await mailer.send(owner["email"], letter)
            return "email"
        except MailFailed as exc:
            log.warning("plan reminder by e-mail failed", error=str(exc))
    return None
