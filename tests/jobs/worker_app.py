"""A job worker with test tasks on the queue `test`: the same `run_worker` that `pocketbizz
worker` runs, plus tasks that leave their traces in `jobs_test.*` (the worker's settings come
from the environment, as in production)."""

from __future__ import annotations

import asyncio
import os

from procrastinate import JobContext, RetryStrategy

from pocketbizz.jobs.runtime import run_worker
from pocketbizz.jobs.service import app
from pocketbizz.settings import Settings

QUEUE = "test"


async def _trace(context: JobContext, table: str, key: str, **extra: object) -> None:
    columns = ", ".join(["key", "pid", *extra])
    values = ", ".join(f"%({name})s" for name in ["key", "pid", *extra])
    await context.app.connector.execute_query_async(
        f"insert into jobs_test.{table} ({columns}) values ({values})",  # type: ignore[arg-type]
        key=key,
        pid=os.getpid(),
        **extra,
    )


@app.task(name="tests.record", queue=QUEUE, pass_context=True)
async def record(context: JobContext, key: str, sleep: float = 0) -> None:
    await asyncio.sleep(sleep)
    await _trace(context, "runs", key)


@app.task(name="tests.whoami", queue=QUEUE, pass_context=True)
async def whoami(context: JobContext, key: str) -> None:
    """Leaves "<key> <login> <role>" of the worker's own connections."""
    row = await context.app.connector.execute_query_one_async(
        "select session_user::text as login, current_user::text as role"
    )
    await _trace(context, "runs", f"{key} {row['login']} {row['role']}")


@app.task(name="tests.until_released", queue=QUEUE, pass_context=True)
async def until_released(context: JobContext, key: str) -> None:
    """Starts, then waits for the test to insert `key` into jobs_test.releases, then finishes."""
    await _trace(context, "starts", key)
    while True:
        row = await context.app.connector.execute_query_one_async(
            "select exists (select 1 from jobs_test.releases where key = %(key)s) as released",
            key=key,
        )
        if row["released"]:
            break
        await asyncio.sleep(0.1)
    await _trace(context, "runs", key)


@app.task(
    name="tests.always_fails",
    queue=QUEUE,
    pass_context=True,
    retry=RetryStrategy(max_attempts=2, exponential_wait=2),
)
async def always_fails(context: JobContext, key: str) -> None:
    await _trace(context, "starts", key)
    raise ValueError(f"no luck with {key}")


@app.periodic(cron="* * * * * *", periodic_id="tick")  # every second (6th field: seconds)
@app.task(name="tests.tick", queue=QUEUE, pass_context=True)
async def tick(context: JobContext, timestamp: int) -> None:
    await _trace(context, "ticks", str(timestamp))


if __name__ == "__main__":
    asyncio.run(run_worker(Settings(), os.environ["DATABASE_URL"], own_signals=True))
