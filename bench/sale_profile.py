"""What one create_sale costs the database, and where: issue 12's per-function breakdown.

Starts its own embedded PostgreSQL, applies the migrations and definitions of the tree it is
run from, generates `tenants` × 50 products, then on one owner connection (superuser, so it
can turn on `track_functions`; each call switches to `authenticated` with a tenant's claims,
as the API does) times `create_sale` (3 lines, cash), one call per transaction:

- per sale, the CPU time of the backend serving the connection (from /proc: the figure that
  hardly moves when other work shares the machine), the client's wall time for the whole
  transaction (round trips included), and create_sale's own wall time as tracked;
- the same with create_sale owned by the migration owner (a superuser: no RLS inside), as a
  timing variant showing what RLS inside the definer costs (ownership is handed back after);
- every function and trigger function one sale runs, with calls per sale and µs per sale.

pg_stat_statements and auto_explain are not in the embedded build (no contrib), hence
function-level tracking. `python -m bench.sale_profile [sales] [tenants]`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import orjson

from bench.data import generate, selling_tenants, tenant_ids
from bench.stack import embedded_postgres

SALE_SQL = "select public.create_sale(items => $1::jsonb, payment_method => 'cash')"
CREATE_SALE = "public.create_sale(jsonb, text, uuid, numeric, text, text, text, uuid, timestamptz)"


async def _tenants(dsn: str, count: int) -> list[tuple[str, list[str]]]:
    owners = await tenant_ids(dsn, count)
    products = await selling_tenants(dsn, owners)
    return [(json.dumps({"sub": str(o), "role": "authenticated"}), products[o]) for o in owners]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (the backend serving the connection)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _sales(
    conn: asyncpg.Connection, tenants: list[tuple[str, list[str]]], count: int
) -> tuple[float, float]:
    """`count` sales, one per transaction, round-robin over the tenants: client wall µs and
    backend CPU µs per sale (CPU time hardly moves with the load others put on the machine;
    wall time does)."""
    bodies = [
        orjson.dumps(
            [
                {"product_id": p, "quantity": 1 + i}
                for i, p in enumerate(random.sample(tenants[n % len(tenants)][1], 3))
            ]
        ).decode()
        for n in range(count)
    ]
    pid = conn.get_server_pid()
    cpu0, t0 = _cpu_seconds(pid), time.perf_counter()
    for n, body in enumerate(bodies):
        async with conn.transaction():
            await conn.execute(
                "select set_config('role', 'authenticated', true), "
                "set_config('request.jwt.claims', $1, true)",
                tenants[n % len(tenants)][0],
            )
            await conn.fetchval(SALE_SQL, body)
    wall = time.perf_counter() - t0
    return wall / count * 1e6, (_cpu_seconds(pid) - cpu0) / count * 1e6


async def _functions(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    await conn.execute("select pg_stat_force_next_flush()")
    await conn.execute("select pg_stat_clear_snapshot()")
    return await conn.fetch(
        "select schemaname || '.' || funcname as name, calls, total_time, self_time "
        "from pg_stat_user_functions where calls > 0 order by self_time desc"
    )


async def _profile(
    conn: asyncpg.Connection, tenants: list[tuple[str, list[str]]], count: int, label: str
) -> list[str]:
    await _sales(conn, tenants, 200)  # warm the caches and the plans
    client_us, cpu_us = await _sales(conn, tenants, count)
    await conn.execute("set track_functions = 'all'")
    await conn.execute("select pg_stat_reset()")
    await _sales(conn, tenants, count)
    await conn.execute("set track_functions = 'none'")
    rows = await _functions(conn)
    total = next(r["total_time"] for r in rows if r["name"] == "public.create_sale")
    lines = [
        f"{label}: backend CPU {cpu_us:7.1f} µs/sale, client wall {client_us:7.1f} µs/sale"
        f" (one transaction, 3 round trips); create_sale {total * 1000 / count:7.1f} µs/call"
        " (wall, tracked run)",
        f"    {'function (self time)':<52}{'calls/sale':>11}{'µs/sale':>9}{'µs/call':>9}",
    ]
    for r in rows:
        lines.append(
            f"    {r['name']:<52}{r['calls'] / count:>11.2f}"
            f"{r['self_time'] * 1000 / count:>9.1f}{r['self_time'] * 1000 / r['calls']:>9.2f}"
        )
    return lines


async def _run(dsn: str, count: int, tenants: int) -> list[str]:
    timings = await generate(dsn, tenants=tenants)
    lines = [
        f"data: {tenants:,} tenants × 50 products — generated in "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    ]
    sellers = await _tenants(dsn, 20)
    conn = await asyncpg.connect(dsn)
    try:
        lines += await _profile(conn, sellers, count, "create_sale as pb_definer (RLS inside)")
        owner = await conn.fetchval("select current_user")
        await conn.execute(f"alter function {CREATE_SALE} owner to {owner}")
        try:
            lines += await _profile(conn, sellers, count, "create_sale as superuser (no RLS)")
        finally:
            await conn.execute(f"alter function {CREATE_SALE} owner to pb_definer")
    finally:
        await conn.close()
    return lines


def main(count: int = 2000, tenants: int = 2000) -> list[str]:
    with (
        tempfile.TemporaryDirectory(prefix="pb-profile-") as tmp,
        embedded_postgres(Path(tmp)) as dsn,
    ):
        return asyncio.run(_run(dsn, count, tenants))


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    for line in main(*args):
        print(line, flush=True)
