"""Rate limits on every surface (the seed's 100 requests/minute per user, per IP for anon).

The algorithm is `limits`' sliding-window counter. Counts live in memory by default and in
Redis when REDIS_URL is set, so several server processes share one user's budget. If Redis
fails, each process falls back to counting in its own memory (each process then allows the
full budget: the limit per process, not shared) rather than answer 500s: it logs a warning
once per outage, counts each such request in a metric, and tries Redis again after a short
pause.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError

from pocketbizz.errors import RateLimited
from pocketbizz.gateway.metrics import RATE_LIMIT_UNAVAILABLE, RATE_LIMITED
from pocketbizz.settings import Settings

log = structlog.get_logger("pocketbizz.ratelimit")

# While Redis is failing, requests skip it for this long instead of each waiting on a timeout.
_RETRY_AFTER_FAILURE_SECONDS = 5.0
_REDIS_TIMEOUT_SECONDS = 2.0  # generous: a loaded machine is not an outage


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

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The same headers as an ASGI response's header list (lower-case names)."""
        return [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset_seconds).encode()),
        ]


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        storage: Storage
        if settings.redis_url:
            uri = settings.redis_url
            if not uri.startswith("async+"):
                uri = "async+" + uri
            storage = RedisStorage(
                uri,
                implementation="redispy",
                wrap_exceptions=True,
                socket_timeout=_REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
            )
        else:
            storage = MemoryStorage()
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        # In memory, the same counter without `limits`' storage layer (see LocalWindows).
        self._local = LocalWindows() if not settings.redis_url else None
        # Where a Redis outage's requests are counted instead.
        self._fallback = LocalWindows()
        self.general = RateLimitItemPerMinute(settings.rate_limit_per_minute)
        self.sign_in = RateLimitItemPerMinute(settings.rate_limit_sign_in_per_minute)
        self.sign_up = RateLimitItemPerMinute(settings.rate_limit_sign_up_per_minute)
        self.webhooks = RateLimitItemPerMinute(settings.rate_limit_webhooks_per_minute)
        self._unavailable_until = 0.0  # monotonic time before which storage is not tried

    async def hit(self, item: RateLimitItem, *key: str) -> Verdict:
        """Count one request: in memory, in Redis, or in this process while Redis is away."""
        if self._local is not None:
            return self._count_locally(self._local, item, key)
        if time.monotonic() < self._unavailable_until:
            RATE_LIMIT_UNAVAILABLE.inc()
            return self._count_locally(self._fallback, item, key)
        try:
            allowed = await self._limiter.hit(item, *key)
            stats = await self._limiter.get_window_stats(item, *key)
        except (StorageError, OSError) as exc:
            self._storage_failed(exc)
            return self._count_locally(self._fallback, item, key)
        if self._unavailable_until:
            self._unavailable_until = 0.0
            log.warning("rate-limit storage is back: limits apply again")
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, item.amount, max(0, stats.remaining), reset)

    @staticmethod
    def _count_locally(windows: LocalWindows, item: RateLimitItem, key: tuple[str, ...]) -> Verdict:
        now = time.time()
        allowed, remaining, reset_at = windows.hit(item, item.key_for(*key), now)
        return Verdict(allowed, item.amount, remaining, max(1, math.ceil(reset_at - now)))

    def _storage_failed(self, exc: Exception) -> None:
        RATE_LIMIT_UNAVAILABLE.inc()
        if not self._unavailable_until:
            log.warning(
                "rate-limit storage unavailable: limits count per process until it is back",
                error=str(getattr(exc, "storage_error", exc)) or type(exc).__name__,
            )
        self._unavailable_until = time.monotonic() + _RETRY_AFTER_FAILURE_SECONDS

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


class LocalWindows:
    """`limits`' sliding-window counter kept in this process's memory, with the same arithmetic
    as its MemoryStorage and SlidingWindowCounterRateLimiter (so the same requests are refused
    and the same RateLimit-* values sent) but without that storage layer: its async calls,
    locks and expiry task took ~8% of a cheap request's time (two storage calls per request).

    Windows are aligned to multiples of the item's expiry; a request is allowed while
    floor(previous × the part of the previous window still in the sliding window + current)
    stays within the limit."""

    _PRUNE_AT = 50_000  # keys held before windows older than the previous one are dropped

    def __init__(self) -> None:
        # key → (window number, that window's count, the count of the window before it)
        self._windows: dict[str, tuple[int, int, int]] = {}

    def hit(self, item: RateLimitItem, key: str, now: float) -> tuple[bool, int, float]:
        """Count one request at `now`: (allowed, remaining, when the next slot frees)."""
        expiry = item.get_expiry()
        window = int(now // expiry)
        current, previous = self._counts(key, window)
        # As limits computes it: the previous window's remaining weight, in seconds.
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous else 0.0
        weighted = previous * previous_ttl / expiry + current
        allowed = math.floor(weighted) + 1 <= item.amount
        if allowed:
            current += 1
            weighted += 1
            if len(self._windows) >= self._PRUNE_AT:
                self._prune(window)
            self._windows[key] = (window, current, previous)
        remaining = max(0, item.amount - math.floor(weighted))
        resets = []
        if previous:
            resets.append(previous_ttl % (expiry / previous))
        if current:
            resets.append(((1 - ((now / expiry) % 1)) * expiry + expiry) % expiry)
        return allowed, remaining, now + min(resets) if resets else now

    def _counts(self, key: str, window: int) -> tuple[int, int]:
        entry = self._windows.get(key)
        if entry is None or entry[0] < window - 1:
            return 0, 0
        if entry[0] == window - 1:
            return 0, entry[1]
        return entry[1], entry[2]

    def _prune(self, window: int) -> None:
        self._windows = {k: v for k, v in self._windows.items() if v[0] >= window - 1}
