"""The request model of DESIGN.md §2: one transaction per request, role and claims local to it."""

from __future__ import annotations

import asyncpg
import pytest

from pocketbizz.db import Database, Identity


@pytest.fixture
async def db(owner_dsn: str) -> Database:
    database = Database(
        owner_dsn,
        user="authenticator",
        password="test-authenticator",
        min_size=1,
        max_size=1,  # one connection: every transaction below reuses it
        statement_timeouts={"anon": "3s", "authenticated": "8s", "service_role": "60s"},
    )
    await database.open()
    yield database  # type: ignore[misc]
    await database.close()


async def test_role_claims_and_timeout_live_only_inside_the_transaction(db: Database) -> None:
    user = Identity(
        "authenticated", {"sub": "11111111-1111-1111-1111-111111111111", "role": "authenticated"}
    )
    async with db.transaction(user) as conn:
        row = await conn.fetchrow(
            "select current_user, auth.uid()::text as uid, auth.role() as role, "
            "current_setting('statement_timeout') as timeout"
        )
        assert dict(row) == {
            "current_user": "authenticated",
            "uid": "11111111-1111-1111-1111-111111111111",
            "role": "authenticated",
            "timeout": "8s",
        }
    # The same pooled connection, next request: nothing of the previous one survives.
    async with db.pool.acquire() as conn:
        row = await conn.fetchrow(
            "select current_user, current_setting('request.jwt.claims', true) as claims,"
            " current_setting('statement_timeout') as t"
        )
        # After a commit a transaction-local setting reads '' (hence nullif in auth.uid()).
        assert dict(row) == {"current_user": "authenticator", "claims": "", "t": "0"}
    async with db.transaction(Identity("anon", {"role": "anon"})) as conn:
        assert await conn.fetchval("select current_setting('statement_timeout')") == "3s"
        assert await conn.fetchval("select auth.uid()") is None


async def test_failed_request_rolls_back_and_frees_the_connection(db: Database) -> None:
    service = Identity("service_role", {"role": "service_role"})
    with pytest.raises(asyncpg.DivisionByZeroError):
        async with db.transaction(service) as conn:
            await conn.execute("create temporary table scratch (x int)")
            await conn.execute("select 1 / 0")
    async with db.transaction(service) as conn:
        assert await conn.fetchval("select to_regclass('pg_temp.scratch')") is None
        assert await conn.fetchval("select current_setting('statement_timeout')") == "1min"


async def test_only_request_roles_can_be_assumed(db: Database) -> None:
    with pytest.raises(ValueError, match="refusing"):
        async with db.transaction(Identity("postgres", {})):
            pass
