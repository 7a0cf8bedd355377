"""SQL of the job queue: procrastinate's schema, enqueueing in a caller's transaction, the last
error of a job, and taking back the jobs of workers that died."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from procrastinate import PsycopgConnector, schema

SCHEMA = "procrastinate"
# Every process that applies the schema takes this lock, so two starting servers apply it once.
_SCHEMA_LOCK = 0x50_42_4A_4F_42  # "PBJOB"


_PIN_SEARCH_PATH = """
do $$
declare
    fn regprocedure;
begin
    for fn in select p.oid::regprocedure from pg_proc p
              where p.pronamespace = 'procrastinate'::regnamespace
    loop
        execute format('alter function %s set search_path = procrastinate, pg_temp', fn);
    end loop;
end
$$"""


async def apply_schema(owner_dsn: str) -> bool:
    """Apply the installed procrastinate's schema into its own schema (made by migration 0018),
    as pb_jobs, unless it is there already. True when it was applied now."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        async with conn.transaction():
            await conn.execute("select pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
            present = await conn.fetchval(
                "select to_regclass('procrastinate.procrastinate_jobs') is not null"
            )
            if present:
                return False
            await conn.execute("set local role pb_jobs")
            await conn.execute(f"set local search_path = {SCHEMA}")
            await conn.execute(schema.SchemaManager.get_schema())
            # Its functions and triggers name their tables unqualified: pinned, they work from
            # any session (a trigger fired by a delete run with another search_path).
            await conn.execute(_PIN_SEARCH_PATH)
            # Only the worker (the owner) and pb_internal.enqueue_job use these.
            await conn.execute(f"revoke all on all functions in schema {SCHEMA} from public")
        return True
    finally:
        await conn.close()


async def enqueue(
    conn: asyncpg.Connection,
    task_name: str,
    args: dict[str, Any] | None = None,
    *,
    queue: str = "default",
    queueing_lock: str | None = None,
) -> int:
    """Enqueue a job in `conn`'s current transaction: it runs only if that transaction commits."""
    job_id = await conn.fetchval(
        "select pb_internal.enqueue_job($1, $2::jsonb, $3, null, $4)",
        task_name,
        orjson.dumps(args or {}).decode(),
        queue,
        queueing_lock,
    )
    return int(job_id)


async def record_error(
    connector: PsycopgConnector, job_id: int, task_name: str, attempts: int, error: str
) -> None:
    await connector.execute_query_async(
        """insert into pb_internal.job_errors (job_id, task_name, attempts, error)
           values (%(job_id)s, %(task_name)s, %(attempts)s, %(error)s)
           on conflict (job_id) do update
           set attempts = excluded.attempts, error = excluded.error, failed_at = now()""",
        job_id=job_id,
        task_name=task_name,
        attempts=attempts,
        error=error,
    )


async def requeue_stalled(
    connector: PsycopgConnector, stalled_after_s: float, max_interruptions: int
) -> list[tuple[int, str]]:
    """Hand back to `todo` the running jobs whose worker stopped beating (killed, lost its
    connection); (id, new status) of each. One statement: the row lock and the re-checked
    `status = 'doing'` mean a job is handed back once, however many workers run this at the
    same moment, and never while a live worker holds it (a live worker's heartbeat is fresh).
    The interrupted run counts as an attempt; a job whose runs keep killing their worker (it
    exhausts memory, say) is dead after `max_interruptions` of them, instead of looping."""
    rows = await connector.execute_query_all_async(
        """update procrastinate.procrastinate_jobs job
           set status = case when job.attempts + 1 >= %(most)s
                             then 'failed' else 'todo' end::procrastinate.procrastinate_job_status,
               worker_id = null,
               attempts = job.attempts + 1
           where job.status = 'doing'
             and not exists (
                 select 1 from procrastinate.procrastinate_workers w
                 where w.id = job.worker_id
                   and w.last_heartbeat >= now() - make_interval(secs => %(after)s))
           returning job.id, job.status::text as status, job.task_name, job.attempts""",
        after=stalled_after_s,
        most=max_interruptions,
    )
    for dead in (r for r in rows if r["status"] == "failed"):
        await record_error(
            connector,
            int(dead["id"]),
            str(dead["task_name"]),
            int(dead["attempts"]),
            f"its worker stopped during each of {dead['attempts']} runs",
        )
    return [(int(r["id"]), str(r["status"])) for r in rows]


async def purge_finished(connector: PsycopgConnector, keep_days: int) -> int:
    """Delete succeeded and cancelled jobs finished more than `keep_days` ago (their events go
    with them); dead (`failed`) ones stay for an operator. The number deleted."""
    rows = await connector.execute_query_all_async(
        """delete from procrastinate.procrastinate_jobs job
           where job.status in ('succeeded', 'cancelled')
             and (select max(e.at) from procrastinate.procrastinate_events e
                  where e.job_id = job.id) < now() - make_interval(days => %(days)s)
           returning job.id""",
        days=keep_days,
    )
    return len(rows)
