"""Jobs in PostgreSQL (issue 10.1): real worker processes on the session database, the test
tasks of worker_app.py on their own queue (the session server's in-process worker takes only
`default`), traces left in `jobs_test.*`."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from harness import TEST_JWT_SECRET, free_port

from pocketbizz.jobs.repository import apply_schema, enqueue

WORKER_APP = Path(__file__).with_name("worker_app.py")
# The one the session's migrations set (tests/conftest.py): workers log in as authenticator.
AUTHENTICATOR_PASSWORD = "test-authenticator"
TRACES = """
create schema if not exists jobs_test;
create table if not exists jobs_test.runs (key text not null, pid int not null);
create table if not exists jobs_test.starts (key text not null, pid int not null);
create table if not exists jobs_test.ticks (key text not null, pid int not null);
create table if not exists jobs_test.releases (key text primary key);
-- The worker's session role (authenticator with role pb_jobs_worker) leaves the traces.
grant usage on schema jobs_test to pb_jobs_worker;
grant select, insert on all tables in schema jobs_test to pb_jobs_worker;
truncate jobs_test.runs, jobs_test.starts, jobs_test.ticks, jobs_test.releases;
delete from procrastinate.procrastinate_jobs where queue_name = 'test';
delete from procrastinate.procrastinate_periodic_defers where task_name = 'tests.tick';
"""


@pytest.fixture
async def db(owner_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_schema(owner_dsn)
    pool = await asyncpg.create_pool(owner_dsn, min_size=1, max_size=4)
    await pool.execute(TRACES)
    yield pool
    await pool.close()


class Workers:
    """`worker_app.py` processes; each is stopped (or found killed) at the end of the test."""

    def __init__(self, owner_dsn: str, tmp_path: Path) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": owner_dsn,
            "PB_AUTHENTICATOR_PASSWORD": AUTHENTICATOR_PASSWORD,
            "PB_DATA_DIR": str(tmp_path),
            "PB_JOBS_QUEUES": "test",
            "PB_JOBS_HEARTBEAT_S": "0.5",
            "PB_JOBS_STALLED_AFTER_S": "2",
            "PB_LOG_LEVEL": "warning",
        }
        self.log = tmp_path / "workers.log"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **env: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, str(WORKER_APP)],
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(owner_dsn: str, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(owner_dsn, tmp_path)
    yield running
    running.stop_all()


async def _until(pool: asyncpg.Pool, sql: str, *args: Any, within: float = 30) -> Any:
    """Poll until `sql` gives a truthy value; that value."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await pool.fetchval(sql, *args)
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {sql}")


async def _enqueue(pool: asyncpg.Pool, task: str, **args: Any) -> int:
    async with pool.acquire() as conn, conn.transaction():
        return await enqueue(conn, task, args, queue="test")


async def _status(pool: asyncpg.Pool, job_id: int) -> str:
    return str(
        await pool.fetchval(
            "select status from procrastinate.procrastinate_jobs where id = $1", job_id
        )
    )


async def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(
    db: asyncpg.Pool, workers: Workers
) -> None:
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await enqueue(conn, "tests.record", {"key": "rolled back"}, queue="test")
        await tx.rollback()
    committed = await _enqueue(db, "tests.record", key="committed")
    workers.start()
    # The task leaves its trace before the worker marks the job done: wait for both.
    await _until(db, "select 1 from jobs_test.runs where key = 'committed'")
    await _until(
        db,
        "select status = 'succeeded' from procrastinate.procrastinate_jobs where id = $1",
        committed,
    )
    # The worker has taken everything there was on the queue: nothing else exists or ran.
    assert (
        await db.fetchval(
            "select count(*) from procrastinate.procrastinate_jobs where task_name = 'tests.record'"
        )
        == 1
    )
    assert await db.fetch("select key from jobs_test.runs") == [("committed",)]


async def test_the_worker_logs_in_as_authenticator_in_a_role_that_reaches_no_tenant_data(
    db: asyncpg.Pool, workers: Workers
) -> None:
    await _enqueue(db, "tests.whoami", key="who")
    workers.start()
    ran = await _until(db, "select key from jobs_test.runs where key like 'who %'")
    assert ran == "who authenticator pb_jobs_worker"
    role = await db.fetchrow(
        "select rolsuper, rolbypassrls, rolcanlogin from pg_roles where rolname = 'pb_jobs_worker'"
    )
    assert tuple(role) == (False, False, False)
    reachable = await db.fetch(
        """select c.oid::regclass::text from pg_class c
           where c.relnamespace in ('public'::regnamespace, 'auth'::regnamespace,
                                    'storage'::regnamespace, 'pb_internal'::regnamespace)
             and c.relkind in ('r', 'v', 'm', 'p')
             and (has_table_privilege('pb_jobs_worker', c.oid, 'select, insert, update, delete')
                  or has_any_column_privilege('pb_jobs_worker', c.oid, 'select, insert, update'))"""
    )
    assert [r[0] for r in reachable] == ["pb_internal.job_errors"]


