"""Issue 2's numbers: cold start to /ready, sign-in and refresh throughput and latency."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from urllib.parse import urlparse

import httpx
import orjson

from bench.loadgen import Connection, Request, run_closed_loop
from bench.stack import stack

CONCURRENCY = 20


def cold_start() -> list[str]:
    """`pocketbizz serve` on a fresh data dir (initdb included), then a warm restart."""
    lines = []
    with tempfile.TemporaryDirectory(prefix="pb-cold-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "PB_JWT_SECRET"}}
        env["PB_LOG_LEVEL"] = "warning"
        for label in ("fresh data dir (initdb + migrations)", "restart on existing data dir"):
            port = 18000 + os.getpid() % 1000
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pocketbizz",
                    "serve",
                    "--data-dir",
                    f"{tmp}/pb",
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)
            lines.append(f"cold start to /ready, {label:<40} {time.perf_counter() - t0:6.2f} s")
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return lines


async def _auth_load(url: str, anon_key: str, duration: float) -> list[str]:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    headers = {"apikey": anon_key}
    users = []
    async with httpx.AsyncClient() as http:
        for _ in range(CONCURRENCY):
            email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
            res = await http.post(
                f"{url}/auth/v1/signup",
                headers=headers,
                json={"email": email, "password": "bench-password"},
            )
            res.raise_for_status()
            users.append((email, res.json()["refresh_token"]))

    def sign_in_worker(email: str) -> object:
        conn = Connection(host, port)
        req = Request.json(
            "POST",
            "/auth/v1/token?grant_type=password",
            {"email": email, "password": "bench-password"},
            headers,
        )

        async def op() -> int:
            status, _ = await conn.send(req)
            return status

        return op

    def refresh_worker(token: str) -> object:
        conn = Connection(host, port)
        state = {"token": token}

        async def op() -> int:
            req = Request.json(
                "POST",
                "/auth/v1/token?grant_type=refresh_token",
                {"refresh_token": state["token"]},
                headers,
            )
            status, body = await conn.send(req)
            if status == 200:
                state["token"] = orjson.loads(body)["refresh_token"]
            return status

        return op

    sign_in = await run_closed_loop(
        f"sign-in (password grant), {CONCURRENCY} clients",
        [sign_in_worker(email) for email, _ in users],  # type: ignore[misc]
        duration,
    )
    refresh = await run_closed_loop(
        f"token refresh (rotation), {CONCURRENCY} clients",
        [refresh_worker(token) for _, token in users],  # type: ignore[misc]
        duration,
    )
    return [sign_in.line(), refresh.line()]


def main(duration: float = 20.0) -> list[str]:
    lines = cold_start()
    env = {
        "PB_RATE_LIMIT_PER_MINUTE": "100000000",
        "PB_RATE_LIMIT_SIGN_IN_PER_MINUTE": "100000000",
        "PB_RATE_LIMIT_SIGN_UP_PER_MINUTE": "100000000",
    }
    with stack(**env) as s:
        lines += asyncio.run(_auth_load(s.server.url, s.server.anon_key, duration))
    lines.append("argon2id: time_cost=2, memory_cost=19456 KiB, parallelism=1")
    return lines


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    for line in main(seconds):
        print(line, flush=True)
