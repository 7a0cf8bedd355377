"""What PgBouncer in transaction mode costs: the same requests through `pocketbizz serve` with
DATABASE_URL straight to PostgreSQL (statement cache on, as by default), straight to PostgreSQL
with the statement cache off, and through PgBouncer (cache off, DATABASE_DIRECT_URL for the
sessions) — one embedded PostgreSQL with 10,000 tenants × 50 products, one server process at a
time, in one run. Prints numbers only (a benchmark, not a test):

    .venv/bin/python tests/deploy/bench_pgbouncer.py [SECONDS]
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

import pgserver  # noqa: E402
from deploy.bouncer import PgBouncer  # noqa: E402
from harness import TEST_JWT_SECRET, ServerProcess, free_port  # noqa: E402

from bench.data import generate, selling_tenants, tenant_ids, user_token  # noqa: E402
from bench.loadgen import Connection, Request, run_closed_loop  # noqa: E402
from pocketbizz.db import apply_migrations  # noqa: E402

PASSWORD = "test-authenticator"  # the one deploy.bouncer's auth file holds
READ_CLIENTS, SALE_CLIENTS = 50, 20


async def _prepare(dsn: str) -> dict[uuid.UUID, list[str]]:
    await generate(dsn)
    return await selling_tenants(dsn, await tenant_ids(dsn, READ_CLIENTS))


def _ops(
    server: ServerProcess, products: dict[uuid.UUID, list[str]], clients: int, sale: bool
) -> list[Callable[[], Awaitable[int]]]:
    ops = []
    for owner in list(products)[:clients]:
        headers = {
            "apikey": server.anon_key,
            "Authorization": f"Bearer {user_token(TEST_JWT_SECRET, owner, 7200)}",
        }
        conn = Connection("127.0.0.1", server.port)

        async def op(
            conn: Connection = conn,
            headers: dict[str, str] = headers,
            mine: list[str] = products[owner],
        ) -> int:
            if sale:
                lines = random.sample(mine, 3)
                body = {"items": [{"product_id": p, "quantity": 1} for p in lines]}
                req = Request.json("POST", "/rest/v1/rpc/create_sale", body, headers)
            else:
                req = Request(
                    "GET", f"/rest/v1/products?select=*&id=eq.{random.choice(mine)}", headers
                )
            status, _ = await conn.send(req)
            return status

        ops.append(op)
    return ops


async def _measure(
    server: ServerProcess, products: dict[uuid.UUID, list[str]], label: str, seconds: float
) -> list[str]:
    lines = []
    for name, clients, sale in (
        ("one product by id", READ_CLIENTS, False),
        ("create_sale (3 lines)", SALE_CLIENTS, True),
    ):
        ops = _ops(server, products, clients, sale)
        await run_closed_loop("warm-up", ops, 2)
        result = await run_closed_loop(f"{label:<28} {name}, {clients} clients", ops, seconds)
        lines.append(result.line())
    return lines


def main(seconds: float) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="pb-bench-pgbouncer-"))
    pg = pgserver.get_server(workdir / "pg", cleanup_mode="delete")  # type: ignore[attr-defined]
    dsn = str(pg.get_uri())
    bouncer = None
    try:
        asyncio.run(apply_migrations(dsn, authenticator_password=PASSWORD))
        products = asyncio.run(_prepare(dsn))
        parts = urlsplit(dsn)
        bouncer_dir = Path(tempfile.mkdtemp(prefix="pb-pgbouncer-"))
        bouncer = PgBouncer(
            parse_qs(parts.query)["host"][0],
            "postgres",
            free_port(),
            bouncer_dir,
            server_sessions=20,
        )
        bouncer.start()
        setups = [
            ("direct, statement cache on", dsn, {}),
            ("direct, statement cache off", dsn, {"PB_STATEMENT_CACHE_SIZE": "0"}),
            (
                "PgBouncer (transaction)",
                bouncer.url(),
                {"PB_STATEMENT_CACHE_SIZE": "0", "DATABASE_DIRECT_URL": dsn},
            ),
        ]
        print(
            "10,000 tenants × 50 products; 1 server process, PB_POOL_MAX_SIZE=20; PgBouncer default_pool_size=20",
            flush=True,
        )
        for label, url, env in setups:
            server = ServerProcess(
                url,
                workdir / label.split(",")[0].split()[0].lower(),
                env_overrides={
                    "PB_AUTHENTICATOR_PASSWORD": PASSWORD,
                    "PB_POOL_MAX_SIZE": "20",
                    "PB_RATE_LIMIT_PER_MINUTE": "1000000000",
                    "PB_JOBS_IN_PROCESS": "false",
                    **env,
                },
            )
            server.data_dir.mkdir(exist_ok=True)
            server.start(timeout=60)
            try:
                for line in asyncio.run(_measure(server, products, label, seconds)):
                    print(line, flush=True)
            finally:
                server.stop()
    finally:
        if bouncer is not None:
            bouncer.stop()
            shutil.rmtree(bouncer.workdir, ignore_errors=True)
        pg.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0)