async def test_only_domain_code_may_enqueue(db: asyncpg.Pool) -> None:
    """The outbox entry point is granted to pb_definer (the domain functions' owner), never to
    a request role; the queue's own tables are out of every request role's reach."""
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("set local role pb_definer")
        assert await enqueue(conn, "tests.record", {"key": "from definer"}, queue="test") > 0
    for role in ("authenticated", "anon", "service_role", "authenticator"):
        async with db.acquire() as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute(f"set local role {role}")
                    await enqueue(conn, "tests.record", {"key": role}, queue="test")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():
                    await conn.execute(f"set local role {role}")
                    await conn.fetch("select * from procrastinate.procrastinate_jobs")


async def test_a_killed_worker_s_job_runs_to_completion_exactly_once(
    db: asyncpg.Pool, workers: Workers
) -> None:
    job = await _enqueue(db, "tests.until_released", key="k1")
    first = workers.start()
    await _until(db, "select 1 from jobs_test.starts where key = 'k1'")
    first.kill()  # SIGKILL mid-job: no goodbye, the job stays `doing`
    first.wait()
    assert await _status(db, job) == "doing"

    second = workers.start()
    # The new worker hands the job back once the dead one's heartbeat is stale, then runs it.
    await _until(db, "select count(*) = 2 from jobs_test.starts where key = 'k1'")
    await db.execute("insert into jobs_test.releases values ('k1')")
    await _until(
        db,
        "select status = 'succeeded' from procrastinate.procrastinate_jobs where id = $1",
        job,
    )
    runs = await db.fetch("select pid from jobs_test.runs where key = 'k1'")
    assert [r["pid"] for r in runs] == [second.pid]
    assert (
        await db.fetchval(
            "select attempts from procrastinate.procrastinate_jobs where id = $1", job
        )
        == 2
    )  # the killed run and the one that finished


async def test_a_job_that_keeps_killing_its_worker_ends_dead(
    db: asyncpg.Pool, workers: Workers
) -> None:
    """Orphaned `doing` jobs (their worker gone): one is handed back and runs; one whose runs
    already stopped their worker 4 times is dead at the 5th, with the reason kept."""
    insert = (
        "insert into procrastinate.procrastinate_jobs (queue_name, task_name, args, status,"
        " attempts) values ('test', 'tests.record', $1::jsonb, 'doing', $2) returning id"
    )
    orphan = await db.fetchval(insert, '{"key": "orphan"}', 0)
    doomed = await db.fetchval(insert, '{"key": "doomed"}', 4)
    workers.start()
    await _until(
        db,
        "select status = 'succeeded' from procrastinate.procrastinate_jobs where id = $1",
        orphan,
    )
    assert await _status(db, doomed) == "failed"
    assert await db.fetch("select key from jobs_test.runs") == [("orphan",)]
    error = await db.fetchrow("select * from pb_internal.job_errors where job_id = $1", doomed)
    assert error is not None
    assert (error["attempts"], error["error"]) == (5, "its worker stopped during each of 5 runs")


async def test_two_workers_never_run_one_job_twice(db: asyncpg.Pool, workers: Workers) -> None:
    async with db.acquire() as conn, conn.transaction():
        ids = [
            await enqueue(conn, "tests.record", {"key": f"job-{n}", "sleep": 0.05}, queue="test")
            for n in range(80)
        ]
    workers.start(PB_JOBS_CONCURRENCY="3")
    workers.start(PB_JOBS_CONCURRENCY="3")
    await _until(
        db,
        "select count(*) = 80 from procrastinate.procrastinate_jobs "
        "where id = any($1::bigint[]) and status = 'succeeded'",
        ids,
    )
    runs = await db.fetch("select key, pid from jobs_test.runs")
    assert len(runs) == 80
    assert len({r["key"] for r in runs}) == 80
    assert len({r["pid"] for r in runs}) == 2  # both worked, side by side


async def test_a_failing_job_backs_off_exponentially_then_is_dead_with_its_error(
    db: asyncpg.Pool, workers: Workers
) -> None:
    job = await _enqueue(db, "tests.always_fails", key="doomed")
    workers.start()
    await _until(
        db, "select status = 'failed' from procrastinate.procrastinate_jobs where id = $1", job
    )
    # max_attempts=2: the first run and two retries, then no more.
    await asyncio.sleep(1)
    assert await db.fetchval("select count(*) from jobs_test.starts") == 3
    error = await db.fetchrow("select * from pb_internal.job_errors where job_id = $1", job)
    assert error is not None
    assert (error["task_name"], error["attempts"]) == ("tests.always_fails", 3)
    assert error["error"] == "ValueError: no luck with doomed"
    # exponential_wait=2: the retries were scheduled 2**1 and 2**2 seconds after each failure.
    started = await db.fetch(
        "select at from procrastinate.procrastinate_events "
        "where job_id = $1 and type = 'started' order by at",
        job,
    )
    gaps = [(b["at"] - a["at"]).total_seconds() for a, b in itertools.pairwise(started)]
    assert len(gaps) == 2
    assert 2 <= gaps[0] < gaps[1]
    assert gaps[1] >= 4


