"""The messages' jobs: sending a queued WhatsApp receipt.

Enqueued by pb_internal.queue_receipt_message in the transaction that queues the message (the
outbox), so a message exists with its job or not at all. A retryable failure raises and the
queue tries again with its backoff; the message stays `queued` meanwhile. When the attempts are
spent the job is dead and the message is marked `failed`, keeping the last error.
"""

from __future__ import annotations

from uuid import UUID

from procrastinate import JobContext

from pocketbizz.jobs.service import DEFAULT_QUEUE, DEFAULT_RETRY, app
from pocketbizz.messages import service
from pocketbizz.messages.whatsapp import GraphError

SEND_RECEIPT = "pocketbizz.messages.send_receipt"


@app.task(name=SEND_RECEIPT, queue=DEFAULT_QUEUE, retry=DEFAULT_RETRY, pass_context=True)
async def send_receipt(context: JobContext, message_id: str) -> None:
    settings = context.additional_context["settings"]
    # The request-role pool (login authenticator): each step is a service_role transaction.
    transactions = service.pool_transactions(context.additional_context["db"])
    try:
        await service.deliver_receipt(transactions, settings, UUID(message_id))
    except GraphError:
        # procrastinate counts earlier attempts; this one is the last it will make.
        last = DEFAULT_RETRY.max_attempts
        if last is not None and context.job.attempts >= last:
            await service.give_up(transactions, UUID(message_id))
        raise
