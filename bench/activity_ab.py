"""What daily-activity recording costs a request: create_sale through the API with the recorder
on and off, in one server process, in alternating blocks (issue 11.2).

One embedded PostgreSQL and one `pocketbizz serve` whose recorder the bench switches on
(SIGUSR1) and off (SIGUSR2) between blocks, the order swapped every round: the same process,
pool, caches and machine load on both sides. (Two server processes measured side by side
differ by several percent when identical: an A/A run put the first-started one 7% behind.)
Each client signs as 100 different tenants in turn; a warm-up with the recorder on makes every
user's first request of the day (a queued row, written by the next flush), so the measured
blocks are the steady state: one set lookup per transaction.

`python -m bench.activity_ab [rounds] [block_seconds] [clients]`
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pgserver
import psutil

from bench.data import generate, selling_tenants, tenant_ids, user_token
from bench.loadgen import Connection, Request, Result, run_closed_loop
from bench.sales_bench import _sale_body
from bench.stack import AUTHENTICATOR_PASSWORD, free_port
from pocketbizz.db import apply_migrations

SECRET = "activity-bench-secret-0123456789abcdef"
TENANTS_PER_CLIENT = 100
MODES = ("on", "off")


def _serve_toggled(argv: list[str]) -> None:
    """`pocketbizz serve` whose activity recorder SIGUSR1 hooks in and SIGUSR2 unhooks."""
    import pocketbizz.ops as ops
    from pocketbizz.cli import main
    from pocketbizz.ops.activity import ActivityRecorder
    from pocketbizz.ops.runtime import RECORDER
    from pocketbizz.state import AppState

    started = ops.startup

    async def startup(state: AppState) -> None:
        await started(state)
        recorder = state.services[RECORDER]
        assert isinstance(recorder, ActivityRecorder)

        def hook(on: bool) -> None:
            state.db.observe_identity = recorder.observe if on else None

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, hook, True)
        loop.add_signal_handler(signal.SIGUSR2, hook, False)

    ops.startup = startup  # type: ignore[assignment]
    main(["serve", *argv])


def _start(dsn: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    data = workdir / "server"
    data.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "PB_JWT_SECRET": SECRET,
        "PB_AUTHENTICATOR_PASSWORD": AUTHENTICATOR_PASSWORD,
        "PB_RATE_LIMIT_PER_MINUTE": "1000000000",
        "PB_LOG_LEVEL": "warning",
        "PB_POOL_MAX_SIZE": "10",
        "PB_JOBS_IN_PROCESS": "false",
        "XDG_STATE_HOME": str(data / "state"),
    }
    args = ["--port", str(port), "--data-dir", str(data)]
    command = [sys.executable, "-m", "bench.activity_ab", "--serve-toggled", *args]
    log = open(data / "server.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start; see {data / 'server.log'}")


def _sellers(
    url: str, anon_key: str, owners: list[list[uuid.UUID]], products: dict[uuid.UUID, list[str]]
) -> list[Callable[[], Awaitable[int]]]:
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])
    ops: list[Callable[[], Awaitable[int]]] = []
    for mine in owners:
        conn = Connection(host, port)
        turns: Iterator[tuple[dict[str, str], uuid.UUID]] = itertools.cycle(
            [
                ({"apikey": anon_key, "Authorization": f"Bearer {user_token(SECRET, o, 7200)}"}, o)
                for o in mine
            ]
        )

        async def sell(
            conn: Connection = conn, turns: Iterator[tuple[dict[str, str], uuid.UUID]] = turns
        ) -> int:
            headers, owner = next(turns)
            req = Request.json(
                "POST", "/rest/v1/rpc/create_sale", _sale_body(products[owner]), headers
            )
            status, _ = await conn.send(req)
            return status

        ops.append(sell)
    return ops


async def _times(op: Callable[[], Awaitable[int]], n: int) -> None:
    for _ in range(n):
        await op()


async def _measure(
    dsn: str, server: subprocess.Popen[bytes], url: str, rounds: int, block: float, clients: int
) -> list[str]:
    from pocketbizz.gateway.tokens import api_keys

    def recorder(on: bool) -> None:
        server.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)
        time.sleep(0.2)  # handled by the server's loop between two requests

    anon = api_keys(SECRET)["anon_key"]
    owners = await tenant_ids(dsn, clients * TENANTS_PER_CLIENT)
    products = await selling_tenants(dsn, owners)
    groups = [owners[i::clients] for i in range(clients)]
    sellers = _sellers(url, anon, groups, products)
    totals = {name: Result(f"activity recorder {name}", 0, 0.0, [], Counter()) for name in MODES}
    # The switch works: requests with the recorder off leave no row behind.
    recorder(False)
    await asyncio.gather(*(_times(op, 5) for op in sellers))
    await asyncio.sleep(1.5)  # past the next flush
    recorded_off = await _activity_rows(dsn)
    # Warm-up, recorder on: plans, pools, and every user's first request of the day.
    recorder(True)
    await asyncio.gather(*(_times(op, TENANTS_PER_CLIENT + 10) for op in sellers))
    process = psutil.Process(server.pid)
    cpu = dict.fromkeys(MODES, 0.0)
    ratios = []
    for r in range(rounds):
        rps = {}
        for name in MODES if r % 2 == 0 else tuple(reversed(MODES)):
            recorder(name == "on")
            cpu_before = _cpu_seconds(process)
            result = await run_closed_loop(name, sellers, block)
            cpu[name] += _cpu_seconds(process) - cpu_before
            rps[name] = result.rps
            t = totals[name]
            t.requests += result.requests
            t.seconds += result.seconds
            t.latencies_ms += result.latencies_ms
            t.statuses.update(result.statuses)
        ratios.append(rps["on"] / rps["off"])
    lines = [
        f"create_sale (3 lines) through the API, one server process, {clients} clients × "
        f"{TENANTS_PER_CLIENT} tenants each, {rounds} rounds of {block:.0f} s per side"
    ]
    lines += [totals[name].line() for name in MODES]
    # CPU seconds the server process spent per request: far less sensitive to the other work
    # on the machine than throughput is.
    per_request = {name: cpu[name] / totals[name].requests * 1e6 for name in MODES}
    lines.append(
        "server CPU per request: "
        + ", ".join(f"{name} {per_request[name]:.0f} µs" for name in MODES)
        + f" (on/off {per_request['on'] / per_request['off']:.1%})"
    )
    on, off = totals["on"], totals["off"]
    lines.append(f"throughput on/off {on.rps / off.rps:6.1%} over the run")
    lines.append(
        "per round on/off: "
        + " ".join(f"{r:.0%}" for r in ratios)
        + f"  (median {statistics.median(ratios):.1%})"
    )
    lines.append(_observe_cost())
    lines.append(
        f"pb_internal.user_activity rows: {recorded_off} after {5 * clients} requests with the recorder "
        f"off, {await _activity_rows(dsn)} after the run"
    )
    return lines


def _cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of the server process (PostgreSQL's backends are not in it)."""
    times = process.cpu_times()
    return float(times.user + times.system)


