"""Rate limits on every surface (the seed's 100 requests/minute per user, per IP for anon).

The algorithm is `limits`' sliding-window counter. Counts live in memory by default and in
Redis when REDIS_URL is set, so several server processes share one user's budget.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from pocketbizz.errors import RateLimited
from pocketbizz.gateway.metrics import RATE_LIMITED
from pocketbizz.settings import Settings


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        storage: Storage
        if settings.redis_url:
            uri = settings.redis_url
            if not uri.startswith("async+"):
                uri = "async+" + uri
            storage = RedisStorage(uri, implementation="redispy")
        else:
            storage = MemoryStorage()
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self.general = RateLimitItemPerMinute(settings.rate_limit_per_minute)
        self.sign_in = RateLimitItemPerMinute(settings.rate_limit_sign_in_per_minute)
        self.sign_up = RateLimitItemPerMinute(settings.rate_limit_sign_up_per_minute)

    async def hit(self, item: RateLimitItem, *key: str) -> Verdict:
        allowed = await self._limiter.hit(item, *key)
        stats = await self._limiter.get_window_stats(item, *key)
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, item.amount, max(0, stats.remaining), reset)

    async def enforce(self, item: RateLimitItem, surface: str, *key: str) -> Verdict:
        """Count one request; raise 429 with Retry-After when over the limit."""
        verdict = await self.hit(item, *key)
        if not verdict.allowed:
            RATE_LIMITED.labels(surface).inc()
            raise RateLimited(
                "Too many requests: rate limit exceeded, retry later",
                headers={**verdict.headers(), "Retry-After": str(verdict.reset_seconds)},
            )
        return verdict
