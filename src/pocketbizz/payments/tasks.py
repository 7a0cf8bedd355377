"""The payments' jobs."""

from __future__ import annotations

from procrastinate import JobContext

from pocketbizz.db import Database
from pocketbizz.jobs.service import DEFAULT_QUEUE, DEFAULT_RETRY, app
from pocketbizz.payments import links, service
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
