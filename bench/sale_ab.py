"""create_sale before and after a change, measured side by side in one run.

On a machine shared with other work a per-sale figure moves by tens of percent from one
minute to the next, so two runs one after the other compare the load more than the code. This
starts two embedded PostgreSQL servers — one with the migrations and definitions of another
checkout (`before`, e.g. a `git worktree add /tmp/before <rev>`), one with this tree's
(`after`) — generates the same data in both, and then sells in alternating blocks (the order
swapped every round), so both see the same load. Per sale it reports the CPU time of the
backend serving the connection (from /proc) and the client's wall time, as in
bench/sale_profile.py: 3-line cash sales, one per transaction, as `authenticated`.

`python -m bench.sale_ab /tmp/before/src/pocketbizz/db [rounds] [block] [tenants] [after]`

`after` (optional) is another checkout's `db` directory to measure instead of this tree's, so a
variant can be tried without putting its migration where other test runs would apply it.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import asyncpg
import pgserver

from bench.data import generate
from bench.sale_profile import _sales, _tenants
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


async def _run(
    dsns: dict[str, str], dirs: dict[str, Path | None], rounds: int, block: int, tenants: int
) -> list[str]:
    sellers = {name: await _prepare(dsn, dirs[name], tenants) for name, dsn in dsns.items()}
    conns = {name: await asyncpg.connect(dsn) for name, dsn in dsns.items()}
    cpu = dict.fromkeys(dsns, 0.0)
    wall = dict.fromkeys(dsns, 0.0)
    try:
        for name, conn in conns.items():
            await _sales(conn, sellers[name], 200)  # warm the caches and the plans
        for r in range(rounds):
            order = list(dsns) if r % 2 == 0 else list(reversed(dsns))
            for name in order:
                w, c = await _sales(conns[name], sellers[name], block)
                wall[name] += w / rounds
                cpu[name] += c / rounds
    finally:
        for conn in conns.values():
            await conn.close()
    lines = [
        f"{name:<7} create_sale (3 lines): backend CPU {cpu[name]:7.1f} µs/sale, "
        f"client wall {wall[name]:7.1f} µs/sale"
        for name in dsns
    ]
    lines.append(
        f"after/before: CPU {cpu['after'] / cpu['before']:6.1%}, "
        f"wall {wall['after'] / wall['before']:6.1%}  ({rounds} rounds × {block} sales each, "
        f"{tenants:,} tenants × 50 products)"
    )
    return lines


def main(
    before: Path,
    rounds: int = 10,
    block: int = 200,
    tenants: int = 2000,
    after: Path | None = None,
) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="pb-ab-") as tmp:
        servers = {
            name: pgserver.get_server(Path(tmp) / name, cleanup_mode="delete")  # type: ignore[attr-defined]
            for name in ("before", "after")
        }
        try:
            dsns = {name: str(pg.get_uri()) for name, pg in servers.items()}
            dirs = {"before": before, "after": after}
            return asyncio.run(_run(dsns, dirs, rounds, block, tenants))
        finally:
            for pg in servers.values():
                pg.cleanup()


if __name__ == "__main__":
    args = sys.argv[1:]
    rounds, block, tenants = [int(a) for a in args[1:4]] + [10, 200, 2000][len(args[1:4]) :]
    other = Path(args[4]) if len(args) > 4 else None
    for line in main(Path(args[0]), rounds, block, tenants, other):
        print(line, flush=True)
