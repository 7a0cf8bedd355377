"""Realtime: change-to-callback latency with many open sockets, and memory per idle socket.

Starts nothing itself. Give it a running server (and its pid to read memory from /proc):

    python -m bench.realtime_bench --url http://127.0.0.1:8000 --anon-key KEY \
        [--server-pid PID] [--tenants 100] [--sockets 1000] [--rate 50] [--duration 20]

It signs up `--tenants` users through /auth/v1/signup (the server's sign-up rate limit must
allow it: PB_RATE_LIMIT_SIGN_UP_PER_MINUTE), gives each one product, opens `--sockets`
WebSockets spread evenly over the tenants, each joined to UPDATEs of `products` with its
tenant's token, measures the server's RSS per idle socket, then updates products through
REST at `--rate` changes/s (tenants in turn) for `--duration` seconds. Every change reaches
each socket of its tenant; latency is the time from the change's transaction timestamp
(`commit_timestamp`, same clock: same machine) to the frame's arrival at the socket.
Raw WebSockets keep the client's own CPU cost small on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

PASSWORD = "bench-password-123"
HEARTBEAT_SECONDS = 25.0


@dataclass
class Tenant:
    user_id: str
    token: str
    product_id: str = ""


@dataclass
class Results:
    latencies_ms: list[float] = field(default_factory=list)
    changes_sent: int = 0
    change_errors: int = 0
    unexpected_frames: int = 0


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _rss_tree_kib(pid: int) -> int:
    """RSS of the process and its children (`pocketbizz serve` may run the app in a child)."""
    total = _rss_kib(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            total += _rss_tree_kib(int(child))
    return total


async def _sign_up(http: httpx.AsyncClient, anon_key: str, gate: asyncio.Semaphore) -> Tenant:
    email = f"rt-bench-{uuid.uuid4().hex[:12]}@example.com"
    async with gate:
        while True:
            res = await http.post(
                "/auth/v1/signup",
                json={"email": email, "password": PASSWORD},
                headers={"apikey": anon_key},
            )
            if res.status_code == 429:  # sign-up limit: wait as told, then carry on
                await asyncio.sleep(float(res.headers.get("retry-after", "5")))
                continue
            res.raise_for_status()
            body = res.json()
            return Tenant(body["user"]["id"], body["access_token"])


def _rest_headers(anon_key: str, tenant: Tenant) -> dict[str, str]:
    return {"apikey": anon_key, "authorization": f"Bearer {tenant.token}"}


async def _give_product(http: httpx.AsyncClient, anon_key: str, tenant: Tenant) -> None:
    res = await http.post(
        "/rest/v1/products",
        json={"sku": "BENCH-1", "name": "Bench", "sale_price": "1.00"},
        headers={**_rest_headers(anon_key, tenant), "prefer": "return=representation"},
    )
    res.raise_for_status()
    tenant.product_id = res.json()[0]["id"]


async def _open_socket(ws_url: str, tenant: Tenant, n: int) -> ClientConnection:
    ws = await websockets.connect(ws_url, max_queue=None, open_timeout=30)
    join = {
        "event": "phx_join",
        "topic": f"realtime:bench-{n}",
        "ref": "1",
        "join_ref": "1",
        "payload": {
            "config": {
                "broadcast": {"ack": False, "self": False},
                "presence": {"key": "", "enabled": False},
                "private": False,
                "postgres_changes": [{"event": "UPDATE", "schema": "public", "table": "products"}],
            },
            "access_token": tenant.token,
        },
    }
    await ws.send(json.dumps(join))
    while True:
        frame = json.loads(await ws.recv())
        if frame["event"] == "phx_reply" and frame["ref"] == "1":
            if frame["payload"]["status"] != "ok":
                raise RuntimeError(f"join refused: {frame['payload']}")
            return ws


async def _read(ws: ClientConnection, results: Results) -> None:
    async for message in ws:
        frame = json.loads(message)
        if frame["event"] == "postgres_changes":
            committed = datetime.fromisoformat(frame["payload"]["data"]["commit_timestamp"])
            results.latencies_ms.append((time.time() - committed.timestamp()) * 1000)
        elif frame["event"] not in ("phx_reply", "system"):
            results.unexpected_frames += 1


async def _heartbeats(sockets: list[ClientConnection]) -> None:
    beat = json.dumps({"event": "heartbeat", "topic": "phoenix", "payload": {}, "ref": None})
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        for ws in sockets:
            await ws.send(beat)


async def _change(
    http: httpx.AsyncClient, anon_key: str, tenant: Tenant, n: int, results: Results
) -> None:
    try:
        res = await http.patch(
            f"/rest/v1/products?id=eq.{tenant.product_id}",
            json={"sale_price": f"{1 + n % 1000}.{n % 100:02d}"},
            headers=_rest_headers(anon_key, tenant),
        )
        res.raise_for_status()
    except httpx.HTTPError:
        results.change_errors += 1


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


async def run(
    url: str,
    anon_key: str,
    *,
    server_pid: int | None = None,
    tenants: int = 100,
    sockets: int = 1000,
    rate: float = 50.0,
    duration: float = 20.0,
) -> list[str]:
    url = url.rstrip("/")
    ws_url = url.replace("http", "ws", 1) + f"/realtime/v1/websocket?apikey={anon_key}&vsn=1.0.0"
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        gate = asyncio.Semaphore(8)
        people = list(
            await asyncio.gather(*(_sign_up(http, anon_key, gate) for _ in range(tenants)))
        )
        await asyncio.gather(*(_give_product(http, anon_key, t) for t in people))

        rss_before = _rss_tree_kib(server_pid) if server_pid else None
        opening = asyncio.Semaphore(50)

        async def open_one(n: int) -> ClientConnection:
            async with opening:
                return await _open_socket(ws_url, people[n % tenants], n)

        started = time.perf_counter()
        open_sockets = list(await asyncio.gather(*(open_one(n) for n in range(sockets))))
        open_seconds = time.perf_counter() - started
        await asyncio.sleep(2)  # let the server settle before reading its memory
        rss_after = _rss_tree_kib(server_pid) if server_pid else None

        results = Results()
        readers = [asyncio.create_task(_read(ws, results)) for ws in open_sockets]
        beats = asyncio.create_task(_heartbeats(open_sockets))
        pending: set[asyncio.Task[None]] = set()
        interval = 1.0 / rate
        begin = time.perf_counter()
        n = 0
        while (elapsed := time.perf_counter() - begin) < duration:
            task = asyncio.create_task(_change(http, anon_key, people[n % tenants], n, results))
            pending.add(task)
            task.add_done_callback(pending.discard)
            n += 1
            await asyncio.sleep(max(0.0, n * interval - elapsed))
        results.changes_sent = n
        await asyncio.gather(*pending)
        await asyncio.sleep(2)  # the last deliveries

        beats.cancel()
        for task in readers:
            task.cancel()
        await asyncio.gather(beats, *readers, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in open_sockets), return_exceptions=True)

    per_tenant = sockets / tenants
    expected = (results.changes_sent - results.change_errors) * per_tenant
    lat = results.latencies_ms
    lines = [
        f"realtime sockets {sockets} over {tenants} tenants, opened in {open_seconds:.1f} s",
        f"realtime changes {results.changes_sent} at {rate:g}/s over {duration:g} s "
        f"({results.change_errors} failed), deliveries {len(lat)} of {expected:.0f} expected",
        f"realtime commit-to-callback latency p50 {_pct(lat, 0.50):.1f} ms  "
        f"p95 {_pct(lat, 0.95):.1f} ms  p99 {_pct(lat, 0.99):.1f} ms  "
        f"max {max(lat, default=float('nan')):.1f} ms"
        + (f"  (mean {statistics.fmean(lat):.1f} ms)" if lat else ""),
    ]
    if rss_before is not None and rss_after is not None:
        per_socket = (rss_after - rss_before) / sockets
        lines.append(
            f"realtime server RSS {rss_before / 1024:.1f} MiB idle -> {rss_after / 1024:.1f} MiB "
            f"with {sockets} idle sockets: {per_socket:.1f} KiB per socket"
        )
    if results.unexpected_frames:
        lines.append(f"realtime unexpected frames: {results.unexpected_frames}")
    return lines


def main(argv: list[str] | None = None) -> list[str]:
    """Run with command-line arguments; returns the result lines (the caller prints them)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--anon-key", required=True)
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=20.0)
    args = parser.parse_args(argv)
    lines = asyncio.run(
        run(
            args.url,
            args.anon_key,
            server_pid=args.server_pid,
            tenants=args.tenants,
            sockets=args.sockets,
            rate=args.rate,
            duration=args.duration,
        )
    )
    return lines


if __name__ == "__main__":
    for result in main():
        print(result)
