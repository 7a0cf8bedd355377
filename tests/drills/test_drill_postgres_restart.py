"""Drill: PostgreSQL stops and starts again under load. The server reconnects by itself: `/ready`
answers 503 while the database is away and 200 after, every request is answered (none hangs;
the client's own timeout is the bound) — meanwhile with PostgREST's 503 PGRST000, in each
surface's own error shape — and reads, sign-ins and sales work again afterwards."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pgserver
import pgserver._commands
from drills.support import CALL_TIMEOUT, invariants, new_tenant, sell
from ops.logged_server import LoggedServer

from pocketbizz.db import apply_migrations


def _pg_ctl(database: pgserver.PostgresServer, *args: str) -> None:
    # As pgserver runs it: as its own system user when we are root (PostgreSQL refuses root),
    # output to files (a pipe would be held open by the postmaster).
    pgserver._commands.pg_ctl(["-w", *args], pgdata=database.pgdata, user=database.system_user)


@dataclass
class Answer:
    started: float
    seconds: float
    status: int | str  # the HTTP status, or the client error's name
    code: str | None = None  # an error's `code`


def _until(check: Callable[[], bool], timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout} s")


def _ready_status(url: str) -> int:
    return httpx.get(f"{url}/ready", timeout=CALL_TIMEOUT).status_code


def test_postgres_restart_under_load(tmp_path: Path) -> None:
    pgdata = tmp_path / "pg"
    database = pgserver.get_server(pgdata, cleanup_mode="delete")
    dsn = str(database.get_uri())
    socket_dir = parse_qs(urlsplit(dsn).query)["host"][0]
    asyncio.run(apply_migrations(dsn, authenticator_password="test-authenticator"))
    (tmp_path / "data").mkdir()
    server = LoggedServer(
        dsn,
        tmp_path / "data",
        env_overrides={
            "PB_POOL_ACQUISITION_TIMEOUT": "3",
            "PB_RATE_LIMIT_PER_MINUTE": "1000000",
            "PB_RATE_LIMIT_SIGN_IN_PER_MINUTE": "1000000",
            "PB_RATE_LIMIT_SIGN_UP_PER_MINUTE": "1000000",
        },
    )
    server.start()
    answers: list[Answer] = []
    stop = threading.Event()
    try:
        tenant = new_tenant(server, stock=1000)
        headers = tenant.headers(server)

        def reader() -> None:
            with httpx.Client() as http:
                while not stop.is_set():
                    started = time.monotonic()
                    code = None
                    try:
                        response = http.get(
                            f"{server.url}/rest/v1/products?select=id,current_stock",
                            headers=headers,
                            timeout=CALL_TIMEOUT,
                        )
                        status: int | str = response.status_code
                        if status != 200:
                            code = response.json().get("code")
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    answers.append(Answer(started, time.monotonic() - started, status, code))
                    time.sleep(0.02)

        readers = [threading.Thread(target=reader) for _ in range(4)]
        for thread in readers:
            thread.start()
        time.sleep(1)

        down_at = time.monotonic()
        _pg_ctl(database, "-m", "fast", "stop")
        unready_at = _until(lambda: _ready_status(server.url) == 503, 15, "/ready 503")
        with httpx.Client(timeout=CALL_TIMEOUT) as http:
            # Auth and Storage refuse too, in their own shapes, nothing of the server's insides.
            sign_in = http.post(
                f"{server.url}/auth/v1/token?grant_type=password",
                headers={"apikey": server.anon_key},
                json={"email": "nobody@example.com", "password": "while the database is away"},
            )
            buckets = http.get(f"{server.url}/storage/v1/bucket", headers=headers)
        time.sleep(3)  # load keeps coming while the database is away
        up_at = time.monotonic()
        _pg_ctl(
            database, "-l", str(pgdata / "restart.log"), "-o", f'-h "" -k {socket_dir}', "start"
        )
        ready_at = _until(lambda: _ready_status(server.url) == 200, 30, "/ready 200 again")
        time.sleep(2)  # and after it is back
        stop.set()
        for thread in readers:
            thread.join(30)
        assert not any(thread.is_alive() for thread in readers)

        # Every request was answered by the server, within the client's bound, none hung.
        assert all(isinstance(a.status, int) for a in answers), Counter(a.status for a in answers)
        assert max(a.seconds for a in answers) < (CALL_TIMEOUT.read or 20)
        before = [a.status for a in answers if a.started + a.seconds < down_at]
        during = [(a.status, a.code) for a in answers if unready_at <= a.started < up_at]
        after = [a.status for a in answers if a.started > ready_at]
        assert before and set(before) == {200}
        # Refused while the database is away as PostgREST refuses, never a stale or partial 200:
        # 503 PGRST000 (no connection can be opened), or PGRST001 for a request whose pooled
        # connection died under it.
        assert during and {s for s, _ in during} == {503}, Counter(during)
        assert (503, "PGRST000") in during, Counter(during)
        assert {c for _, c in during} <= {"PGRST000", "PGRST001"}, Counter(during)
        assert after and set(after) == {200}, Counter(after)

        assert sign_in.status_code == 503, sign_in.text
        # GoTrue names any database failure unexpected_failure; the 503 makes clients retry.
        assert sign_in.json()["error_code"] == "unexpected_failure" and sign_in.json()["msg"]
        assert buckets.status_code == 503, buckets.text
        assert buckets.json()["statusCode"] == "503" and buckets.json()["code"] == "PGRST000"
        for res in (sign_in, buckets):
            assert "Traceback" not in res.text and socket_dir not in res.text

        # Writes and sign-ins work on the reconnected pools.
        with httpx.Client() as http:
            ref = str(uuid.uuid4())
            sale = sell(http, server, tenant, ref)
            assert sale.status_code == 200, sale.text
            signed_up = http.post(
                f"{server.url}/auth/v1/signup",
                headers={"apikey": server.anon_key},
                json={"email": f"after-{ref[:8]}@example.com", "password": "after restart"},
                timeout=CALL_TIMEOUT,
            )
            assert signed_up.status_code == 200, signed_up.text
        state = invariants(dsn, tenant)
        assert state["sales_by_client_ref"] == {ref: 1}
        assert state["current_stock"] == state["ledger_stock"] == 999
    finally:
        stop.set()
        server.stop()
        # pgserver knows only the postmaster it started; stop the restarted one first.
        with suppress(subprocess.CalledProcessError):
            _pg_ctl(database, "-m", "fast", "stop")
        database.cleanup()
