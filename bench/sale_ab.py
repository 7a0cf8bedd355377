"""A writer (create_sale by default) before and after a change, measured side by side in one run.

On a machine shared with other work a per-sale figure moves by tens of percent from one
minute to the next, so two runs one after the other compare the load more than the code. This
starts two embedded PostgreSQL servers — one with the migrations and definitions of another
checkout (`before`, e.g. a `git worktree add /tmp/before <rev>`), one with this tree's
(`after`) — generates the same data in both, and then sells in alternating blocks (the order
swapped every round), so both see the same load. Per sale it reports the CPU time of the
backend serving the connection (from /proc) and the client's wall time, as in
bench/sale_profile.py: 3-line cash sales, one per transaction, as `authenticated`.

`python -m bench.sale_ab /tmp/before/src/pocketbizz/db [rounds] [block] [tenants] [after]
[--writer void_sale|record_purchase|adjust_stock]`

`after` (optional) is another checkout's `db` directory to measure instead of this tree's, so a
variant can be tried without putting its migration where other test runs would apply it.
`--writer` measures another writer the same way, one call per transaction: void_sale voids
3-line sales made just before (not counted), record_purchase buys 2 of a random product,
adjust_stock counts a random product at 500.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pgserver

from bench.data import generate
from bench.sale_profile import SALE_SQL, _cpu_seconds, _sales, _tenants
from pocketbizz.db import apply_migrations
from pocketbizz.db.migrate import load_definitions, load_migrations


async def _prepare(dsn: str, db_dir: Path | None, tenants: int) -> list[tuple[str, list[str]]]:
    await apply_migrations(
        dsn,
        authenticator_password="bench-authenticator",
        migrations=None if db_dir is None else load_migrations(db_dir / "migrations"),
        definitions=None if db_dir is None else load_definitions(db_dir / "definitions"),
    )
    await generate(dsn, tenants=tenants)
    return await _tenants(dsn, 20)


Tenants = list[tuple[str, list[str]]]
Measure = Callable[[asyncpg.Connection, Tenants, int], Awaitable[tuple[float, float]]]


async def _as_tenant(conn: asyncpg.Connection, claims: str) -> None:
    await conn.execute(
        "select set_config('role', 'authenticated', true), "
        "set_config('request.jwt.claims', $1, true)",
        claims,
    )


def _writer(name: str) -> Measure:
    """`count` calls of another writer, one per transaction: client wall µs and backend CPU µs
    per call, as `_sales` measures create_sale."""

    async def measure(
        conn: asyncpg.Connection, tenants: Tenants, count: int
    ) -> tuple[float, float]:
        calls: list[tuple[str, str, list[object]]] = []
        for n in range(count):
            claims, products = tenants[n % len(tenants)]
            if name == "void_sale":
                items = [{"product_id": p, "quantity": 1} for p in random.sample(products, 3)]
                async with conn.transaction():
                    await _as_tenant(conn, claims)
                    sale = json.loads(await conn.fetchval(SALE_SQL, json.dumps(items)))
                calls.append((claims, "select public.void_sale($1::uuid, 'bench')", [sale["id"]]))
            elif name == "record_purchase":
                sql = "select public.record_purchase($1::uuid, 2, 1.50)"
                calls.append((claims, sql, [random.choice(products)]))
            else:
                sql = "select public.adjust_stock($1::uuid, 500, 'count')"
                calls.append((claims, sql, [random.choice(products)]))
        pid = conn.get_server_pid()
        cpu0, t0 = _cpu_seconds(pid), time.perf_counter()
        for claims, sql, args in calls:
            async with conn.transaction():
                await _as_tenant(conn, claims)
                await conn.fetchval(sql, *args)
        wall = time.perf_counter() - t0
        return wall / count * 1e6, (_cpu_seconds(pid) - cpu0) / count * 1e6

    return measure


async def _run(
    dsns: dict[str, str],
    dirs: dict[str, Path | None],
    rounds: int,
    block: int,
    tenants: int,
    writer: str = "create_sale",
) -> list[str]:
    measure: Measure = _sales if writer == "create_sale" else _writer(writer)
    sellers = {name: await _prepare(dsn, dirs[name], tenants) for name, dsn in dsns.items()}
    conns = {name: await asyncpg.connect(dsn) for name, dsn in dsns.items()}
    cpu = dict.fromkeys(dsns, 0.0)
    wall = dict.fromkeys(dsns, 0.0)
    try:
        for name, conn in conns.items():
            await measure(conn, sellers[name], 200)  # warm the caches and the plans
            # The generated data has no sales: without statistics the foreign-key checks into
            # `sales` keep a plan made for an empty table (a scan growing with every sale).
            await conn.execute("analyze public.sales, public.sale_items, public.stock_movements")
            await measure(conn, sellers[name], 50)  # plans made again on the statistics
        for r in range(rounds):
            order = list(dsns) if r % 2 == 0 else list(reversed(dsns))
            for name in order:
                w, c = await measure(conns[name], sellers[name], block)
                wall[name] += w / rounds
                cpu[name] += c / rounds
    finally:
        for conn in conns.values():
            await conn.close()
    what = "create_sale (3 lines)" if writer == "create_sale" else writer
    lines = [
        f"{name:<7} {what}: backend CPU {cpu[name]:7.1f} µs/call, "
        f"client wall {wall[name]:7.1f} µs/call"
        for name in dsns
    ]
    lines.append(
        f"after/before: CPU {cpu['after'] / cpu['before']:6.1%}, "
        f"wall {wall['after'] / wall['before']:6.1%}  ({rounds} rounds × {block} calls each, "
        f"{tenants:,} tenants × 50 products)"
    )
    return lines


def main(
    before: Path,
    rounds: int = 10,
    block: int = 200,
    tenants: int = 2000,
    after: Path | None = None,
    writer: str = "create_sale",
) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="pb-ab-") as tmp:
        servers = {
            name: pgserver.get_server(Path(tmp) / name, cleanup_mode="delete")  # type: ignore[attr-defined]
            for name in ("before", "after")
        }
        try:
            dsns = {name: str(pg.get_uri()) for name, pg in servers.items()}
            dirs = {"before": before, "after": after}
            return asyncio.run(_run(dsns, dirs, rounds, block, tenants, writer))
        finally:
            for pg in servers.values():
                pg.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.sale_ab")
    parser.add_argument("before", type=Path)
    parser.add_argument("rounds", type=int, nargs="?", default=10)
    parser.add_argument("block", type=int, nargs="?", default=200)
    parser.add_argument("tenants", type=int, nargs="?", default=2000)
    parser.add_argument("after", type=Path, nargs="?", default=None)
    parser.add_argument(
        "--writer",
        choices=["create_sale", "void_sale", "record_purchase", "adjust_stock"],
        default="create_sale",
    )
    a = parser.parse_args()
    for line in main(a.before, a.rounds, a.block, a.tenants, a.after, a.writer):
        print(line, flush=True)
