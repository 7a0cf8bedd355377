"""`make loadtest`: the day's mix from many simulated users against one server (issue 11.7).

Bounded and loopback only: an embedded PostgreSQL and one `pocketbizz serve` on 127.0.0.1,
both removed at the end; every phase stops at its deadline and every request has a timeout.

- Data: `bench.data.generate` (N tenants × 50 products × 5 customers); the simulated users are
  U of those tenants (the most any phase needs), each given a real password, stock, the pro plan
  and `--history` past sales (create_sale with sold_at over the last 30 days, as the app's
  offline replay does).
- Each user holds one keep-alive HTTP connection and one realtime socket (postgres_changes on
  its `sales`), and after an exponential think time (`--think`, mean seconds) runs one flow:
  list products 30, sell 30 (client_ref, retried on 5xx or a lost connection), dashboard
  analytics 10, receipt 8, void 5, image upload 5, sign-in + refresh 2 (weights).
- Reported: per flow p50/p95/p99 and errors, throughput, pool use from /metrics (sampled each
  second), CPU of the server and of PostgreSQL, realtime events received per sale made; then a
  step search: the most users whose whole-mix p95 stays under 200 ms with under 1 % errors.

    python -m bench.loadtest [--tenants 10000] [--users 200] [--duration 300] [--think 2]
                             [--history 30] [--steps 25,50,100,200,400] [--step-seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import orjson
import psutil
import websockets
from websockets.asyncio.client import ClientConnection

from bench.data import generate, give_stock, user_token
from bench.loadgen import Connection, Request
from bench.stack import stack

PASSWORD = "loadtest password 1"
REQUEST_TIMEOUT = 30.0
SELL_ATTEMPTS = 3
P95_TARGET_MS = 200.0
POOL_MAX = 20  # PB_POOL_MAX_SIZE of the server under test
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 80  # 20 KB; the bucket checks the type only
WEIGHTS = {
    "list_products": 30,
    "sell": 30,
    "dashboard": 10,
    "receipt": 8,
    "void": 5,
    "upload": 5,
    "sign_in": 2,
}


@dataclass
class User:
    id: str
    email: str
    products: list[str]
    token: str
    conn: Connection
    sales: list[str] = field(default_factory=list)
    sold: int = 0  # sales made during the run, each announced on the socket
    changes_seen: int = 0
    ws: ClientConnection | None = None

    def headers(self, anon_key: str) -> dict[str, str]:
        return {"apikey": anon_key, "Authorization": f"Bearer {self.token}"}


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    retries: int = 0

    def record(self, flow: str, started: float, outcome: int | str) -> None:
        self.latencies[flow].append((time.perf_counter() - started) * 1000)
        if not isinstance(outcome, int) or outcome >= 400:
            self.errors[flow][str(outcome)] += 1

    def all_latencies(self) -> list[float]:
        """The mix's requests: socket joins (all at a phase's start) are reported apart."""
        return [v for flow, vs in self.latencies.items() if flow != "realtime_join" for v in vs]

    def requests(self) -> int:
        return len(self.all_latencies())

    def error_count(self) -> int:
        return sum(sum(c.values()) for c in self.errors.values())


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class Mix:
    """The flows of one simulated user, each recording its requests in `stats`."""

    def __init__(self, anon_key: str, stats: Stats) -> None:
        self.anon_key = anon_key
        self.stats = stats

    async def _send(self, user: User, flow: str, req: Request) -> tuple[int | str, bytes]:
        started = time.perf_counter()
        try:
            status, body = await asyncio.wait_for(user.conn.send(req), REQUEST_TIMEOUT)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            user.conn.close()  # the next request opens a fresh connection
            self.stats.record(flow, started, type(exc).__name__)
            return type(exc).__name__, b""
        self.stats.record(flow, started, status)
        return status, body

    async def list_products(self, user: User) -> None:
        path = "/rest/v1/products?select=id,name,sale_price,current_stock&order=name&limit=50"
        await self._send(user, "list_products", Request("GET", path, user.headers(self.anon_key)))

    async def sell(self, user: User) -> None:
        items = [
            {"product_id": p, "quantity": random.randint(1, 2)}
            for p in random.sample(user.products, random.randint(1, 3))
        ]
        body = {"items": items, "payment_method": "cash", "client_ref": str(uuid.uuid4())}
        req = Request.json("POST", "/rest/v1/rpc/create_sale", body, user.headers(self.anon_key))
        for attempt in range(SELL_ATTEMPTS):
            status, data = await self._send(user, "sell", req)
            if status == 200:
                user.sales.append(orjson.loads(data)["id"])
                user.sold += 1
                return
            if isinstance(status, int) and status < 500:
                return  # refused for a reason a retry would not change
            if attempt + 1 < SELL_ATTEMPTS:
                self.stats.retries += 1  # the same client_ref: a retry can never sell twice

    async def dashboard(self, user: User) -> None:
        today = date.today()
        body = {"start_date": str(today - timedelta(days=29)), "end_date": str(today)}
        req = Request.json("POST", "/functions/v1/analytics", body, user.headers(self.anon_key))
        await self._send(user, "dashboard", req)

    async def receipt(self, user: User) -> None:
        if not user.sales:
            return await self.list_products(user)
        path = f"/functions/v1/receipt?sale_id={random.choice(user.sales)}&format=text"
        await self._send(user, "receipt", Request("GET", path, user.headers(self.anon_key)))
        return None

    async def void(self, user: User) -> None:
        if not user.sales:
            return await self.list_products(user)
        body = {"sale_id": user.sales.pop(), "reason": "customer changed their mind"}
        req = Request.json("POST", "/rest/v1/rpc/void_sale", body, user.headers(self.anon_key))
        await self._send(user, "void", req)
        return None

    async def upload(self, user: User) -> None:
        path = f"/storage/v1/object/product-images/{user.id}/loadtest/{uuid.uuid4()}.png"
        headers = {**user.headers(self.anon_key), "Content-Type": "image/png"}
        await self._send(user, "upload", Request("POST", path, headers, PNG))

    async def sign_in(self, user: User) -> None:
        headers = {"apikey": self.anon_key}
        body = {"email": user.email, "password": PASSWORD}
        req = Request.json("POST", "/auth/v1/token?grant_type=password", body, headers)
        status, data = await self._send(user, "sign_in", req)
        if status != 200:
            return
        session = orjson.loads(data)
        body = {"refresh_token": session["refresh_token"]}
        req = Request.json("POST", "/auth/v1/token?grant_type=refresh_token", body, headers)
        status, data = await self._send(user, "refresh", req)
        if status == 200:
            user.token = orjson.loads(data)["access_token"]

    def flows(self) -> dict[str, Callable[[User], Awaitable[None]]]:
        return {name: getattr(self, name) for name in WEIGHTS}


# --- realtime ----------------------------------------------------------------------------------


async def _subscribe(ws_url: str, user: User, stats: Stats) -> None:
    started = time.perf_counter()
    ws = await websockets.connect(ws_url, max_queue=None, open_timeout=REQUEST_TIMEOUT)
    join = {
        "event": "phx_join",
        "topic": f"realtime:sales-{user.id}",
        "ref": "1",
        "join_ref": "1",
        "payload": {
            "config": {
                "postgres_changes": [{"event": "INSERT", "schema": "public", "table": "sales"}]
            },
            "access_token": user.token,
        },
    }
    await ws.send(json.dumps(join))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), REQUEST_TIMEOUT))
        if frame["event"] == "phx_reply" and frame["ref"] == "1":
            stats.record("realtime_join", started, 200 if frame["payload"]["status"] == "ok" else 0)
            user.ws = ws
            return


async def _read_changes(user: User) -> None:
    assert user.ws is not None
    beat = json.dumps({"event": "heartbeat", "topic": "phoenix", "payload": {}, "ref": None})
    last_beat = time.monotonic()
    try:
        while True:
            try:
                message = await asyncio.wait_for(user.ws.recv(), 5)
            except TimeoutError:
                message = None
            if message is not None and json.loads(message)["event"] == "postgres_changes":
                user.changes_seen += 1
            if time.monotonic() - last_beat > 25:
                await user.ws.send(beat)
                last_beat = time.monotonic()
    except websockets.ConnectionClosed:
        return


# --- what the machine does ---------------------------------------------------------------------


@dataclass
class Samples:
    pool_in_use: list[float] = field(default_factory=list)
    pool_waiting: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    postgres_cpu: list[float] = field(default_factory=list)


_POOL = re.compile(r'^pocketbizz_db_pool_connections\{state="(\w+)"\} (\S+)$', re.M)


async def _sample(conn: Connection, server_pid: int, pgdata: Path, into: Samples) -> None:
    """Every second: /metrics' pool gauges, and CPU % (of one core) of the server process and of
    all PostgreSQL processes (the postmaster and its backends)."""
    server = psutil.Process(server_pid)
    postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
    known: dict[int, psutil.Process] = {}
    server.cpu_percent()
    while True:
        await asyncio.sleep(1)
        try:
            status, body = await asyncio.wait_for(conn.send(Request("GET", "/metrics")), 10)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            conn.close()
            status, body = 0, b""
        if status == 200:
            pool = {m[0]: float(m[1]) for m in _POOL.findall(body.decode())}
            into.pool_in_use.append(pool.get("in_use", 0))
            into.pool_waiting.append(pool.get("waiting", 0))
        into.server_cpu.append(server.cpu_percent())
        total = 0.0
        for proc in [postmaster, *postmaster.children()]:
            tracked = known.setdefault(proc.pid, proc)
            try:
                total += tracked.cpu_percent()
            except psutil.Error:
                known.pop(proc.pid, None)
        into.postgres_cpu.append(total)


# --- set-up ------------------------------------------------------------------------------------


async def _prepare_users(
    dsn: str, secret: str, count: int, history: int, host: str, port: int
) -> list[User]:
    from pocketbizz.auth.passwords import hash_password

    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select id, email from auth.users where email like 'tenant-%@bench.example' "
            "order by id limit $1",
            count,
        )
        owners = [r["id"] for r in rows]
        await conn.execute(
            "update auth.users set encrypted_password = $1 where id = any($2::uuid[])",
            await hash_password(PASSWORD),
            owners,
        )
        await conn.execute(
            "update public.users set subscription_plan = 'pro' "
            "where business_owner_id = any($1::uuid[])",
            owners,
        )
        products: dict[uuid.UUID, list[str]] = defaultdict(list)
        for r in await conn.fetch(
            "select business_owner_id, id from public.products "
            "where business_owner_id = any($1::uuid[])",
            owners,
        ):
            products[r["business_owner_id"]].append(str(r["id"]))
    finally:
        await conn.close()
    await give_stock(dsn, owners, 1_000_000)
    users = [
        User(
            str(r["id"]),
            r["email"],
            products[r["id"]],
            user_token(secret, r["id"], 7200),
            Connection(host, port),
        )
        for r in rows
    ]
    await _history(dsn, users, history)
    return users


async def _history(dsn: str, users: list[User], per_user: int) -> None:
    """Past sales through create_sale itself (ledger, numbering, analytics all real), spread over
    the last 30 days, as each tenant would have made them."""
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)

    async def one(user: User) -> None:
        claims = orjson.dumps({"sub": user.id, "role": "authenticated"}).decode()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "select set_config('role', 'authenticated', true), "
                "set_config('request.jwt.claims', $1, true)",
                claims,
            )
            for n in range(per_user):
                items = [{"product_id": p, "quantity": 1} for p in random.sample(user.products, 2)]
                sold_at = timedelta(minutes=(n * 37) % (30 * 24 * 60))
                await conn.execute(
                    "select public.create_sale(items => $1::jsonb, client_ref => $2::uuid,"
                    " sold_at => now() - $3::interval)",
                    orjson.dumps(items).decode(),
                    uuid.uuid4(),
                    sold_at,
                )

    try:
        await asyncio.gather(*(one(u) for u in users))
    finally:
        await pool.close()


# --- a phase -----------------------------------------------------------------------------------


async def _phase(
    users: list[User], anon_key: str, base: str, seconds: float, think: float
) -> tuple[Stats, float]:
    stats = Stats()
    mix = Mix(anon_key, stats)
    flows = mix.flows()
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    ws_url = base.replace("http", "ws", 1) + f"/realtime/v1/websocket?apikey={anon_key}&vsn=1.0.0"
    for user in users:
        user.sold = user.changes_seen = 0
    await asyncio.gather(*(_subscribe(ws_url, u, stats) for u in users))
    readers = [asyncio.create_task(_read_changes(u)) for u in users]
    deadline = time.perf_counter() + seconds

    async def simulate(user: User) -> None:
        while True:
            pause = random.expovariate(1 / think) if think > 0 else 0
            if time.perf_counter() + pause >= deadline:
                return
            await asyncio.sleep(pause)
            await flows[random.choices(names, weights)[0]](user)

    started = time.perf_counter()
    await asyncio.gather(*(simulate(u) for u in users))
    elapsed = time.perf_counter() - started
    await asyncio.sleep(1)  # the last sales' announcements are on their way
    for task in readers:
        task.cancel()
    for user in users:
        if user.ws is not None:
            await user.ws.close()
            user.ws = None
    return stats, elapsed


def _report(
    title: str, stats: Stats, elapsed: float, users: list[User], samples: Samples
) -> list[str]:
    lines = [f"== {title}: {len(users)} users, {elapsed:.0f} s"]
    for flow in [*WEIGHTS, "refresh", "realtime_join"]:
        values = stats.latencies.get(flow, [])
        if not values:
            continue
        errors = dict(stats.errors.get(flow, {}))
        lines.append(
            f"  {flow:<14} n={len(values):6d}  p50 {_pct(values, 50):7.1f} ms  "
            f"p95 {_pct(values, 95):7.1f} ms  p99 {_pct(values, 99):7.1f} ms  errors={errors}"
        )
    every = stats.all_latencies()
    sold = sum(u.sold for u in users)
    seen = sum(u.changes_seen for u in users)
    lines.append(
        f"  all            {stats.requests() / elapsed:7.1f} req/s  p95 {_pct(every, 95):.1f} ms  "
        f"errors {stats.error_count()}  sale retries {stats.retries}"
    )
    lines.append(f"  realtime: {seen} sale events received for {sold} sales made")
    if samples.pool_in_use:
        n = len(samples.pool_in_use)
        lines.append(
            f"  pool (max {POOL_MAX}): in use mean {sum(samples.pool_in_use) / n:.1f}, max "
            f"{max(samples.pool_in_use):.0f}; requests waiting for a connection in "
            f"{sum(1 for w in samples.pool_waiting if w > 0) / n:.0%} of samples (max "
            f"{max(samples.pool_waiting):.0f}); all {POOL_MAX} in use in "
            f"{sum(1 for u in samples.pool_in_use if u >= POOL_MAX) / n:.0%}"
        )
    if samples.server_cpu:
        lines.append(
            f"  cpu (% of one core): server mean {sum(samples.server_cpu) / len(samples.server_cpu):.0f} "
            f"max {max(samples.server_cpu):.0f}; postgres mean "
            f"{sum(samples.postgres_cpu) / len(samples.postgres_cpu):.0f} "
            f"max {max(samples.postgres_cpu):.0f}"
        )
    return lines


@dataclass(frozen=True)
class Target:
    """The server under load, and where to watch it."""

    url: str
    port: int
    anon_key: str
    server_pid: int
    pgdata: Path


async def _measured(
    title: str, users: list[User], target: Target, seconds: float, think: float
) -> tuple[list[str], float, float]:
    samples = Samples()
    watcher = Connection("127.0.0.1", target.port)
    sampler = asyncio.create_task(_sample(watcher, target.server_pid, target.pgdata, samples))
    try:
        stats, elapsed = await _phase(users, target.anon_key, target.url, seconds, think)
    finally:
        sampler.cancel()
        watcher.close()
    every = stats.all_latencies()
    error_rate = stats.error_count() / max(1, stats.requests())
    return _report(title, stats, elapsed, users, samples), _pct(every, 95), error_rate


async def _run(args: argparse.Namespace, owner_dsn: str, secret: str, target: Target) -> list[str]:
    steps = sorted(int(s) for s in args.steps.split(",") if s) if args.steps else []
    t0 = time.perf_counter()
    timings = await generate(owner_dsn, tenants=args.tenants)
    users = await _prepare_users(
        owner_dsn, secret, max([args.users, *steps]), args.history, "127.0.0.1", target.port
    )
    lines = [
        f"data: {', '.join(f'{k} {v:.1f} s' for k, v in timings.items())}; users, stock and "
        f"history ready after {time.perf_counter() - t0:.0f} s"
    ]
    report, _, _ = await _measured(
        "day's mix", users[: args.users], target, args.duration, args.think
    )
    lines += report
    held = 0
    for n in steps:
        report, p95, error_rate = await _measured(
            f"step {n}", users[:n], target, args.step_seconds, args.think
        )
        lines += report
        if p95 < P95_TARGET_MS and error_rate < 0.01:
            held = n
        else:
            break  # past the knee: larger steps only queue longer
    if steps:
        lines.append(
            f"held with whole-mix p95 < {P95_TARGET_MS:.0f} ms and < 1 % errors: {held} "
            f"concurrent users (steps {args.steps}, {args.step_seconds:.0f} s each)"
        )
    return lines


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(prog="python -m bench.loadtest", description=__doc__)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--think", type=float, default=2.0, help="mean seconds between flows")
    parser.add_argument("--history", type=int, default=30, help="past sales per user")
    parser.add_argument("--steps", default="25,50,100,200,400,800")
    parser.add_argument("--step-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    lines = [
        f"loadtest: {args.tenants} tenants, {args.users} users for {args.duration:.0f} s, "
        f"think {args.think} s mean, {args.history} past sales per user; "
        f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at start (shared)"
    ]
    print(lines[0], flush=True)
    env = {
        "PB_RATE_LIMIT_PER_MINUTE": "1000000000",
        "PB_RATE_LIMIT_SIGN_IN_PER_MINUTE": "1000000000",
        "PB_RATE_LIMIT_SIGN_UP_PER_MINUTE": "1000000000",
        "PB_REALTIME_MAX_JOINS_PER_SECOND": "10000",
        "PB_POOL_MAX_SIZE": str(POOL_MAX),
    }
    with stack(**env) as s:  # outside the event loop: it runs its own for the migrations
        assert s.server.proc is not None
        target = Target(
            s.server.url, s.server.port, s.server.anon_key, s.server.proc.pid, s.workdir / "pg"
        )
        for line in asyncio.run(_run(args, s.owner_dsn, s.secret, target)):
            print(line, flush=True)
            lines.append(line)
    return lines


if __name__ == "__main__":
    main()
