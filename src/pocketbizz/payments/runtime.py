"""The payments' transactions: settlement and the return page act for a tenant named by the
provider's evidence, not by a signed-in user, so they run on the request pool (login
`authenticator`) as `pb_payments`, whose only rights are EXECUTE on the pb_internal functions
of definitions/payments/ (migration 0022). No pool of the server logs in as the owner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import asyncpg

from pocketbizz.db import Database
from pocketbizz.db.database import PoolTimeout

ROLE = "pb_payments"

# Like Database.transaction: the role and empty claims are transaction-local, so nothing
# outlives the transaction on the pooled connection.
_BEGIN = (
    f"select set_config('role', '{ROLE}', true), set_config('request.jwt.claims', '', true), "
    "set_config('statement_timeout', '8s', true)"
)


@asynccontextmanager
async def payments_transaction(db: Database) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection, one transaction, as pb_payments."""
    try:
        proxy = await db.pool.acquire(timeout=db.acquisition_timeout)
    except TimeoutError:
        raise PoolTimeout() from None
    try:
        conn = cast(asyncpg.Connection, proxy)
        async with conn.transaction():
            await conn.execute(_BEGIN)
            yield conn
    finally:
        await db.pool.release(proxy)
