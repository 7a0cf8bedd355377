"""A database with only what the shipped migrations create: other suites add tables, functions
and buckets to the session database, and the guide documents the product's schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from pocketbizz.db import apply_migrations


@pytest.fixture(scope="module")
async def shipped_schema(owner_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    name = f"pb_docs_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(owner_dsn)
    try:
        await admin.execute(f"create database {name}")
        dsn = urlunsplit(urlsplit(owner_dsn)._replace(path=f"/{name}"))
        await apply_migrations(dsn)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        try:
            yield pool
        finally:
            await pool.close()
            await admin.execute(f"drop database {name} with (force)")
    finally:
        await admin.close()
