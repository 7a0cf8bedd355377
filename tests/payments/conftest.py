"""tests/payments' own fixtures (the processes are in payments.fixtures, shared with tests/app)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from payments.fake_toyyibpay import FakeToyyibPay
from payments.fixtures import running_fake


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeToyyibPay]:
    """The fake ToyyibPay, one per test module (its bills and requests are that module's)."""
    with running_fake() as server:
        yield server


@pytest.fixture
async def db(owner_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """The owner's pool: what the tests check behind the API's back."""
    pool = await asyncpg.create_pool(owner_dsn, min_size=1, max_size=2)
    yield pool
    await pool.close()