async def test_a_periodic_job_is_deferred_once_per_tick_across_workers(
    db: asyncpg.Pool, workers: Workers
) -> None:
    workers.start()
    workers.start()
    await _until(db, "select count(*) >= 4 from jobs_test.ticks")
    ticks = [r["key"] for r in await db.fetch("select key from jobs_test.ticks")]
    assert len(ticks) == len(set(ticks))


def test_the_worker_command_needs_the_shared_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PB_DATABASE_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "pocketbizz", "worker", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "pocketbizz worker needs DATABASE_URL" in done.stderr


def _worker_command(owner_dsn: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": owner_dsn,
        "PB_AUTHENTICATOR_PASSWORD": AUTHENTICATOR_PASSWORD,
        "PB_LOG_LEVEL": "warning",
        "PB_JOBS_QUEUES": "cli-test",  # only this worker takes the job below
    }
    return subprocess.Popen(
        [sys.executable, "-m", "pocketbizz", "worker", "--data-dir", str(data_dir)], env=env
    )


async def test_the_worker_command_runs_jobs_and_stops_on_sigterm(
    db: asyncpg.Pool, owner_dsn: str, tmp_path: Path
) -> None:
    """`pocketbizz worker` runs PocketBizz's own tasks: here the daily upkeep, by hand, which
    drops finished jobs older than a week and keeps dead ones."""
    old = (
        "insert into procrastinate.procrastinate_jobs (queue_name, task_name, status)"
        " values ('cli-old', 'tests.record', $1) returning id"
    )
    old_done, old_dead, new_done = (
        await db.fetchval(old, "succeeded"),
        await db.fetchval(old, "failed"),
        await db.fetchval(old, "succeeded"),
    )
    # When each finished, as procrastinate's events record it.
    for job_id, kind, age in (
        (old_done, "succeeded", 8),
        (old_dead, "failed", 8),
        (new_done, "succeeded", 1),
    ):
        await db.execute(
            "insert into procrastinate.procrastinate_events (job_id, type, at)"
            " values ($1, $2, now() - make_interval(days => $3))",
            job_id,
            kind,
            age,
        )
    async with db.acquire() as conn, conn.transaction():
        job = await enqueue(
            conn, "pocketbizz.jobs.purge_finished", {"timestamp": 0}, queue="cli-test"
        )
    proc = _worker_command(owner_dsn, tmp_path)
    try:
        await _until(
            db,
            "select status = 'succeeded' from procrastinate.procrastinate_jobs where id = $1",
            job,
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = await db.fetch(
        "select id from procrastinate.procrastinate_jobs where queue_name = 'cli-old' order by id"
    )
    assert [r["id"] for r in left] == [old_dead, new_done]
    await db.execute("delete from procrastinate.procrastinate_jobs where queue_name = 'cli-old'")


def _serve(owner_dsn: str, data_dir: Path, port: int, *flags: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": owner_dsn,
        "PB_AUTHENTICATOR_PASSWORD": AUTHENTICATOR_PASSWORD,
        "PB_JWT_SECRET": TEST_JWT_SECRET,
        "PB_LOG_LEVEL": "warning",
        "PB_JOBS_QUEUES": "serve-test",
    }
    command = [sys.executable, "-m", "pocketbizz", "serve", "--port", str(port), *flags]
    proc = subprocess.Popen(
        [*command, "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not become ready")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("in_process", [True, False])
async def test_serve_runs_a_worker_unless_told_not_to(
    db: asyncpg.Pool, owner_dsn: str, tmp_path: Path, in_process: bool
) -> None:
    async with db.acquire() as conn, conn.transaction():
        job = await enqueue(
            conn, "pocketbizz.jobs.purge_finished", {"timestamp": 0}, queue="serve-test"
        )
    flags = () if in_process else ("--no-worker",)
    server = _serve(owner_dsn, tmp_path, free_port(), *flags)
    try:
        if in_process:
            await _until(
                db,
                "select status = 'succeeded' from procrastinate.procrastinate_jobs where id = $1",
                job,
            )
        else:
            await asyncio.sleep(3)  # time enough for a worker to take it, were there one
            assert await _status(db, job) == "todo"
    finally:
        _stop(server)
        await db.execute("delete from procrastinate.procrastinate_jobs where id = $1", job)
