"""Start what a benchmark measures: an embedded PostgreSQL and a `pocketbizz serve` process."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pgserver

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import TEST_JWT_SECRET, ServerProcess, free_port

from pocketbizz.db import apply_migrations

AUTHENTICATOR_PASSWORD = "bench-authenticator"
__all__ = ["Stack", "embedded_postgres", "free_port", "stack", "start_floor_app"]


@dataclass
class Stack:
    owner_dsn: str
    server: ServerProcess
    workdir: Path
    secret: str = TEST_JWT_SECRET


@contextmanager
def embedded_postgres(workdir: Path) -> Iterator[str]:
    """An embedded PostgreSQL under `workdir` with this tree's migrations and definitions
    applied; yields the owner's DSN and removes the cluster on exit."""
    pg = pgserver.get_server(workdir / "pg", cleanup_mode="delete")  # type: ignore[attr-defined]
    try:
        dsn = str(pg.get_uri())
        asyncio.run(apply_migrations(dsn, authenticator_password=AUTHENTICATOR_PASSWORD))
        yield dsn
    finally:
        pg.cleanup()


@contextmanager
def stack(**env: str) -> Iterator[Stack]:
    with (
        tempfile.TemporaryDirectory(prefix="pb-bench-") as tmp,
        embedded_postgres(Path(tmp)) as dsn,
    ):
        workdir = Path(tmp)
        server = ServerProcess(
            dsn,
            workdir,
            env_overrides={
                "PB_AUTHENTICATOR_PASSWORD": AUTHENTICATOR_PASSWORD,
                "PB_LOG_LEVEL": "warning",
                "PB_POOL_MAX_SIZE": "20",
                **env,
            },
        )
        server.start()
        try:
            yield Stack(dsn, server, workdir)
        finally:
            server.stop()


def start_floor_app(dsn: str, secret: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """bench/floor_app.py in its own process (log in `workdir`/floor.log): the process and its
    URL once it accepts connections."""
    port = free_port()
    log = open(workdir / "floor.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.floor_app",
            *("--dsn", dsn, "--user", "authenticator", "--password", AUTHENTICATOR_PASSWORD),
            *("--secret", secret, "--port", str(port)),
        ],
        stdout=log,
        stderr=log,
        cwd=Path(__file__).resolve().parent.parent,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the floor app did not start; see floor.log")
