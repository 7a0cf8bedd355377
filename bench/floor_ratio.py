"""The request path against its floor, quickly: `GET /rest/v1/products?id=eq.X` and
`POST /rest/v1/rpc/create_sale` through `pocketbizz serve` and through bench/floor_app.py,
in alternating phases on one database, with the ratio of each round.

Issue 12's "GET by id through the API ≥ 90% of the minimal floor app" without the rest of the
capacity suite (no 50,000-sale tenant, no analytics). `--tree NAME=PATH` also serves the source
tree at PATH (its `src` directory on PYTHONPATH; same database, so same schema) in the same
phases, for an A/B of two versions of the request path:

    python -m bench.floor_ratio [--seconds 8] [--rounds 3] [--tree base=/tmp/old-checkout]

On a shared machine only the ratios of one round mean much: the phases of a round are back to
back, and the rounds show how far the load around them moved the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlparse

import psutil

from bench.data import generate, selling_tenants, tenant_ids, user_token
from bench.loadgen import Connection, Request, Result, run_closed_loop
from bench.stack import AUTHENTICATOR_PASSWORD, stack, start_floor_app

CLIENTS = 20
TENANTS = 2_000
SELLING_TENANTS = 20

Op = Callable[[], Awaitable[int]]


async def _tenants(dsn: str) -> list[tuple[uuid.UUID, list[str]]]:
    owners = await tenant_ids(dsn, SELLING_TENANTS)
    products = await selling_tenants(dsn, owners)
    return list(products.items())


def _sale_items(products: list[str]) -> list[dict[str, object]]:
    return [{"product_id": p, "quantity": 1} for p in random.sample(products, 3)]


def _ops(
    url: str, anon_key: str, secret: str, tenants: list[tuple[uuid.UUID, list[str]]]
) -> dict[str, list[Op]]:
    parsed = urlparse(url)
    ops: dict[str, list[Op]] = {"one": [], "sale": []}
    for i in range(CLIENTS):
        owner, products = tenants[i % len(tenants)]
        token = user_token(secret, owner, 7200)
        headers = {"apikey": anon_key, "Authorization": f"Bearer {token}", "Accept": "*/*"}
        conn = Connection(parsed.hostname or "127.0.0.1", parsed.port or 80)

        async def one(
            conn: Connection = conn, h: dict[str, str] = headers, p: list[str] = products
        ) -> int:
            status, _ = await conn.send(
                Request("GET", f"/rest/v1/products?id=eq.{random.choice(p)}", h)
            )
            return status

        async def sale(
            conn: Connection = conn, h: dict[str, str] = headers, p: list[str] = products
        ) -> int:
            body = {"items": _sale_items(p), "payment_method": "card"}
            status, _ = await conn.send(Request.json("POST", "/rest/v1/rpc/create_sale", body, h))
            return status

        ops["one"].append(one)
        ops["sale"].append(sale)
    return ops


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def _measure(
    targets: dict[str, dict[str, list[Op]]],
    pids: dict[str, int],
    seconds: float,
    rounds: int,
    kinds: list[str],
) -> list[str]:
    """Each round runs every target back to back; besides req/s it reports the server
    process's CPU time per request, which the load around the run moves much less."""
    for ops in targets.values():  # warm every path: statement caches, pools
        for kind in kinds:
            await run_closed_loop("warm-up", ops[kind], 2)
    rates: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    for n in range(1, rounds + 1):
        for kind in kinds:
            results: dict[str, Result] = {}
            # Alternate the order per round so no target always runs right after another.
            order = list(targets) if n % 2 else list(reversed(targets))
            for name in order:
                before = _cpu_seconds(pids[name])
                result = await run_closed_loop(
                    f"{name:<6} {kind} #{n}", targets[name][kind], seconds
                )
                per_request = (_cpu_seconds(pids[name]) - before) / max(1, result.requests) * 1e6
                results[name] = result
                print(f"{result.line()}  cpu {per_request:6.0f} µs/req", flush=True)
                rates.setdefault((name, kind), []).append(result.rps)
                cpu.setdefault((name, kind), []).append(per_request)
            for name, result in results.items():
                if name != "floor":
                    print(
                        f"       {name}/floor {kind} #{n}: {result.rps / results['floor'].rps:6.1%}",
                        flush=True,
                    )
    lines: list[str] = []
    for (name, kind), values in rates.items():
        lines.append(
            f"{name:<6} {kind}: server CPU per request median {statistics.median(cpu[(name, kind)]):5.0f} µs "
            f"(rounds: {', '.join(f'{c:.0f}' for c in cpu[(name, kind)])})"
        )
        if name != "floor":
            ratios = [a / f for a, f in zip(values, rates[("floor", kind)], strict=True)]
            lines.append(
                f"{name:<6} {kind}: req/s as a share of the floor's, median {statistics.median(ratios):6.1%} "
                f"(rounds: {', '.join(f'{r:.1%}' for r in ratios)})"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--tree", action="append", default=[], help="NAME=PATH of another source tree"
    )
    parser.add_argument("--kinds", default="one,sale", help="one, sale or both")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    from harness import ServerProcess  # tests/ is on the path once bench.stack is imported

    env = {"PB_RATE_LIMIT_PER_MINUTE": "1000000000", "PB_WORKERS": "1"}
    with stack(**env) as s:
        asyncio.run(generate(s.owner_dsn, tenants=TENANTS))
        tenants = asyncio.run(_tenants(s.owner_dsn))
        others: dict[str, ServerProcess] = {}
        for spec in args.tree:
            name, _, path = spec.partition("=")
            server = ServerProcess(
                s.owner_dsn,
                s.workdir,
                env_overrides={
                    "PB_AUTHENTICATOR_PASSWORD": AUTHENTICATOR_PASSWORD,
                    "PB_LOG_LEVEL": "warning",
                    "PB_POOL_MAX_SIZE": "20",
                    "PYTHONPATH": os.pathsep.join([str(Path(path) / "src"), path]),
                    **env,
                },
            )
            server.start()
            others[name] = server
        floor, floor_url = start_floor_app(s.owner_dsn, s.secret, s.workdir)
        try:
            targets = {"api": _ops(s.server.url, s.server.anon_key, s.secret, tenants)}
            for name, server in others.items():
                targets[name] = _ops(server.url, server.anon_key, s.secret, tenants)
            targets["floor"] = _ops(floor_url, s.server.anon_key, s.secret, tenants)
            servers = {"api": s.server, **others}
            pids = {name: server.proc.pid for name, server in servers.items() if server.proc}
            pids["floor"] = floor.pid
            print("server pids: " + ", ".join(f"{n} {p}" for n, p in pids.items()), flush=True)
            for line in asyncio.run(_measure(targets, pids, args.seconds, args.rounds, kinds)):
                print(line, flush=True)
        finally:
            floor.terminate()
            floor.wait(10)
            for server in others.values():
                server.stop()


if __name__ == "__main__":
    main()
