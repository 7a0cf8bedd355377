"""Issue 12's "done when" set, in one run on one database:

1. the direct driver loop (same role + claims + statement_timeout per transaction as the
   server, one round trip for BEGIN and the settings) for the one-product read by id and for
   create_sale (3 lines, card), and create_sale's share of the read rate — as two phases,
   and again in alternating blocks (so both see the same load when it changes);
2. create_sale through the API against its direct rate;
3. GET by id and create_sale through the API against the floor app (bench/floor_app.py);
4. analytics 30-day p95 for a tenant with many sales among many tenants: quiet, while 20
   clients sell through the API, and right after — with EXPLAIN (ANALYZE, BUFFERS) of its
   two queries and the sales tables' vacuum state at each moment (issue 12 item 3); the direct
   call also with the day cache off (every day computed live). While selling, a GET of one
   product by id is timed in turn with each analytics call: the latency of the cheapest
   request through the same server under the same load (the API's floor at that moment). The
   selling phase runs twice: on the one-process server of the comparisons above, and on a
   second server started with `--workers 2` (one process per core, 10 connections each).

Every figure that is compared is a ratio of two phases of the same run: other processes share
the machine's CPU, so absolute rates move between runs.

    python -m bench.capacity_bench [SECONDS] [TENANTS] [BIG_TENANT_SALES] [--analytics-only]

`--analytics-only` skips the rate comparisons (items 1-3) and runs only the analytics phases.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from urllib.parse import urlparse

import asyncpg
import jwt
import orjson

from bench.data import generate, selling_tenants, tenant_ids, user_token
from bench.loadgen import Connection, Request, Result, run_closed_loop, summary
from bench.stack import AUTHENTICATOR_PASSWORD, Stack, stack, start_floor_app

CLIENTS = 20
ONE_SQL = (
    "select coalesce(json_agg(t), '[]')::text from (select * from public.products where id = $1) t"
)
SALE_SQL = (
    "select public.create_sale(items => $1::jsonb, payment_method => $2, channel => $3)::text"
)
Op = Callable[[], Awaitable[int]]


def _begin(claims: dict[str, object]) -> str:
    """database.py's _begin_sql for an authenticated request (claims quoted as a literal)."""
    literal = "'" + orjson.dumps(claims).decode().replace("'", "''") + "'"
    return (
        "begin; select set_config('role', 'authenticated', true), "
        f"set_config('request.jwt.claims', {literal}, true), "
        "set_config('statement_timeout', '8s', true)"
    )


def _sale_items(products: list[str]) -> list[dict[str, object]]:
    return [{"product_id": p, "quantity": 1 + i} for i, p in enumerate(random.sample(products, 3))]


class _Tenant:
    def __init__(self, owner: uuid.UUID, secret: str, products: list[str]) -> None:
        self.owner = owner
        self.token = user_token(secret, owner, 7200)
        self.claims: dict[str, object] = jwt.decode(
            self.token, secret, algorithms=["HS256"], audience="authenticated"
        )
        self.products = products


def direct_runner(pool: asyncpg.Pool, t: _Tenant) -> Callable[..., Awaitable[int]]:
    """One statement in one transaction as the tenant, with the server's transaction model."""
    begin = _begin(t.claims)

    async def run(sql: str, *args: object) -> int:
        async with pool.acquire() as conn:
            await conn.execute(begin)
            await conn.fetchval(sql, *args)
            await conn.execute("commit")
        return 200

    return run


def _direct_ops(pool: asyncpg.Pool, tenants: list[_Tenant]) -> dict[str, list[Op]]:
    ops: dict[str, list[Op]] = {"one": [], "sale": []}
    for t in tenants:
        run = direct_runner(pool, t)

        async def one(run: Callable[..., Awaitable[int]] = run, t: _Tenant = t) -> int:
            return await run(ONE_SQL, uuid.UUID(random.choice(t.products)))

        async def sale(run: Callable[..., Awaitable[int]] = run, t: _Tenant = t) -> int:
            items = orjson.dumps(_sale_items(t.products)).decode()
            return await run(SALE_SQL, items, "card", "walk-in")

        ops["one"].append(one)
        ops["sale"].append(sale)
    return ops


