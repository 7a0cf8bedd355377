"""tests/payments' own fixtures (the processes are in payments.fixtures, shared with tests/app)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest


@pytest.fixture
async def db(owner_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """The owner's pool: what the tests check behind the API's back."""
    pool = await asyncpg.create_pool(owner_dsn, min_size=1, max_size=2)
    yield pool
    await pool.close()
