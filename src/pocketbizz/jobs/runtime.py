"""Running workers: alone (`pocketbizz worker`) or inside a server process (`pocketbizz serve`,
unless --no-worker), both on the same PostgreSQL as everything else.

The worker logs in as `authenticator`, like the request pool, with the session role
pb_jobs_worker on its own connections (libpq `options=-c role=pb_jobs_worker`): that role may
use the queue's schema (`procrastinate`, made by pb_jobs) and record job errors, nothing else
(migration 0022). Request code enqueues only through pb_internal.enqueue_job. A task reaches
tenant data through `additional_context["db"]` — the server's request pool in `serve`, an
`authenticator` pool of its own in `pocketbizz worker` — switching role per transaction as a
request does (payments: pb_payments). The queue's schema is applied with the owner DSN by the
migration step (`pocketbizz migrate`/`serve`/`worker`), before any worker starts.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import TYPE_CHECKING

import structlog
from psycopg_pool import AsyncConnectionPool

from pocketbizz.db import Database
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


WORKER_ROLE = "pb_jobs_worker"


async def run_worker(
    settings: Settings, dsn: str, *, own_signals: bool, db: Database | None = None
) -> None:
    """Run one worker until cancelled (or, with `own_signals`, until SIGINT/SIGTERM, which
    lets running jobs finish first within procrastinate's graceful timeout). `dsn` says where
    the database is, directly: the queue's connections keep a session (LISTEN, the session
    role), which a transaction pooler would not. The login is always `authenticator` (the
    DSN's user and password are not used). `db`: the request pool its tasks share (else one
    of its own, at DATABASE_URL like the servers' pools)."""
    own_db = db is None
    tasks_db = db or Database(
        settings.database_url or dsn,
        user="authenticator",
        password=settings.authenticator_secret,
        min_size=0,
        max_size=settings.jobs_concurrency,
        statement_cache_size=settings.statement_cache_size,
    )
    pool = AsyncConnectionPool(
        conninfo=dsn,
        kwargs={
            "user": "authenticator",
            "password": settings.authenticator_secret,
            # The session role for these connections only; procrastinate's SQL names its
            # objects unqualified.
            "options": f"-c role={WORKER_ROLE} -c search_path={repository.SCHEMA}",
            "application_name": "pocketbizz-jobs",
        },
        min_size=1,
        # One connection per concurrent job, one for LISTEN, one for heartbeats and upkeep.
        max_size=settings.jobs_concurrency + 2,
        open=False,
    )
    if own_db:
        await tasks_db.open()
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
                    # What tasks read from `context.additional_context`: tenant data only
                    # through the request-role pool, never an owner login.
                    additional_context={"settings": settings, "db": tasks_db},
                )
            finally:
                requeue.cancel()
                with suppress(asyncio.CancelledError):
                    await requeue
    finally:
        await pool.close()
        if own_db:
            await tasks_db.close()


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
    dsn = settings.direct_database_url
    if not settings.jobs_in_process or not dsn:
        return
    task = asyncio.create_task(_supervised(settings, dsn, state.db))
    state.services[_WORKER_TASK] = task


async def _supervised(settings: Settings, dsn: str, db: Database) -> None:
    # A worker that crashes (the database restarted) is started again; the server stays up.
    while True:
        try:
            await run_worker(settings, dsn, own_signals=False, db=db)
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
