"""Issue 3's numbers: the data API against the same statements run directly through asyncpg.

10,000 tenants × 50 products (+ customers); 50 concurrent clients spread over 200 tenants:
(a) list a tenant's 50 products ordered by name, (b) one product by id, (c) insert a product.
The direct floor runs the same SQL with the same role + claims setup through a pool as large
as the server's, on the same machine in the same run.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from urllib.parse import urlparse

import asyncpg
import psutil

from bench.data import generate, tenant_ids, user_token
from bench.loadgen import Connection, Request, Result, run_closed_loop
from bench.stack import AUTHENTICATOR_PASSWORD, stack

CLIENTS = 50
PRICE, COST = Decimal("4.50"), Decimal("2.10")
TENANTS_IN_LOAD = 200

LIST_SQL = (
    "select coalesce(json_agg(t), '[]')::text from (select * from public.products order by name) t"
)
ONE_SQL = (
    "select coalesce(json_agg(t), '[]')::text from (select * from public.products where id = $1) t"
)
INSERT_SQL = (
    "with ins as (insert into public.products (sku, name, sale_price, cost_price) "
    "values ($1, $2, $3, $4) returning *) "
    "select coalesce(json_agg(ins), '[]')::text from ins"
)
CONTEXT_SQL = (
    "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)"
)


async def _products(dsn: str, owners: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select business_owner_id, id from public.products "
            "where business_owner_id = any($1::uuid[])",
            owners,
        )
        await conn.execute(
            "update public.users set subscription_plan = 'pro' "
            "where business_owner_id = any($1::uuid[])",
            owners,
        )
    finally:
        await conn.close()
    by_owner: dict[uuid.UUID, list[uuid.UUID]] = {}
    for r in rows:
        by_owner.setdefault(r["business_owner_id"], []).append(r["id"])
    return by_owner


def _api_ops(
    url: str,
    anon_key: str,
    secret: str,
    owners: list[uuid.UUID],
    products: dict[uuid.UUID, list[uuid.UUID]],
) -> dict[str, list[Callable[[], Awaitable[int]]]]:
    parsed = urlparse(url)
    ops: dict[str, list[Callable[[], Awaitable[int]]]] = {"list": [], "one": [], "insert": []}
    for i in range(CLIENTS):
        owner = owners[i % len(owners)]
        headers = {
            "apikey": anon_key,
            "Authorization": f"Bearer {user_token(secret, owner, 7200)}",
            "Accept": "*/*",
            "Accept-Profile": "public",
            "Content-Profile": "public",
        }
        conn = Connection(parsed.hostname or "127.0.0.1", parsed.port or 80)
        mine = products[owner]

        def list_op(conn: Connection = conn, headers: dict[str, str] = headers) -> Awaitable[int]:
            return _status(
                conn.send(Request("GET", "/rest/v1/products?select=*&order=name.asc", headers))
            )

        def one_op(
            conn: Connection = conn, headers: dict[str, str] = headers, mine: list[uuid.UUID] = mine
        ) -> Awaitable[int]:
            pid = random.choice(mine)
            return _status(
                conn.send(Request("GET", f"/rest/v1/products?select=*&id=eq.{pid}", headers))
            )

        def insert_op(conn: Connection = conn, headers: dict[str, str] = headers) -> Awaitable[int]:
            body = {
                "sku": uuid.uuid4().hex[:16],
                "name": "Bench kuih",
                "sale_price": "4.50",
                "cost_price": "2.10",
            }
            req = Request.json(
                "POST", "/rest/v1/products", body, {**headers, "Prefer": "return=representation"}
            )
            return _status(conn.send(req))

        ops["list"].append(list_op)
        ops["one"].append(one_op)
        ops["insert"].append(insert_op)
    return ops


async def _status(pending: Awaitable[tuple[int, bytes]]) -> int:
    status, _ = await pending
    return status


def _direct_ops(
    pool: asyncpg.Pool, owners: list[uuid.UUID], products: dict[uuid.UUID, list[uuid.UUID]]
) -> dict[str, list[Callable[[], Awaitable[int]]]]:
    ops: dict[str, list[Callable[[], Awaitable[int]]]] = {"list": [], "one": [], "insert": []}
    for i in range(CLIENTS):
        owner = owners[i % len(owners)]
        claims = json.dumps({"sub": str(owner), "role": "authenticated"})
        mine = products[owner]

        async def run(sql: str, *args: object, claims: str = claims) -> int:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(CONTEXT_SQL, claims)
                await conn.fetchval(sql, *args)
            return 200

        async def list_op(run: Callable[..., Awaitable[int]] = run) -> int:
            return await run(LIST_SQL)

        async def one_op(
            run: Callable[..., Awaitable[int]] = run, mine: list[uuid.UUID] = mine
        ) -> int:
            return await run(ONE_SQL, random.choice(mine))

        async def insert_op(run: Callable[..., Awaitable[int]] = run) -> int:
            return await run(INSERT_SQL, uuid.uuid4().hex[:16], "Bench kuih", PRICE, COST)

        ops["list"].append(list_op)
        ops["one"].append(one_op)
        ops["insert"].append(insert_op)
    return ops


async def _run(
    url: str, anon_key: str, secret: str, dsn: str, duration: float, server_pid: int | None
) -> list[str]:
    timings = await generate(dsn)
    lines = [
        "data: 10,000 tenants × 50 products, 5 customers each — generated in "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    ]
    owners = await tenant_ids(dsn, TENANTS_IN_LOAD)
    products = await _products(dsn, owners)
    pool = await asyncpg.create_pool(
        dsn, user="authenticator", password=AUTHENTICATOR_PASSWORD, min_size=20, max_size=20
    )
    api = _api_ops(url, anon_key, secret, owners, products)
    direct = _direct_ops(pool, owners, products)
    labels = {
        "list": "(a) list 50 products by name",
        "one": "(b) one product by id",
        "insert": "(c) insert one product",
    }
    try:
        for key, label in labels.items():
            cpu_before = _cpu_seconds(server_pid)
            through_api: Result = await run_closed_loop(f"API    {label}", api[key], duration)
            # The server's CPU time per request moves much less with the machine's load than
            # its rate does: the figure to compare between two versions of the server.
            cpu = (_cpu_seconds(server_pid) - cpu_before) / max(1, through_api.requests) * 1e6
            floor: Result = await run_closed_loop(f"direct {label}", direct[key], duration)
            lines += [
                f"{through_api.line()}  server CPU {cpu:.0f} µs/request",
                floor.line(),
                f"       ratio API/direct {through_api.rps / floor.rps:6.1%}",
            ]
    finally:
        await pool.close()
    return lines


def _cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    # With several workers, the server's processes are the serving process's children.
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def main(duration: float = 20.0, workers: int = 1) -> list[str]:
    env = {"PB_RATE_LIMIT_PER_MINUTE": "1000000000", "PB_WORKERS": str(workers)}
    with stack(**env) as s:
        pid = s.server.proc.pid if s.server.proc else None
        lines = asyncio.run(
            _run(s.server.url, s.server.anon_key, s.secret, s.owner_dsn, duration, pid)
        )
    return [f"server processes: {workers}", *lines]


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    for line in main(seconds, int(sys.argv[2]) if len(sys.argv) > 2 else 1):
        print(line, flush=True)