def _http_ops(url: str, anon_key: str, tenants: list[_Tenant]) -> dict[str, list[Op]]:
    """The same two requests for PocketBizz and for the floor app (which ignores apikey)."""
    parsed = urlparse(url)
    ops: dict[str, list[Op]] = {"one": [], "sale": []}
    for t in tenants:
        headers = {"apikey": anon_key, "Authorization": f"Bearer {t.token}", "Accept": "*/*"}
        conn = Connection(parsed.hostname or "127.0.0.1", parsed.port or 80)

        async def one(conn: Connection = conn, h: dict[str, str] = headers, t: _Tenant = t) -> int:
            pid = random.choice(t.products)
            status, _ = await conn.send(Request("GET", f"/rest/v1/products?id=eq.{pid}", h))
            return status

        async def sale(conn: Connection = conn, h: dict[str, str] = headers, t: _Tenant = t) -> int:
            body = {"items": _sale_items(t.products), "payment_method": "card"}
            status, _ = await conn.send(Request.json("POST", "/rest/v1/rpc/create_sale", body, h))
            return status

        ops["one"].append(one)
        ops["sale"].append(sale)
    return ops


async def _big_tenant(dsn: str, owner: uuid.UUID, sales: int) -> float:
    """Real create_sale calls for one tenant, re-dated over the past year in their order."""
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
        done = 0
        while done < sales:
            batch = min(2_000, sales - done)
            bodies = [orjson.dumps(_sale_items(products)).decode() for _ in range(batch)]
            async with conn.transaction():
                await conn.execute(
                    "select set_config('role', 'authenticated', true), "
                    "set_config('request.jwt.claims', $1, true)",
                    claims,
                )
                await conn.execute(
                    "select count(public.create_sale(items => b::jsonb, payment_method => 'card'))"
                    " from unnest($1::text[]) b",
                    bodies,
                )
            done += batch
        await conn.execute(
            "update public.sales s set created_at = now() - interval '365 days'"
            " + o.n * interval '365 days' / $2 from (select id, row_number() over"
            " (order by sale_number) as n from public.sales where business_owner_id = $1) o"
            " where s.business_owner_id = $1 and s.id = o.id",
            owner,
            sales,
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


def _analytics_body(days: int) -> dict[str, str]:
    today = date.today()
    return {
        "start_date": (today - timedelta(days=days - 1)).isoformat(),
        "end_date": today.isoformat(),
    }


async def _analytics_latencies(conn: Connection, headers: dict[str, str], n: int) -> list[float]:
    latencies = []
    for _ in range(n):
        t0 = time.perf_counter()
        status, payload = await conn.send(
            Request.json("POST", "/rest/v1/rpc/analytics", _analytics_body(30), headers)
        )
        latencies.append((time.perf_counter() - t0) * 1000)
        assert status == 200, payload[:300]
    return latencies


async def _direct_analytics(conn: asyncpg.Connection, owner: uuid.UUID, cache: str = "on") -> float:
    """One analytics() call on a direct connection: the database's share of the latency.
    `cache="off"` computes every day live (pb.analytics_cache, migration 0023): the same call
    without the day cache, for a comparison in the same run."""
    t0 = time.perf_counter()
    async with conn.transaction():
        await conn.execute(
            "select set_config('role', 'authenticated', true), "
            "set_config('request.jwt.claims', $1, true), "
            "set_config('pb.analytics_cache', $2, true)",
            json.dumps({"sub": str(owner), "role": "authenticated"}),
            cache,
        )
        body = _analytics_body(30)
        await conn.fetchval(
            "select public.analytics($1::date, $2::date)::text",
            date.fromisoformat(body["start_date"]),
            date.fromisoformat(body["end_date"]),
        )
    return (time.perf_counter() - t0) * 1000


async def _probe(conn: Connection, headers: dict[str, str], product: uuid.UUID) -> float:
    """One GET of a product by id: the cheapest request, timed like the analytics call."""
    t0 = time.perf_counter()
    status, payload = await conn.send(Request("GET", f"/rest/v1/products?id=eq.{product}", headers))
    assert status == 200, payload[:300]
    return (time.perf_counter() - t0) * 1000


def _cpu_ticks(pid: int) -> int:
    """User + system CPU of a local process so far, in clock ticks (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


async def _backend_cpu(db: asyncpg.Connection, owner: uuid.UUID, n: int, cache: str) -> float:
    """The database backend's own CPU per direct analytics() call, in ms: what a call costs
    the server whatever else runs on the machine (the embedded PostgreSQL is local)."""
    pid = await db.fetchval("select pg_backend_pid()")
    await _direct_analytics(db, owner, cache)
    before = _cpu_ticks(pid)
    for _ in range(n):
        await _direct_analytics(db, owner, cache)
    return (_cpu_ticks(pid) - before) * 1000 / os.sysconf("SC_CLK_TCK") / n


async def _analytics_while(
    conn: Connection,
    headers: dict[str, str],
    db: asyncpg.Connection,
    owner: uuid.UUID,
    sellers: list[Op],
    duration: float,
) -> tuple[list[float], list[float], list[float], Result, list[float]]:
    """Analytics called back to back, in turn through the API and directly, plus a GET of one
    product through the API, while the sellers run their closed loop; then, for half as long
    under the same load, the direct call with the day cache off (every day live) alone — its
    ~18 ms of CPU a call would otherwise add a 21st client's work to the phase timed above.
    The sellers run on this process's event loop: moving them to a process of their own
    changed neither figure (docs/benchmarks.md, issue 12.3)."""
    api: list[float] = []
    direct: list[float] = []
    probe: list[float] = []
    live: list[float] = []
    product = await db.fetchval(
        "select id from public.products where business_owner_id = $1 order by id limit 1", owner
    )
    load = asyncio.ensure_future(run_closed_loop("sellers", sellers, duration))
    await asyncio.sleep(min(1.0, duration / 10))  # let the sellers reach their pace
    while not load.done():
        api += await _analytics_latencies(conn, headers, 1)
        direct.append(await _direct_analytics(db, owner))
        probe.append(await _probe(conn, headers, product))
    result = await load
    load = asyncio.ensure_future(run_closed_loop("sellers", sellers, duration / 2))
    await asyncio.sleep(min(1.0, duration / 20))
    while not load.done():
        live.append(await _direct_analytics(db, owner, "off"))
    await load
    return api, direct, probe, result, live


async def _explain(dsn: str, owner: uuid.UUID) -> list[str]:
    """Execution time and buffers of analytics()'s two queries for the last 30 days, as the
    tenant runs them (role, claims, and the function's own settings), plus the vacuum state
    of the tables they read."""
    conn = await asyncpg.connect(dsn)
    lines: list[str] = []
    try:
        async with conn.transaction():
            await conn.execute(
                "select set_config('role', 'authenticated', true), "
                "set_config('request.jwt.claims', $1, true), "
                "set_config('random_page_cost', '1.1', true), "
                "set_config('plan_cache_mode', 'force_custom_plan', true)",
                json.dumps({"sub": str(owner), "role": "authenticated"}),
            )
            for name, call in (
                ("sales", "pb_internal.analytics_sales($1, $2, $3, 'Asia/Kuala_Lumpur')"),
                ("products", "pb_internal.analytics_products($1, $2, $3)"),
            ):
                sql = f"explain (analyze, buffers, format json) select * from {call}"
                plan = await conn.fetchval(sql, owner, *_range_30())
                top = orjson.loads(plan)[0]
                root = top["Plan"]
                lines.append(
                    f"  analytics_{name:<8} {top['Execution Time']:7.2f} ms  "
                    f"buffers hit {root.get('Shared Hit Blocks', 0)} "
                    f"read {root.get('Shared Read Blocks', 0)}  "
                    f"cost {root['Total Cost']:.0f}  plan: {' > '.join(_nodes(root))}"
                )
        rows = await conn.fetch(
            "select c.relname, c.relpages, c.relallvisible, s.n_live_tup, s.n_dead_tup, "
            "s.n_mod_since_analyze, s.n_ins_since_vacuum, s.autovacuum_count, "
            "s.autoanalyze_count from pg_class c join pg_stat_user_tables s on s.relid = c.oid "
            "where c.oid in ('public.sales'::regclass, 'public.sale_items'::regclass) "
            "order by 1"
        )
        for r in rows:
            lines.append(
                f"  {r['relname']:<10} pages {r['relpages']} all-visible {r['relallvisible']} "
                f"live {r['n_live_tup']} dead {r['n_dead_tup']} "
                f"modified since analyze {r['n_mod_since_analyze']} "
                f"inserted since vacuum {r['n_ins_since_vacuum']} "
                f"autovacuums {r['autovacuum_count']} autoanalyzes {r['autoanalyze_count']}"
            )
    finally:
        await conn.close()
    return lines


def _range_30() -> tuple[object, object]:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Kuala_Lumpur")
    today = datetime.now(zone).date()
    start = datetime.combine(today - timedelta(days=29), datetime.min.time(), zone)
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), zone)
    return start, end


def _nodes(node: dict[str, object]) -> list[str]:
    label = str(node["Node Type"])
    if "Index Name" in node:
        label += f" {node['Index Name']}"
    if "Heap Fetches" in node:
        label += f" (heap fetches {node['Heap Fetches']})"
    children = node.get("Plans", [])
    assert isinstance(children, list)
    return [label] + [n for child in children for n in _nodes(child)]


async def _interleaved(
    name_a: str, a: list[Op], name_b: str, b: list[Op], duration: float, rounds: int = 4
) -> tuple[Result, Result]:
    """Two closed loops in alternating blocks (duration / rounds each), merged per loop: on a
    machine whose load changes from one phase to the next, both rates then see the same load
    and their ratio compares the work, not the moment."""
    merged: dict[str, list[Result]] = {name_a: [], name_b: []}
    for r in range(rounds):
        order = [(name_a, a), (name_b, b)] if r % 2 == 0 else [(name_b, b), (name_a, a)]
        for name, ops in order:
            merged[name].append(await run_closed_loop(name, ops, duration / rounds))

    def merge(name: str) -> Result:
        parts = merged[name]
        statuses: Counter[int] = Counter()
        for part in parts:
            statuses.update(part.statuses)
        return Result(
            f"{name} (interleaved)",
            sum(p.requests for p in parts),
            sum(p.seconds for p in parts),
            [v for p in parts for v in p.latencies_ms],
            statuses,
        )

    return merge(name_a), merge(name_b)


def _ratio(name: str, a: Result, b: Result, target: str) -> str:
    return f"       {name:<40} {a.rps / b.rps:6.1%}  (target {target})"


async def _rates(
    direct: dict[str, list[Op]],
    api: dict[str, list[Op]],
    floor: dict[str, list[Op]],
    duration: float,
    dsn: str,
) -> list[str]:
    """Items 1-3: the rates and their ratios."""
    n = f"{CLIENTS} clients"
    # Warm every path once (statement caches, connections) before anything is timed.
    for ops in (direct, api, floor):
        for key in ("one", "sale"):
            await run_closed_loop("warm-up", ops[key], min(2.0, duration))
    # The data set starts with no sales, and the warm-up's few hundred leave the sales
    # tables' statistics saying "empty": the foreign-key checks would run on plans made for
    # that until autovacuum's next ANALYZE. A shop's database has sales; so do these tables.
    owner = await asyncpg.connect(dsn)
    try:
        await owner.execute("analyze public.sales, public.sale_items, public.stock_movements")
    finally:
        await owner.close()
    d_one = await run_closed_loop(f"direct one product by id, {n}", direct["one"], duration)
    d_sale = await run_closed_loop(
        f"direct create_sale (3 lines, card), {n}", direct["sale"], duration
    )
    a_one = await run_closed_loop(f"API    one product by id, {n}", api["one"], duration)
    f_one = await run_closed_loop(f"floor  one product by id, {n}", floor["one"], duration)
    a_sale = await run_closed_loop(
        f"API    create_sale (3 lines, card), {n}", api["sale"], duration
    )
    f_sale = await run_closed_loop(
        f"floor  create_sale (3 lines, card), {n}", floor["sale"], duration
    )
    i_one, i_sale = await _interleaved(
        f"direct one product by id, {n}",
        direct["one"],
        f"direct create_sale, {n}",
        direct["sale"],
        2 * duration,
    )
    return [
        *(r.line() for r in (d_one, d_sale, a_one, f_one, a_sale, f_sale, i_one, i_sale)),
        _ratio("direct create_sale / direct read", d_sale, d_one, "≥ 25%"),
        _ratio("the same, interleaved (4 blocks each)", i_sale, i_one, "≥ 25%"),
        _ratio("API create_sale / direct create_sale", a_sale, d_sale, "≥ 70%"),
        _ratio("API read / floor read", a_one, f_one, "≥ 90%"),
        _ratio("API create_sale / floor create_sale", a_sale, f_sale, "—"),
    ]


async def _analytics_under_load(
    label: str,
    url: str,
    headers: dict[str, str],
    db: asyncpg.Connection,
    big: uuid.UUID,
    sellers: list[Op],
    duration: float,
) -> list[str]:
    """The selling phase against the server at `url` (after a short warm-up of its sellers)."""
    await run_closed_loop("warm-up", sellers, min(2.0, duration))
    parsed = urlparse(url)
    conn = Connection(parsed.hostname or "127.0.0.1", parsed.port or 80)
    try:
        api, direct, probe, load, live = await _analytics_while(
            conn, headers, db, big, sellers, duration
        )
    finally:
        conn.close()
    w = f"while {CLIENTS} clients sell"
    return [
        f"analytics 30 days, {w}, API ({label})  {summary(api)}  (target p95 < 50 ms)",
        f"  GET one product by id, in turn, API ({label})  {summary(probe)}",
        f"analytics 30 days, {w}, direct   {summary(direct)}",
        load.line().replace("sellers", f"  sellers (API create_sale, {CLIENTS} clients)", 1),
        f"analytics 30 days, {w}, direct, cache off (alone)  {summary(live)}",
    ]


async def _run(
    s: Stack,
    floor_url: str,
    duration: float,
    tenants: int,
    big_sales: int,
    analytics_only: bool,
    workers2_url: str,
) -> list[str]:
    url, anon_key, secret, dsn = s.server.url, s.server.anon_key, s.secret, s.owner_dsn
    timings = await generate(dsn, tenants=tenants)
    lines = [
        f"data: {tenants:,} tenants × 50 products — generated in "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    ]
    owners = await tenant_ids(dsn, CLIENTS + 1)
    big, load_owners = owners[0], owners[1:]
    products = await selling_tenants(dsn, owners)
    sellers = [_Tenant(o, secret, products[o]) for o in load_owners]
    api = _http_ops(url, anon_key, sellers)
    if not analytics_only:
        pool = await asyncpg.create_pool(
            dsn, user="authenticator", password=AUTHENTICATOR_PASSWORD, min_size=20, max_size=20
        )
        try:
            lines += await _rates(
                _direct_ops(pool, sellers),
                api,
                _http_ops(floor_url, anon_key, sellers),
                duration,
                dsn,
            )
        finally:
            await pool.close()

    seconds = await _big_tenant(dsn, big, big_sales)
    lines.append(
        f"big tenant: {big_sales:,} sales by create_sale in {seconds:.1f} s, spread over 365 days"
        f", among {tenants:,} tenants"
    )
    parsed = urlparse(url)
    conn = Connection(parsed.hostname or "127.0.0.1", parsed.port or 80)
    headers = {"apikey": anon_key, "Authorization": f"Bearer {user_token(secret, big, 7200)}"}
    db = await asyncpg.connect(dsn)
    try:
        quiet = await _analytics_latencies(conn, headers, 40)
        quiet_db = [await _direct_analytics(db, big) for _ in range(40)]
        quiet_live = [await _direct_analytics(db, big, "off") for _ in range(40)]
        lines.append(f"analytics 30 days, quiet, API                {summary(quiet)}")
        lines.append(f"analytics 30 days, quiet, direct             {summary(quiet_db)}")
        lines.append(f"analytics 30 days, quiet, direct, cache off  {summary(quiet_live)}")
        lines.append(
            "analytics 30 days, backend CPU per direct call: "
            f"{await _backend_cpu(db, big, 200, 'on'):.2f} ms, cache off "
            f"{await _backend_cpu(db, big, 20, 'off'):.2f} ms"
        )
        lines += await _explain(dsn, big)
        lines += await _analytics_under_load(
            "1 process", url, headers, db, big, api["sale"], duration
        )
        after = await _analytics_latencies(conn, headers, 40)
        lines.append(f"analytics 30 days, right after the load      {summary(after)}")
        lines += await _explain(dsn, big)
        lines += await _analytics_under_load(
            "serve --workers 2",
            workers2_url,
            headers,
            db,
            big,
            _http_ops(workers2_url, anon_key, sellers)["sale"],
            duration,
        )
    finally:
        conn.close()
        await db.close()
    return lines


def main(
    duration: float = 20.0,
    tenants: int = 10_000,
    big_sales: int = 50_000,
    analytics_only: bool = False,
) -> list[str]:
    from harness import ServerProcess  # tests/ is on the path once bench.stack is imported

    env = {"PB_RATE_LIMIT_PER_MINUTE": "1000000000", "PB_WORKERS": "1"}
    with stack(**env) as s:
        floor, floor_url = start_floor_app(s.owner_dsn, s.secret, s.workdir)
        # One process per core, for the second selling phase: 2 × 10 connections, the one
        # process's 20 in all.
        workers2 = ServerProcess(
            s.owner_dsn,
            s.workdir,
            env_overrides={
                "PB_AUTHENTICATOR_PASSWORD": AUTHENTICATOR_PASSWORD,
                "PB_LOG_LEVEL": "warning",
                **env,
                "PB_WORKERS": "2",
                "PB_POOL_MAX_SIZE": "10",
            },
        )
        workers2.start()
        try:
            lines = asyncio.run(
                _run(s, floor_url, duration, tenants, big_sales, analytics_only, workers2.url)
            )
        finally:
            workers2.stop()
            floor.terminate()
            floor.wait(10)
    return [
        "server processes: 1 (pocketbizz serve), 1 (bench/floor_app.py) and, for the second"
        " selling phase, 2 (pocketbizz serve --workers 2)",
        *lines,
    ]


if __name__ == "__main__":
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    unknown = flags - {"--analytics-only"}
    if unknown:
        sys.exit(f"unknown option: {', '.join(sorted(unknown))}")
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    for line in main(
        float(args[0]) if args else 20.0,
        int(args[1]) if len(args) > 1 else 10_000,
        int(args[2]) if len(args) > 2 else 50_000,
        "--analytics-only" in flags,
    ):
        print(line, flush=True)
