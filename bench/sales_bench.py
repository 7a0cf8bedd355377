"""Issue 4's numbers: create_sale through the API against the same call made directly, and
analytics latency for a tenant with 50,000 sales over a year — on 10,000 tenants × 50 products.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from urllib.parse import urlparse

import asyncpg
import orjson

from bench.data import generate, selling_tenants, tenant_ids, user_token
from bench.loadgen import Connection, Request, run_closed_loop, summary
from bench.stack import AUTHENTICATOR_PASSWORD, stack

CLIENTS = 20
BIG_TENANT_SALES = 50_000
CONTEXT_SQL = (
    "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)"
)


def _sale_body(products: list[str]) -> dict[str, object]:
    lines = random.sample(products, 3)
    return {
        "items": [{"product_id": p, "quantity": 1 + i} for i, p in enumerate(lines)],
        "payment_method": "cash",
    }


async def _big_tenant(dsn: str, owner: uuid.UUID) -> float:
    """50,000 real create_sale calls for one tenant, then spread over the past year."""
    t0 = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        products = [
            str(r["id"])
            for r in await conn.fetch(
                "select id from public.products where business_owner_id = $1", owner
            )
        ]
        claims = json.dumps({"sub": str(owner), "role": "authenticated"})
        batch = 2_000
        for _ in range(BIG_TENANT_SALES // batch):
            bodies = [orjson.dumps(_sale_body(products)["items"]).decode() for _ in range(batch)]
            async with conn.transaction():
                await conn.execute(CONTEXT_SQL, claims)
                await conn.execute(
                    "select count(public.create_sale(items => b::jsonb, payment_method => 'cash'))"
                    " from unnest($1::text[]) b",
                    bodies,
                )
        # Re-date them over the past year in the order they were made, as a shop's sales are
        # written through the year (a random order would scatter each month over the table).
        await conn.execute(
            "update public.sales s set created_at = now() - interval '365 days'"
            " + o.n * interval '365 days' / $2 from (select id, row_number() over"
            " (order by sale_number) as n from public.sales where business_owner_id = $1) o"
            " where s.business_owner_id = $1 and s.id = o.id",
            owner,
            BIG_TENANT_SALES,
        )
        await conn.execute(
            "update public.sale_items i set created_at = s.created_at from public.sales s "
            "where s.business_owner_id = $1 and i.business_owner_id = s.business_owner_id "
            "and i.sale_id = s.id",
            owner,
        )
        # Steady state: autovacuum would have cleaned up after the bulk re-dating above.
        await conn.execute("vacuum analyze public.sales, public.sale_items")
    finally:
        await conn.close()
    return time.perf_counter() - t0


async def _run(url: str, anon_key: str, secret: str, dsn: str, duration: float) -> list[str]:
    timings = await generate(dsn)
    lines = [
        "data: 10,000 tenants × 50 products — generated in "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    ]
    owners = await tenant_ids(dsn, CLIENTS + 1)
    big, load_owners = owners[0], owners[1:]
    products = await selling_tenants(dsn, owners)
    parsed = urlparse(url)

    api_ops: list[Callable[[], Awaitable[int]]] = []
    for owner in load_owners:
        headers = {"apikey": anon_key, "Authorization": f"Bearer {user_token(secret, owner, 7200)}"}
        conn = Connection(parsed.hostname or "127.0.0.1", parsed.port or 80)

        async def api_op(
            conn: Connection = conn,
            headers: dict[str, str] = headers,
            mine: list[str] = products[owner],
        ) -> int:
            req = Request.json("POST", "/rest/v1/rpc/create_sale", _sale_body(mine), headers)
            status, _ = await conn.send(req)
            return status

        api_ops.append(api_op)

    pool = await asyncpg.create_pool(
        dsn, user="authenticator", password=AUTHENTICATOR_PASSWORD, min_size=20, max_size=20
    )
    direct_ops: list[Callable[[], Awaitable[int]]] = []
    for owner in load_owners:
        claims = json.dumps({"sub": str(owner), "role": "authenticated"})

        async def direct_op(claims: str = claims, mine: list[str] = products[owner]) -> int:
            body = _sale_body(mine)
            async with pool.acquire() as c, c.transaction():
                await c.execute(CONTEXT_SQL, claims)
                await c.fetchval(
                    "select public.create_sale(items => $1::jsonb, payment_method => $2)",
                    orjson.dumps(body["items"]).decode(),
                    body["payment_method"],
                )
            return 200

        direct_ops.append(direct_op)
    try:
        api = await run_closed_loop(
            f"API    create_sale (3 lines), {CLIENTS} clients", api_ops, duration
        )
        direct = await run_closed_loop(
            f"direct create_sale (3 lines), {CLIENTS} clients", direct_ops, duration
        )
        lines += [api.line(), direct.line(), f"       ratio API/direct {api.rps / direct.rps:6.1%}"]
    finally:
        await pool.close()

    seconds = await _big_tenant(dsn, big)
    lines.append(
        f"big tenant: {BIG_TENANT_SALES} sales by create_sale in {seconds:.1f} s, "
        "spread over 365 days"
    )
    headers = {"apikey": anon_key, "Authorization": f"Bearer {user_token(secret, big, 7200)}"}
    conn = Connection(parsed.hostname or "127.0.0.1", parsed.port or 80)
    today = date.today()
    for days in (30, 365):
        body = {
            "start_date": (today - timedelta(days=days - 1)).isoformat(),
            "end_date": today.isoformat(),
        }
        for route in ("/rest/v1/rpc/analytics", "/functions/v1/analytics"):
            latencies = []
            for _ in range(40):
                t0 = time.perf_counter()
                status, payload = await conn.send(Request.json("POST", route, body, headers))
                latencies.append((time.perf_counter() - t0) * 1000)
                assert status == 200, payload[:300]
            count = orjson.loads(payload)["totals"]["sales_count"]
            lines.append(
                f"analytics {days:>3} days via {route:<24} {summary(latencies)}"
                f"  (sales_count {count})"
            )
    return lines


def main(duration: float = 20.0, workers: int = 1) -> list[str]:
    with stack(PB_RATE_LIMIT_PER_MINUTE="1000000000", PB_WORKERS=str(workers)) as s:
        lines = asyncio.run(_run(s.server.url, s.server.anon_key, s.secret, s.owner_dsn, duration))
    return [f"server processes: {workers}", *lines]


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    for line in main(seconds, int(sys.argv[2]) if len(sys.argv) > 2 else 1):
        print(line, flush=True)
