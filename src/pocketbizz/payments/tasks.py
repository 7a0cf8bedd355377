"""The payments' jobs."""

from __future__ import annotations

import asyncpg
from procrastinate import JobContext

from pocketbizz.jobs.service import DEFAULT_QUEUE, DEFAULT_RETRY, app
from pocketbizz.payments import service


@app.periodic(cron="* * * * *", periodic_id="requery")
@app.task(
    name="pocketbizz.payments.requery_pending",
    queue=DEFAULT_QUEUE,
    retry=DEFAULT_RETRY,
    pass_context=True,
    queueing_lock="pocketbizz.payments.requery_pending",  # one waiting at a time
)
async def requery_pending(context: JobContext, timestamp: int) -> None:
    """Every minute: settle the pending payments whose callback did not come."""
    settings = context.additional_context["settings"]
    conn = await asyncpg.connect(context.additional_context["owner_dsn"])
    try:
        await service.requery_pending(conn, settings)
    finally:
        await conn.close()
