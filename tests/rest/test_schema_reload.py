"""The schema cache under DDL (issue 13, REST item 10): a reload reads one snapshot, so a
table created or dropped between two of its queries cannot break it, and a change announced
while a reload runs is picked up by another reload."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx
from harness import ServerProcess
from rest.support import sign_up

from pocketbizz.rest.schema_cache import SchemaCache


async def test_load_survives_concurrent_ddl(owner_pool: asyncpg.Pool) -> None:
    stop = asyncio.Event()
    name = f"rest_churn_{uuid.uuid4().hex[:8]}"

    async def churn() -> int:
        rounds = 0
        async with owner_pool.acquire() as conn:
            while not stop.is_set():
                await conn.execute(f"create table public.{name} (a int primary key, b text)")
                await conn.execute(f"drop table public.{name}")
                rounds += 1
        return rounds

    churner = asyncio.create_task(churn())
    try:
        async with owner_pool.acquire() as conn:
            for _ in range(40):
                cache = await SchemaCache.load(conn)
                table = cache.tables.get(name)
                # In one snapshot the table is either absent or whole, never half-read.
                assert table is None or set(table.columns) == {"a", "b"}
                assert "products" in cache.tables
    finally:
        stop.set()
        rounds = await churner
    assert rounds > 0


def test_burst_of_ddl_is_all_seen(server: ServerProcess, owner_dsn: str) -> None:
    tenant = sign_up(server)
    headers = {"apikey": server.anon_key, "Authorization": f"Bearer {tenant.access_token}"}
    names = [f"rest_burst_{uuid.uuid4().hex[:8]}_{i}" for i in range(3)]

    async def create_spread_out() -> None:
        conn = await asyncpg.connect(owner_dsn)
        try:
            for name in names:
                await conn.execute(
                    f"create table public.{name} (a int); "
                    f"grant select on public.{name} to authenticated"
                )
                await asyncio.sleep(0.04)  # lands while the previous reload is running
        finally:
            await conn.close()

    asyncio.run(create_spread_out())
    try:
        deadline = time.monotonic() + 10
        for name in names:
            while httpx.get(f"{server.url}/rest/v1/{name}", headers=headers).status_code != 200:
                assert time.monotonic() < deadline, f"{name} never reached the schema cache"
                time.sleep(0.05)
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(owner_dsn)
            try:
                await conn.execute("".join(f"drop table public.{n};" for n in names))
            finally:
                await conn.close()

        asyncio.run(drop())
