"""Realtime test helpers: committed writes as a tenant, signed-in async clients, inboxes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import asyncpg
from harness import TEST_JWT_SECRET, ServerProcess, acting_as
from supabase import AsyncClient, acreate_client

from pocketbizz.gateway.tokens import encode_token


@asynccontextmanager
async def committed_as(pool: asyncpg.Pool, user_id: str) -> AsyncIterator[asyncpg.Connection]:
    """A transaction as `authenticated` with `user_id` as subject, COMMITTED at the end —
    the way the data API writes (the row change must really commit to be announced)."""
    claims = {"role": "authenticated", "sub": str(user_id)}
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "select set_config('role', 'authenticated', true),"
            " set_config('request.jwt.claims', $1, true)",
            json.dumps(claims),
        )
        yield conn


async def add_product(pool: asyncpg.Pool, user_id: str, **values: Any) -> str:
    row = {"sku": f"sku-{time.monotonic_ns()}", "name": "Nasi lemak", "sale_price": "5.50"}
    row.update(values)
    columns = ", ".join(row)
    params = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    async with committed_as(pool, user_id) as conn:
        product_id: str = str(
            await conn.fetchval(
                f"insert into public.products ({columns}) values ({params}) returning id",
                *[str(v) if not isinstance(v, str) else v for v in row.values()],
            )
        )
    return product_id


# The same role switch the server makes, in a rolled-back transaction.
reading_as = acting_as


def user_token(user_id: str, ttl: float) -> str:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": int(now + ttl),
    }
    return encode_token(claims, TEST_JWT_SECRET)


def socket_url(server: ServerProcess, apikey: str | None = None) -> str:
    key = server.anon_key if apikey is None else apikey
    return f"ws://127.0.0.1:{server.port}/realtime/v1/websocket?apikey={key}&vsn=1.0.0"


class Inbox:
    """Collects callback payloads and waits for the one a test expects."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()

    def __call__(self, payload: Any) -> None:
        self.items.append(payload)
        self._arrived.set()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 1.0
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            for item in self.items:
                if predicate(item):
                    return item
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"nothing matching arrived in {within}s; got {self.items}")
            self._arrived.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)


def change(item: dict[str, Any], type_: str, table: str, row_id: str) -> bool:
    data = item["data"]
    row = data.get("record") if type_ != "DELETE" else data.get("old_record")
    return (
        str(data["type"].value if hasattr(data["type"], "value") else data["type"]) == type_
        and data["table"] == table
        and row is not None
        and row.get("id") == row_id
    )


async def signed_in(server: ServerProcess, email: str, password: str) -> AsyncClient:
    client = await acreate_client(server.url, server.anon_key)
    res = await client.auth.sign_in_with_password({"email": email, "password": password})
    assert res.session is not None
    await client.realtime.set_auth(res.session.access_token)
    return client


@asynccontextmanager
async def registered(
    pool: asyncpg.Pool, owner_id: str, tables: list[str], *, ttl: float = 600
) -> AsyncIterator[str]:
    """Subscriptions of a pretend server process (a row per table in
    pb_internal.realtime_subscribers, written as the owner), removed at the end. A negative
    ttl writes rows that have already expired. Yields the pretend server's id."""
    server_id = str(uuid.uuid4())
    async with pool.acquire() as conn:
        await conn.execute(
            "insert into pb_internal.realtime_subscribers"
            " (business_owner_id, table_name, server_id, expires_at)"
            " select $1::uuid, t, $2::uuid, now() + make_interval(secs => $3::float8)"
            " from unnest($4::text[]) t",
            owner_id,
            server_id,
            ttl,
            tables,
        )
    try:
        yield server_id
    finally:
        async with pool.acquire() as conn:
            await conn.execute(
                "delete from pb_internal.realtime_subscribers where server_id = $1::uuid",
                server_id,
            )


async def registrations(pool: asyncpg.Pool, owner_id: str) -> dict[str, int]:
    """Live registrations of one tenant (or of the nil uuid): table → number of servers."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "select table_name, count(*) as n from pb_internal.realtime_subscribers"
            " where business_owner_id = $1::uuid and expires_at > now() group by table_name",
            owner_id,
        )
    return {r["table_name"]: r["n"] for r in rows}
