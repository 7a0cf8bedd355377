"""The job queue's application: procrastinate's `App`, the retry policy every task gets, the
record of each failure, and the queue's own upkeep.

Tasks are declared with `app.task(...)` in the modules `TASK_MODULES` lists (each worker imports
them before it fetches a job). A job that raises is retried after an exponentially growing wait
and, once its attempts are spent, stays `failed` (dead) with its last error in
`pb_internal.job_errors`.
"""

from __future__ import annotations

import traceback
from typing import Any

import procrastinate
import structlog
from procrastinate import JobContext, PsycopgConnector, RetryStrategy
from procrastinate.middleware import AsyncCallNext
from procrastinate.worker import Worker

from pocketbizz.jobs import repository

log = structlog.get_logger("pocketbizz.jobs")

# The queue PocketBizz's own tasks use; a worker takes jobs only from the queues it is given
# (PB_JOBS_QUEUES), so jobs of another deployment's tasks are never taken by mistake.
DEFAULT_QUEUE = "default"
# Modules whose tasks a worker must know.
TASK_MODULES: list[str] = [
    "pocketbizz.jobs.service",
    "pocketbizz.payments.tasks",
    "pocketbizz.messages.tasks",
]

# 6 retries after 3, 9, 27, 81, 243, 729 s (procrastinate waits exponential_wait ** (n + 1)):
# about 18 minutes in all, enough to ride out a provider's short outage.
DEFAULT_RETRY = RetryStrategy(max_attempts=6, exponential_wait=3)
# Finished jobs kept this many days for inspection (the daily upkeep deletes older ones).
KEEP_FINISHED_DAYS = 7

# The connector is opened by the runtime (a pool on the owner DSN, search_path procrastinate).
app = procrastinate.App(connector=PsycopgConnector(), import_paths=TASK_MODULES)


async def keep_last_error(call_next: AsyncCallNext, context: JobContext, worker: Worker) -> Any:
    """Worker middleware: a task that raises leaves its error, so a dead job says why."""
    try:
        return await call_next()
    except Exception as exc:
        job = context.job
        error = "".join(traceback.format_exception_only(exc)).strip()
        if job.id is not None:
            await repository.record_error(
                app.connector,  # type: ignore[arg-type]  # always the PsycopgConnector above
                job.id,
                job.task_name,
                job.attempts + 1,
                error[:4000],
            )
        log.warning("job failed", job_id=job.id, task=job.task_name, attempts=job.attempts + 1)
        raise


@app.periodic(cron="17 3 * * *", periodic_id="purge")
@app.task(name="pocketbizz.jobs.purge_finished", queue=DEFAULT_QUEUE, retry=DEFAULT_RETRY)
async def purge_finished(timestamp: int) -> None:
    """Daily: drop finished jobs older than KEEP_FINISHED_DAYS (dead ones stay)."""
    deleted = await repository.purge_finished(
        app.connector,  # type: ignore[arg-type]
        KEEP_FINISHED_DAYS,
    )
    log.info("finished jobs purged", deleted=deleted)
