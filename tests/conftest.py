"""Shared fixtures: one embedded PostgreSQL and one server per test session."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pgserver
import pytest
from harness import ServerProcess, acting_as  # noqa: F401  (re-exported for tests)
from supabase import Client, create_client

from pocketbizz.db import apply_migrations


@pytest.fixture(scope="session")
def owner_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pgdata = tmp_path_factory.mktemp("pg")
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    dsn = str(server.get_uri())
    asyncio.run(apply_migrations(dsn, authenticator_password="test-authenticator"))
    yield dsn
    server.cleanup()


@pytest.fixture(scope="session")
def server(owner_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        owner_dsn,
        tmp_path_factory.mktemp("data"),
        env_overrides={"PB_AUTHENTICATOR_PASSWORD": "test-authenticator"},
    )
    proc.start()
    yield proc
    proc.stop()


@dataclass
class TestUser:
    client: Client
    id: str
    email: str
    password: str
    access_token: str


@pytest.fixture
def anon_client(server: ServerProcess) -> Client:
    return create_client(server.url, server.anon_key)


@pytest.fixture
def service_client(server: ServerProcess) -> Client:
    return create_client(server.url, server.service_key)


@pytest.fixture
def make_user(server: ServerProcess) -> Callable[..., TestUser]:
    """Sign up a fresh tenant through the official client; returns its signed-in client."""

    def factory(**metadata: Any) -> TestUser:
        client = create_client(server.url, server.anon_key)
        email = f"user-{uuid.uuid4().hex[:12]}@example.com"
        password = "correct horse battery"
        res = client.auth.sign_up(
            {"email": email, "password": password, "options": {"data": metadata}}
        )
        assert res.user is not None and res.session is not None
        return TestUser(client, res.user.id, email, password, res.session.access_token)

    return factory


@pytest.fixture
async def owner_pool(owner_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool logged in as the owner — for setup and for acting as a role, never for checks
    that policies hold (those switch role first, see `acting_as`)."""
    pool = await asyncpg.create_pool(owner_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def tmp_data_dir(tmp_path: Path) -> Path:
    return tmp_path
