"""The in-memory rate-limit counter gives `limits`' answers (the same algorithm and arithmetic,
without its storage layer)."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from pocketbizz.gateway.ratelimit import LocalWindows


def test_same_answers_as_limits_memory_storage() -> None:
    async def compare() -> None:
        reference = SlidingWindowCounterRateLimiter(MemoryStorage())
        local = LocalWindows()
        item = RateLimitItemPerMinute(10)
        # Stay clear of a window boundary: both must see the same window.
        if time.time() % 60 > 55:
            await asyncio.sleep(60 - time.time() % 60 + 0.1)
        for n in range(14):
            key = ("user", "a") if n % 3 else ("ip", "1.2.3.4")
            allowed = await reference.hit(item, *key)
            stats = await reference.get_window_stats(item, *key)
            now = time.time()
            mine = local.hit(item, item.key_for(*key), now)
            assert mine[0] == allowed, n
            assert mine[1] == max(0, stats.remaining), n
            assert abs(math.ceil(mine[2] - now) - math.ceil(stats.reset_time - now)) <= 1, n

    asyncio.run(compare())


def test_same_answers_as_limits_across_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """On one clock (limits reads `time.time`), across window boundaries: the weighting of the
    previous window, refusals and the reset time agree request by request."""
    clock = [60_000.0 + 50]  # ten seconds before a minute's window ends
    monkeypatch.setattr(time, "time", lambda: clock[0])

    async def compare() -> None:
        reference = SlidingWindowCounterRateLimiter(MemoryStorage())
        local = LocalWindows()
        item = RateLimitItemPerMinute(20)
        for n in range(400):
            clock[0] += 0.37 if n % 7 else 2.9
            key = ("user", "a") if n % 4 else ("ip", "1.2.3.4")
            allowed = await reference.hit(item, *key)
            stats = await reference.get_window_stats(item, *key)
            mine = local.hit(item, item.key_for(*key), clock[0])
            assert mine == (allowed, max(0, stats.remaining), stats.reset_time), n

    asyncio.run(compare())


def test_sliding_window_arithmetic() -> None:
    windows = LocalWindows()
    item = RateLimitItemPerSecond(4)
    key = item.key_for("ip", "5.6.7.8")
    # Window 100: four allowed, the fifth refused.
    results = [windows.hit(item, key, 100.0 + i / 10) for i in range(5)]
    assert [r[0] for r in results] == [True, True, True, True, False]
    assert [r[1] for r in results] == [3, 2, 1, 0, 0]
    # A quarter into window 101, the previous window still weighs 3/4 × 4 = 3: one more fits.
    assert windows.hit(item, key, 101.25)[:2] == (True, 0)
    # The count is floored: 0.7 × 4 + 1 = 3.8 still lets one in, 0.69 × 4 + 2 = 4.76 does not.
    assert windows.hit(item, key, 101.3)[:2] == (True, 0)
    assert windows.hit(item, key, 101.31)[0] is False
    # Half into window 102, window 101's two requests weigh 1; window 100 no longer counts.
    assert windows.hit(item, key, 102.5)[:2] == (True, 2)
    # A key unused for longer than a window starts afresh.
    assert windows.hit(item, key, 200.0)[:2] == (True, 3)
