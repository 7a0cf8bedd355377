"""Issue 10's job numbers: jobs per second through one worker (enqueue → done), and what an
enqueue in the same transaction adds to `create_sale`.

Against a fresh embedded PostgreSQL. The worker is `pocketbizz.jobs.runtime.run_worker` (what
`pocketbizz worker` and `serve` run), one process per concurrency tried, on a queue of its own
with a no-op task; jobs are enqueued 50 per transaction from another connection. The
create_sale phase runs with no worker, so the two variants (alternated, one connection) differ
only by the enqueue: `python -m bench.jobs_bench [jobs] [sales]`.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import orjson
import pgserver

from bench.stack import AUTHENTICATOR_PASSWORD
from pocketbizz.db import apply_migrations
from pocketbizz.jobs.repository import apply_schema
from pocketbizz.jobs.runtime import run_worker
from pocketbizz.jobs.service import app
from pocketbizz.settings import Settings

QUEUE = "bench"
NOOP = "bench.noop"
BATCH = 50  # jobs per enqueueing transaction


@app.task(name=NOOP, queue=QUEUE)
async def noop(n: int) -> None:
    """Nothing: what is measured is the queue's own round trip."""


async def _count_done(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            "select count(*) from procrastinate.procrastinate_jobs"
            " where queue_name = $1 and status = 'succeeded'",
            QUEUE,
        )
    )


async def _throughput(dsn: str, data_dir: Path, jobs: int, concurrency: int) -> str:
    settings = Settings(
        data_dir=data_dir,
        database_url=dsn,
        authenticator_password=AUTHENTICATOR_PASSWORD,
        jobs_queues=QUEUE,
        jobs_concurrency=concurrency,
        log_level="warning",
    )
    conn = await asyncpg.connect(dsn)
    worker = asyncio.create_task(run_worker(settings, dsn, own_signals=False))
    try:
        await asyncio.sleep(2)  # the worker is listening
        before = await _count_done(conn)
        started = time.perf_counter()
        for first in range(0, jobs, BATCH):
            async with conn.transaction():
                for n in range(first, min(first + BATCH, jobs)):
                    await conn.execute(
                        "select pb_internal.enqueue_job($1, $2::jsonb, $3)",
                        NOOP,
                        orjson.dumps({"n": n}).decode(),
                        QUEUE,
                    )
        enqueued = time.perf_counter() - started
        while True:
            if await _count_done(conn) - before >= jobs:
                break
            if worker.done():  # it stopped: say why rather than wait for ever
                worker.result()
                raise RuntimeError("the worker stopped")
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await conn.close()
    return (
        f"jobs enqueue → done, 1 worker, concurrency {concurrency}: {jobs} no-op jobs in "
        f"{elapsed:.1f} s = {jobs / elapsed:.0f} jobs/s (enqueueing alone {jobs / enqueued:.0f}/s, "
        f"{BATCH} per transaction)"
    )


def _throughput_in_process(dsn: str, jobs: int, concurrency: int) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bench.jobs_bench", "throughput", dsn, str(jobs), str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return done.stdout.strip().splitlines()[-1]


async def _tenant(conn: asyncpg.Connection) -> tuple[str, list[str]]:
    uid = await conn.fetchval(
        "insert into auth.users (email, encrypted_password) values ($1, 'x') returning id",
        f"bench-{uuid.uuid4().hex[:8]}@example.com",
    )
    await conn.execute(
        "update public.users set subscription_plan = 'pro' where business_owner_id = $1", uid
    )
    await conn.execute(
        "update public.business_profiles set negative_stock_policy = 'allow'"
        " where business_owner_id = $1",
        uid,
    )
    products = [
        str(
            await conn.fetchval(
                "insert into public.products (business_owner_id, sku, name, sale_price)"
                " values ($1, $2, $3, 4.50) returning id",
                uid,
                f"SKU-{i}",
                f"Kuih {i}",
            )
        )
        for i in range(3)
    ]
    claims = orjson.dumps({"sub": str(uid), "role": "authenticated"}).decode()
    return claims, products


# create_sale is SECURITY DEFINER: inside it the caller's role makes no difference, so both
# variants call it from the owner's session with the tenant's claims, and the enqueue rides in
# the same statement, as a domain function's outbox (pb_internal.queue_receipt_message) does it.
_PLAIN = "select public.create_sale(items => $1::jsonb) ->> 'id'"
_WITH_JOB = """select s.sale ->> 'id'
    from (select public.create_sale(items => $1::jsonb) as sale) s,
         lateral pb_internal.enqueue_job($2, jsonb_build_object('sale', s.sale ->> 'id'), $3) j"""


async def _sale(conn: asyncpg.Connection, claims: str, items: str, enqueue: bool) -> float:
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute("select set_config('request.jwt.claims', $1, true)", claims)
        if enqueue:
            await conn.fetchval(_WITH_JOB, items, NOOP, QUEUE)
        else:
            await conn.fetchval(_PLAIN, items)
    return (time.perf_counter() - started) * 1000


def _stats(ms: list[float]) -> str:
    ordered = sorted(ms)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered):.2f} ms, p95 {p95:.2f} ms"


async def _sale_latency(dsn: str, sales: int) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        claims, products = await _tenant(conn)
        items = orjson.dumps(
            [{"product_id": p, "quantity": 1 + i} for i, p in enumerate(products)]
        ).decode()
        for _ in range(50):  # warm plans and caches
            await _sale(conn, claims, items, False)
            await _sale(conn, claims, items, True)
        plain: list[float] = []
        with_job: list[float] = []
        for i in range(sales):
            # Alternated, and the order swapped each round: drift hits both alike.
            first = i % 2 == 0
            for enqueue in (not first, first):
                (with_job if enqueue else plain).append(await _sale(conn, claims, items, enqueue))
    finally:
        await conn.close()
    added = statistics.median(with_job) - statistics.median(plain)
    return [
        f"create_sale (3 lines), direct, one connection: {_stats(plain)} ({sales} sales)",
        f"create_sale + enqueue in the same transaction: {_stats(with_job)} ({sales} sales)",
        f"added by the enqueue: {added:+.2f} ms at the median",
    ]


async def _main(jobs: int, sales: int) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="pb-jobs-bench-") as tmp:
        workdir = Path(tmp)
        pg = pgserver.get_server(workdir / "pg", cleanup_mode="delete")  # type: ignore[attr-defined]
        try:
            dsn = str(pg.get_uri())
            await apply_migrations(dsn, authenticator_password=AUTHENTICATOR_PASSWORD)
            await apply_schema(dsn)
            # One process per worker: procrastinate's app keeps the pool it was first opened
            # with, so a second worker in one process would find it closed.
            lines = [_throughput_in_process(dsn, jobs, concurrency) for concurrency in (1, 4, 8)]
            lines += await _sale_latency(dsn, sales)
            return lines
        finally:
            pg.cleanup()


def main(jobs: int = 2000, sales: int = 500) -> list[str]:
    return asyncio.run(_main(jobs, sales))


if __name__ == "__main__":
    if sys.argv[1:2] == ["throughput"]:  # one phase, in a process of its own (above)
        dsn, jobs, concurrency = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        with tempfile.TemporaryDirectory(prefix="pb-jobs-worker-") as data_dir:
            print(asyncio.run(_throughput(dsn, Path(data_dir), jobs, concurrency)), flush=True)
    else:
        args = [int(a) for a in sys.argv[1:3]]
        for line in main(*args):
            print(line, flush=True)
