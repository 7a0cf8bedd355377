"""Fixtures for the sales and stock tests (helpers live in domain/helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from domain.helpers import init_connection


@pytest.fixture
async def db(owner_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """Owner connections with Decimal JSON; room for 20 concurrent callers."""
    pool = await asyncpg.create_pool(owner_dsn, min_size=1, max_size=24, init=init_connection)
    yield pool
    await pool.close()
