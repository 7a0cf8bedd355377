"""Helpers for the sales and stock tests: tenants made as the owner, calls made as the
tenant (role `authenticated`, its id as the JWT subject) in committed transactions, the way the
server runs them. JSON comes back with Decimal numbers so money is compared exactly."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg


def _decode(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def _encode(value: Any) -> str:
    """JSON with Decimals written as exact numbers (json would need floats)."""
    exact: dict[str, str] = {}

    def mark(v: Any) -> Any:
        if isinstance(v, Decimal):
            token = f"@@{len(exact)}@@"
            exact[f'"{token}"'] = str(v)
            return token
        if isinstance(v, dict):
            return {k: mark(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [mark(x) for x in v]
        return v

    text = json.dumps(mark(value), default=str)
    for token, number in exact.items():
        text = text.replace(token, number)
    return text


async def init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=_encode, decoder=_decode, schema="pg_catalog")


@asynccontextmanager
async def as_tenant(
    pool_or_conn: asyncpg.Pool | asyncpg.Connection, user_id: uuid.UUID
) -> AsyncIterator[asyncpg.Connection]:
    """One committed transaction as `authenticated` with `user_id` as subject."""
    claims = json.dumps({"sub": str(user_id), "role": "authenticated"})
    if isinstance(pool_or_conn, asyncpg.Connection):
        async with pool_or_conn.transaction():
            await _switch(pool_or_conn, claims)
            yield pool_or_conn
        return
    async with pool_or_conn.acquire() as conn, conn.transaction():
        await _switch(conn, claims)
        yield conn


async def _switch(conn: asyncpg.Connection, claims: str) -> None:
    await conn.execute(
        "select set_config('role', 'authenticated', true),"
        " set_config('request.jwt.claims', $1, true)",
        claims,
    )


async def call(
    pool_or_conn: asyncpg.Pool | asyncpg.Connection,
    user_id: uuid.UUID,
    function: str,
    **args: Any,
) -> Any:
    """`select public.<function>(name => value, ...)` as the tenant, committed."""
    names = ", ".join(f"{name} => ${i}" for i, name in enumerate(args, start=1))
    async with as_tenant(pool_or_conn, user_id) as conn:
        return await conn.fetchval(f"select public.{function}({names})", *args.values())


async def new_tenant(pool: asyncpg.Pool, **profile: Any) -> uuid.UUID:
    """A tenant as sign-up makes it (auth user → trigger → profile rows); optional business
    settings are written as the owner."""
    async with pool.acquire() as conn, conn.transaction():
        uid: uuid.UUID = await conn.fetchval(
            "insert into auth.users (email, encrypted_password) values ($1, 'x') returning id",
            f"shop-{uuid.uuid4().hex[:12]}@example.com",
        )
        for column, value in profile.items():
            await conn.execute(
                f"update business_profiles set {column} = $2 where business_owner_id = $1",
                uid,
                value,
            )
    return uid


async def new_product(
    pool: asyncpg.Pool,
    owner: uuid.UUID,
    *,
    price: str = "5.00",
    cost: str = "2.00",
    stock: str | int = 0,
    name: str | None = None,
    **columns: Any,
) -> uuid.UUID:
    """A product created by the tenant; opening stock arrives as a purchase (the ledger)."""
    name = name or f"Item {uuid.uuid4().hex[:6]}"
    cols = {"sku": name, "name": name, "sale_price": Decimal(price), "cost_price": Decimal(cost)}
    cols.update(columns)
    names = ", ".join(cols)
    params = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
    async with as_tenant(pool, owner) as conn:
        pid: uuid.UUID = await conn.fetchval(
            f"insert into products ({names}) values ({params}) returning id", *cols.values()
        )
    if Decimal(stock) > 0:
        await call(
            pool,
            owner,
            "record_purchase",
            product_id=pid,
            quantity=Decimal(stock),
            unit_cost=Decimal(cost),
        )
    return pid


def line(product: uuid.UUID, quantity: Any = 1, **extra: Any) -> dict[str, Any]:
    return {"product_id": str(product), "quantity": quantity, **extra}
