"""Start what a benchmark measures: an embedded PostgreSQL and a `pocketbizz serve` process."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pgserver

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import TEST_JWT_SECRET, ServerProcess, free_port

from pocketbizz.db import apply_migrations

AUTHENTICATOR_PASSWORD = "bench-authenticator"
__all__ = ["Stack", "free_port", "stack"]


@dataclass
class Stack:
    owner_dsn: str
    server: ServerProcess
    workdir: Path
    secret: str = TEST_JWT_SECRET


@contextmanager
def stack(**env: str) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="pb-bench-") as tmp:
        workdir = Path(tmp)
        pg = pgserver.get_server(workdir / "pg", cleanup_mode="delete")  # type: ignore[attr-defined]
        dsn = str(pg.get_uri())
        asyncio.run(apply_migrations(dsn, authenticator_password=AUTHENTICATOR_PASSWORD))
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
            pg.cleanup()
