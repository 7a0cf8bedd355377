"""Running workers: alone (`pocketbizz worker`) or inside a server process (`pocketbizz serve`,
unless --no-worker), both on the same PostgreSQL as everything else.

The worker logs in with the owner DSN — the same trust as the migration runner, and the way
`serve` already reaches the database before it hands requests to the `authenticator` pool. The
queue's tables belong to pb_jobs in the `procrastinate` schema, which no request role can use;
request code enqueues only through pb_internal.enqueue_job. A dedicated login role would need a
second password to provision for no gain: the tasks themselves must act for any tenant (settle
a payment, send a message), which only the owner may do.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import TYPE_CHECKING

import structlog
from psycopg_pool import AsyncConnectionPool

from pocketbizz.jobs import repository
from pocketbizz.jobs.service import app, keep_last_error
from pocketbizz.settings import Settings

if TYPE_CHECKING:
    from pocketbizz.state import AppState

log = structlog.get_logger("pocketbizz.jobs")

# A job whose runs have killed their worker this many times is dead rather than retried again.
MAX_INTERRUPTIONS = 5


def queues(settings: Settings) -> list[str]:
    return [q.strip() for q in settings.jobs_queues.split(",") if q.strip()]


async def run_worker(settings: Settings, owner_dsn: str, *, own_signals: bool) -> None:
    """Run one worker until cancelled (or, with `own_signals`, until SIGINT/SIGTERM, which
    lets running jobs finish first within procrastinate's graceful timeout)."""
    await repository.apply_schema(owner_dsn)
    pool = AsyncConnectionPool(
        conninfo=owner_dsn,
        # procrastinate's SQL names its objects unqualified.
        kwargs={"options": f"-c search_path={repository.SCHEMA}"},
        min_size=1,
        # One connection per concurrent job, one for LISTEN, one for heartbeats and upkeep.
        max_size=settings.jobs_concurrency + 2,
        open=False,
    )
    await pool.open()
    try:
        async with app.open_async(pool):
            requeue = asyncio.create_task(_requeue_stalled(settings))
            try:
                await app.run_worker_async(
                    queues=queues(settings),
                    concurrency=settings.jobs_concurrency,
                    install_signal_handlers=own_signals,
                    update_heartbeat_interval=settings.jobs_heartbeat_s,
                    stalled_worker_timeout=settings.jobs_stalled_after_s,
                    worker_middleware=[keep_last_error],
                    # What tasks read from `context.additional_context`.
                    additional_context={"settings": settings, "owner_dsn": owner_dsn},
                )
            finally:
                requeue.cancel()
                with suppress(asyncio.CancelledError):
                    await requeue
    finally:
        await pool.close()


async def _requeue_stalled(settings: Settings) -> None:
    """Every live worker hands back, now and then, the jobs of workers that stopped beating."""
    while True:
        try:
            taken = await repository.requeue_stalled(
                app.connector,  # type: ignore[arg-type]  # the PsycopgConnector of service.app
                settings.jobs_stalled_after_s,
                MAX_INTERRUPTIONS,
            )
        except Exception as exc:  # a database blip must not stop the worker
            log.warning("requeueing stalled jobs failed", error=str(exc))
        else:
            if taken:
                log.warning("stalled jobs requeued", job_ids=taken)
        await asyncio.sleep(settings.jobs_stalled_after_s / 2)


# --- inside `pocketbizz serve` ------------------------------------------------------------------

_WORKER_TASK = "jobs_worker"


async def startup(state: AppState) -> None:
    settings = state.settings
    if not settings.jobs_in_process or not settings.database_url:
        return
    task = asyncio.create_task(_supervised(settings, settings.database_url))
    state.services[_WORKER_TASK] = task


async def _supervised(settings: Settings, owner_dsn: str) -> None:
    # A worker that crashes (the database restarted) is started again; the server stays up.
    while True:
        try:
            await run_worker(settings, owner_dsn, own_signals=False)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("in-process job worker stopped; restarting", error=str(exc))
            await asyncio.sleep(5)


async def shutdown(state: AppState) -> None:
    task = state.services.pop(_WORKER_TASK, None)
    if isinstance(task, asyncio.Task):
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
