"""Existing API tests re-run behind PgBouncer: here `server` is the server whose DATABASE_URL goes
through PgBouncer in transaction mode (tests/deploy/conftest.py), and `owner_dsn` its database,
so the root conftest's fixtures built on them (make_user, service_client, ...) follow."""

from __future__ import annotations

import pytest
from harness import ServerProcess


@pytest.fixture(scope="session")
def server(pooled_server: ServerProcess) -> ServerProcess:
    return pooled_server


@pytest.fixture(scope="session")
def owner_dsn(direct_dsn: str) -> str:
    return direct_dsn
