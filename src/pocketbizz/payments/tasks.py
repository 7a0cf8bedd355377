"""The payments' jobs."""

from __future__ import annotations

from procrastinate import JobContext

from pocketbizz.db import Database
from pocketbizz.jobs.service import DEFAULT_QUEUE, DEFAULT_RETRY, app
from pocketbizz.payments import links, reminders, service
from pocketbizz.settings import Settings


@app.periodic(cron="* * * * *", periodic_id="requery")
@app.task(
    name="pocketbizz.payments.requery_pending",
    queue=DEFAULT_QUEUE,
    retry=DEFAULT_RETRY,
    pass_context=True,
    queueing_lock="pocketbizz.payments.requery_pending",  # one waiting at a time
)
async def requery_pending(context: JobContext, timestamp: int) -> None:
    """Every minute: settle the pending payments and payment links whose callback did not
    come."""
    settings: Settings = context.additional_context["settings"]
    # The request pool's login (authenticator), never the owner: the re-query switches to
    # pb_payments in each transaction, as the callback does.
    db: Database = context.additional_context["db"]
    await service.requery_pending(db, settings)
    await links.requery_pending(db, settings)


@app.periodic(cron="23 * * * *", periodic_id="plan_reminders")
@app.task(
    name="pocketbizz.payments.remind_expiring_plans",
    queue=DEFAULT_QUEUE,
    retry=DEFAULT_RETRY,
    pass_context=True,
    queueing_lock="pocketbizz.payments.remind_expiring_plans",  # one waiting at a time
)
async def remind_expiring_plans(context: JobContext, timestamp: int) -> None:
    """Every hour: remind the owners whose paid plan ends within PB_PLAN_REMINDER_DAYS."""
    settings: Settings = context.additional_context["settings"]
    db: Database = context.additional_context["db"]
    await reminders.remind_expiring_plans(db, settings)