async def _activity_rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval("select count(*) from pb_internal.user_activity")
    finally:
        await conn.close()
    return count


def _observe_cost() -> str:
    """The recorder's whole per-transaction work, timed alone: a seen user's lookup."""
    from pocketbizz.db.database import Database, Identity
    from pocketbizz.ops.activity import ActivityRecorder

    recorder = ActivityRecorder(Database("postgresql://unused"))
    identity = Identity("authenticated", {"sub": str(uuid.uuid4()), "role": "authenticated"})
    recorder.observe(identity)  # queued once; every later call is the steady state
    calls = 1_000_000
    t0 = time.perf_counter()
    for _ in range(calls):
        recorder.observe(identity)
    per_call = (time.perf_counter() - t0) / calls
    return f"ActivityRecorder.observe for a user already seen today: {per_call * 1e9:.0f} ns/call"


def main(rounds: int = 10, block: float = 8.0, clients: int = 20) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="pb-activity-ab-") as tmp:
        workdir = Path(tmp)
        pg = pgserver.get_server(workdir / "pg", cleanup_mode="delete")  # type: ignore[attr-defined]
        dsn = str(pg.get_uri())
        server = None
        try:
            asyncio.run(apply_migrations(dsn, authenticator_password=AUTHENTICATOR_PASSWORD))
            asyncio.run(generate(dsn, tenants=clients * TENANTS_PER_CLIENT, products=20))
            server, url = _start(dsn, workdir)
            return asyncio.run(_measure(dsn, server, url, rounds, block, clients))
        finally:
            if server is not None:
                server.terminate()
                server.wait(15)
            pg.cleanup()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-toggled":
        _serve_toggled(sys.argv[2:])
    else:
        numbers = [float(a) for a in sys.argv[1:4]]
        rounds = int(numbers[0]) if numbers else 10
        block = numbers[1] if len(numbers) > 1 else 8.0
        clients = int(numbers[2]) if len(numbers) > 2 else 20
        for line in main(rounds, block, clients):
            print(line, flush=True)
