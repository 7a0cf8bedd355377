"""Drill: Redis (REDIS_URL, the shared rate-limit counts) dies while the server runs and comes
back later. Limits apply while it is up; while it is gone each process counts them in its own
memory (never a 500) and one warning says so; once it is back, Redis counts them again.

tests/ops/test_degraded.py covers a Redis that was never there; this is the loss mid-run.
Redis is Debian's `redis-server` (`make redis` installs it), on a free loopback port.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from drills.support import CALL_TIMEOUT
from harness import free_port
from ops.logged_server import LoggedServer

LIMIT = 20


def _redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise RuntimeError("redis-server is not installed: run `make redis` (Debian's package)")
    # Loopback only, nothing written to disk.
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [binary, *options, "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _until(lambda: _answers(port), 10, "redis-server listening")
    return proc


def _answers(port: int) -> bool:
    try:
        subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], check=True, capture_output=True, timeout=2
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, FileNotFoundError):
        return False
    return True


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout} s")


def _events(server: LoggedServer) -> list[str]:
    lines = server.log_path.read_text().splitlines()
    return [str(json.loads(line).get("event")) for line in lines if line.startswith("{")]


def test_redis_lost_mid_run_falls_back_per_process_then_shares_again(
    owner_dsn: str, tmp_path: Path
) -> None:
    port = free_port()
    redis = _redis(port, tmp_path)
    server = LoggedServer(
        owner_dsn,
        tmp_path,
        env_overrides={
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "PB_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        },
    )
    server.start()
    try:
        with httpx.Client(headers={"apikey": server.anon_key}, timeout=CALL_TIMEOUT) as http:

            def statuses(n: int) -> list[int]:
                return [http.get(f"{server.url}/auth/v1/settings").status_code for _ in range(n)]

            # Up: the shared budget is counted in Redis and enforced.
            up = statuses(LIMIT + 5)
            assert up[:LIMIT] == [200] * LIMIT and set(up[LIMIT:]) == {429}

            redis.kill()
            redis.wait(10)
            # Away: this process counts the budget afresh in memory; over it, 429, never a 500.
            gone = statuses(LIMIT + 5)
            assert gone[:LIMIT] == [200] * LIMIT and set(gone[LIMIT:]) == {429}
            warned = [e for e in _events(server) if e.startswith("rate-limit storage unavailable")]
            assert len(warned) == 1  # once per outage, not once per request

            redis = _redis(port, tmp_path)  # back, empty
            # Redis is tried again a few seconds after the last failure; then counting resumes
            # there (the process's own window is spent, so back in Redis is where 200s return).
            back = "rate-limit storage is back: limits apply again"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and back not in _events(server):
                statuses(1)
                time.sleep(0.2)
            assert back in _events(server)
            again = statuses(LIMIT + 5)
            assert 200 in again and set(again) <= {200, 429} and again[-1] == 429
            keys = subprocess.run(
                ["redis-cli", "-p", str(port), "--scan"], capture_output=True, text=True, check=True
            ).stdout
            assert keys.strip(), "the counts are in Redis again"
    finally:
        server.stop()
        redis.kill()
        redis.wait(10)
