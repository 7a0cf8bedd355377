"""The database away: no connection can be opened (PostgREST's 503 PGRST000), or the request's
connection dies under it (503 PGRST001). Either is a connection error the background loops
already wait out, and never a rewrite of a request's own failures."""

from __future__ import annotations

import asyncio
import errno

import asyncpg
import orjson
import pytest
from harness import free_port

from pocketbizz.db import Database
from pocketbizz.db.database import SERVICE, DatabaseConnectionLost, DatabaseUnavailable
from pocketbizz.errors import (
    auth_response,
    from_postgres,
    postgrest_response,
    storage_response,
)


async def test_nothing_listening_is_pgrst000_in_every_shape() -> None:
    # min_size=0: the pool opens no connection until a request asks for one.
    database = Database(f"postgresql://nobody@127.0.0.1:{free_port()}/none", min_size=0)
    await database.open()
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            async with database.transaction(SERVICE):
                pytest.fail("a transaction began without a database")
        # The pool is usable again at once: the next request is refused the same way.
        with pytest.raises(DatabaseUnavailable):
            async with database.transaction(SERVICE):
                pytest.fail("a transaction began without a database")
        assert database.waiting == 0 and database.pool_stats() == (0, 0)
    finally:
        await database.close()

    error = caught.value
    assert isinstance(error, ConnectionError)  # what the background loops catch
    assert isinstance(error.__cause__, OSError)
    rest = postgrest_response(error)
    assert rest.status_code == 503
    assert orjson.loads(bytes(rest.body)) == {
        "code": "PGRST000",
        "details": None,
        "hint": None,
        "message": "Database connection error. Retrying the connection.",
    }
    storage = orjson.loads(bytes(storage_response(error).body))
    assert storage["statusCode"] == "503" and storage["message"] == error.message
    auth = auth_response(error)
    # GoTrue's name for any database failure; the 503 tells auth clients to retry.
    assert auth.status_code == 503
    assert orjson.loads(bytes(auth.body))["error_code"] == "unexpected_failure"


async def test_a_connection_killed_mid_request_is_pgrst001_and_the_pool_recovers(
    owner_dsn: str,
) -> None:
    database = Database(owner_dsn, min_size=1, max_size=1)
    await database.open()
    try:
        with pytest.raises(DatabaseConnectionLost) as caught:
            async with database.transaction(SERVICE) as conn:
                pid = await conn.fetchval("select pg_backend_pid()")
                killer = await asyncpg.connect(owner_dsn)
                try:
                    # With a timeout, it returns once the backend has exited.
                    assert await killer.fetchval("select pg_terminate_backend($1, 5000)", pid)
                finally:
                    await killer.close()
                await asyncio.sleep(0.2)  # for the client to read the closed socket
                await conn.fetchval("select 1")
        assert caught.value.status == 503 and caught.value.code == "PGRST001"
        assert isinstance(caught.value.__cause__, asyncpg.PostgresError | asyncpg.InterfaceError)
        # The one pooled connection was replaced: the next request runs.
        async with database.transaction(SERVICE) as conn:
            assert await conn.fetchval("select 1") == 1
    finally:
        await database.close()


async def test_a_request_failure_on_a_live_connection_is_left_alone(owner_dsn: str) -> None:
    database = Database(owner_dsn, min_size=1, max_size=1)
    await database.open()
    try:
        # An OSError (a full disk under Storage) or a database error while the connection is
        # fine belongs to the request: it passes through untouched.
        full = OSError(errno.ENOSPC, "No space left on device")
        with pytest.raises(OSError) as caught:
            async with database.transaction(SERVICE):
                raise full
        assert caught.value is full
        with pytest.raises(asyncpg.DivisionByZeroError):
            async with database.transaction(SERVICE) as conn:
                await conn.fetchval("select 1 / 0")
    finally:
        await database.close()


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (asyncpg.ConnectionFailureError("connection failure"), 503),  # 08006
        (asyncpg.TooManyConnectionsError("sorry, too many clients already"), 503),  # 53300
        (asyncpg.DiskFullError("could not extend file"), 503),  # 53100
        (asyncpg.ConfigurationLimitExceededError("too many locks"), 500),  # 53400
    ],
)
def test_connection_and_resource_sqlstates_map_as_postgrest(
    exc: asyncpg.PostgresError, status: int
) -> None:
    assert from_postgres(exc, anonymous=False).status == status
