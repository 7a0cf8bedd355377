"""When a dependency is slow or gone: Redis down fails open, a saturated pool answers 504
PGRST003 instead of queueing forever, and /ready tells callers nothing about the database."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from pathlib import Path

import asyncpg
import httpx
import pgserver
import pytest
from harness import free_port
from ops.logged_server import LoggedServer

from pocketbizz.db import apply_migrations


def _log(server: LoggedServer) -> list[dict[str, object]]:
    return [json.loads(line) for line in server.log_path.read_text().splitlines()]


def test_redis_down_counts_per_process_with_a_warning_and_a_metric(
    owner_dsn: str, tmp_path: Path
) -> None:
    proc = LoggedServer(
        owner_dsn,
        tmp_path,
        env_overrides={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},  # nothing listens
    )
    proc.start()
    try:
        with httpx.Client() as http:
            statuses = [
                http.get(f"{proc.url}/auth/v1/settings", headers={"apikey": proc.anon_key})
                for _ in range(20)
            ]
            metrics = http.get(f"{proc.url}/metrics").text
    finally:
        proc.stop()
    assert [r.status_code for r in statuses] == [200] * 20
    # Counted in this process instead: the budget is shown, and it is the per-process one.
    assert [int(r.headers["ratelimit-remaining"]) for r in statuses[:3]] == [
        int(statuses[0].headers["ratelimit-limit"]) - n for n in (1, 2, 3)
    ]
    unchecked = re.search(r"^pocketbizz_rate_limit_storage_errors_total (\S+)$", metrics, re.M)
    assert unchecked is not None and float(unchecked.group(1)) >= 20
    warnings = [
        line for line in _log(proc) if "rate-limit storage unavailable" in str(line["event"])
    ]
    assert len(warnings) == 1 and warnings[0]["level"] == "warning"


_SLEEPER = "ops_test_hold_connection"


async def _create_sleeper(owner_dsn: str) -> None:
    # A function only this test calls: the request running it is the only one that can be
    # holding the pool's connection (a table lock would also catch other servers' work).
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute(
            f"create or replace function public.{_SLEEPER}(seconds double precision)"
            " returns boolean language sql volatile as 'select pg_sleep(seconds) is not null';"
            f" revoke all on function public.{_SLEEPER}(double precision) from public;"
            f" grant execute on function public.{_SLEEPER}(double precision) to service_role;"
        )
    finally:
        await conn.close()


async def _wait_until_running(owner_dsn: str) -> None:
    conn = await asyncpg.connect(owner_dsn)
    try:
        for _ in range(200):
            running = await conn.fetchval(
                "select count(*) from pg_stat_activity where state = 'active' and query like $1",
                f"%{_SLEEPER}%",
            )
            if running:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the first request never started")
    finally:
        await conn.close()


def test_saturated_pool_answers_504_pgrst003(owner_dsn: str, tmp_path: Path) -> None:
    asyncio.run(_create_sleeper(owner_dsn))
    proc = LoggedServer(
        owner_dsn,
        tmp_path,
        env_overrides={
            "PB_POOL_MIN_SIZE": "1",
            "PB_POOL_MAX_SIZE": "1",
            "PB_POOL_ACQUISITION_TIMEOUT": "1",
        },
    )
    proc.start()
    first: list[httpx.Response] = []
    headers = {"apikey": proc.service_key}
    try:
        # Start-up work done and the function known to the schema cache before the race.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = httpx.post(
                f"{proc.url}/rest/v1/rpc/{_SLEEPER}",
                headers=headers,
                json={"seconds": 0},
                timeout=30,
            )
            if probe.status_code == 200:
                break
            time.sleep(0.2)
        assert probe.status_code == 200, probe.text
        holder = threading.Thread(
            target=lambda: first.append(
                httpx.post(
                    f"{proc.url}/rest/v1/rpc/{_SLEEPER}",
                    headers=headers,
                    json={"seconds": 6},
                    timeout=30,
                )
            )
        )
        holder.start()
        asyncio.run(_wait_until_running(owner_dsn))

        started = time.monotonic()
        second = httpx.get(f"{proc.url}/rest/v1/products", headers=headers, timeout=30)
        waited = time.monotonic() - started
        assert second.status_code == 504
        assert second.json() == {
            "code": "PGRST003",
            "details": None,
            "hint": None,
            "message": "Timed out acquiring connection from connection pool.",
        }
        assert waited < 5  # bounded by the setting, not by the 6 s the first request holds
        holder.join(30)
    finally:
        proc.stop()
    assert first[0].status_code == 200  # the one holding the connection finished normally


def test_ready_keeps_database_errors_in_the_log(tmp_path: Path) -> None:
    server = pgserver.get_server(tmp_path / "pg", cleanup_mode="delete")
    dsn = str(server.get_uri())
    asyncio.run(apply_migrations(dsn, authenticator_password="test-authenticator"))
    (tmp_path / "data").mkdir()
    proc = LoggedServer(dsn, tmp_path / "data")
    proc.start()
    try:
        assert httpx.get(f"{proc.url}/ready").json() == {"status": "ready"}
        server.cleanup()  # the database goes away under the running server
        res = httpx.get(f"{proc.url}/ready", timeout=30)
        assert res.status_code == 503
        assert res.json() == {"status": "unavailable", "reason": "database unavailable"}
    finally:
        proc.stop()
    logged = [line for line in _log(proc) if line["event"] == "not ready: database unavailable"]
    assert logged and logged[0]["error"]  # the reason is for the operator


@pytest.mark.parametrize("value", ["8s", "500ms", "2min", "8000", "1.5s", "1h", "1d", "250us"])
def test_statement_timeouts_postgres_accepts_are_valid_settings(owner_dsn: str, value: str) -> None:
    from pocketbizz.settings import Settings

    assert Settings(statement_timeout=value).statement_timeout == value

    async def postgres_accepts() -> None:
        conn = await asyncpg.connect(owner_dsn)
        try:
            await conn.execute(f"set statement_timeout = '{value}'")
        finally:
            await conn.close()

    asyncio.run(postgres_accepts())
