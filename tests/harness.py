"""Test harness: a real embedded PostgreSQL and a real `pocketbizz serve` process.

Nothing is mocked: tests talk HTTP/WebSocket to the server and SQL to the database.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from pocketbizz.gateway.tokens import api_keys

TEST_JWT_SECRET = "test-secret-for-pocketbizz-test-suite-only-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def early_in_a_rate_window(room_s: float = 25.0) -> int:
    """Wait for a new minute when fewer than `room_s` seconds are left in this one, and return
    the minute. Rate-limit windows are aligned to whole minutes, and a burst that straddles two
    is weighted across both (the sliding window lets part of it through again): that is the
    limiter working, so a test that counts refusals must fall within one minute."""
    left = 60 - time.time() % 60
    if left < room_s:
        time.sleep(left + 0.05)
    return int(time.time() // 60)


@dataclass
class ServerProcess:
    """`pocketbizz serve` against an existing database, as a subprocess."""

    owner_dsn: str
    data_dir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def anon_key(self) -> str:
        return api_keys(TEST_JWT_SECRET)["anon_key"]

    @property
    def service_key(self) -> str:
        return api_keys(TEST_JWT_SECRET)["service_role_key"]

    def start(self, timeout: float = 30) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": self.owner_dsn,
            "PB_JWT_SECRET": TEST_JWT_SECRET,
            "PB_RATE_LIMIT_PER_MINUTE": "1000000",
            "PB_RATE_LIMIT_SIGN_IN_PER_MINUTE": "1000000",
            "PB_RATE_LIMIT_SIGN_UP_PER_MINUTE": "1000000",
            "PB_LOG_LEVEL": "warning",
            "PB_ENVIRONMENT": "test",
            # Each test server records itself beside its data, not in the user's real state
            # dir, so `pocketbizz keys` run by a person during a test run is not confused.
            "XDG_STATE_HOME": str(self.data_dir / "state"),
            **self.env_overrides,
        }
        log = open(self.data_dir / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pocketbizz",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            env=env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early; see {log.name}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@asynccontextmanager
async def acting_as(
    pool: asyncpg.Pool, role: str, user_id: str | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """A transaction switched to `role` with `user_id` as the JWT subject, as the server does.
    Rolled back at the end so tests leave nothing behind."""
    claims = {"role": role, **({"sub": str(user_id)} if user_id else {})}
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(
                "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
                role,
                json.dumps(claims),
            )
            yield conn
        finally:
            await tx.rollback()
