"""A deployment as in production, on one machine: PostgreSQL (embedded, its own for this
folder), Debian's PgBouncer in transaction mode in front of it (deploy/bouncer.py), and
`pocketbizz serve` with DATABASE_URL through PgBouncer and DATABASE_DIRECT_URL straight to
PostgreSQL. PgBouncer comes from `make test` (its `pgbouncer` target installs the Debian package
when it is missing).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pgserver
import pytest
from deploy.bouncer import AUTHENTICATOR_PASSWORD, PgBouncer
from harness import ServerProcess, free_port
from messages.fake_graph import APP_SECRET, PHONE_NUMBER_ID, TOKEN, VERIFY_TOKEN, FakeGraph

from pocketbizz.db import apply_migrations
from pocketbizz.jobs.repository import apply_schema


@pytest.fixture(scope="session")
async def direct_dsn(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """This folder's own PostgreSQL (owner DSN): its in-process job worker is then the only one
    taking the jobs these tests queue."""
    pg = pgserver.get_server(tmp_path_factory.mktemp("deploy-pg"), cleanup_mode="delete")
    dsn = str(pg.get_uri())
    await apply_migrations(dsn, authenticator_password=AUTHENTICATOR_PASSWORD)
    await apply_schema(dsn)
    yield dsn
    pg.cleanup()


@pytest.fixture(scope="session")
def pgbouncer(direct_dsn: str) -> Iterator[PgBouncer]:
    parts = urlsplit(direct_dsn)
    socket_dir = parse_qs(parts.query)["host"][0]
    # Not under pytest's base temp (mode 0700, root's): PgBouncer runs as another user.
    workdir = Path(tempfile.mkdtemp(prefix="pb-pgbouncer-"))
    bouncer = PgBouncer(socket_dir, parts.path.lstrip("/") or "postgres", free_port(), workdir)
    bouncer.start()
    yield bouncer
    bouncer.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def graph() -> Iterator[FakeGraph]:
    """The WhatsApp Cloud API the sending job talks to (the job's run is what is tested)."""
    fake = FakeGraph(TOKEN, PHONE_NUMBER_ID)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def pooled_server(
    direct_dsn: str,
    pgbouncer: PgBouncer,
    graph: FakeGraph,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        # The harness passes this as DATABASE_URL: only its address counts (the pools log in
        # as authenticator), and it is PgBouncer's.
        pgbouncer.url(),
        tmp_path_factory.mktemp("deploy-data"),
        env_overrides={
            "DATABASE_DIRECT_URL": direct_dsn,
            "PB_STATEMENT_CACHE_SIZE": "0",
            "PB_AUTHENTICATOR_PASSWORD": AUTHENTICATOR_PASSWORD,
            "PB_WHATSAPP_API_URL": graph.url,
            "PB_WHATSAPP_TOKEN": TOKEN,
            "PB_WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "PB_WHATSAPP_APP_SECRET": APP_SECRET,
            "PB_WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "PB_WHATSAPP_RECEIPT_TEMPLATE": "receipt_ready",
        },
    )
    proc.start(timeout=60)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def second_pooled_server(
    direct_dsn: str, pgbouncer: PgBouncer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Another API process of the same deployment (no job worker: the first one has it).
    Processes share nothing but PostgreSQL, reached through the same PgBouncer."""
    proc = ServerProcess(
        pgbouncer.url(),
        tmp_path_factory.mktemp("deploy-data-2"),
        env_overrides={
            "DATABASE_DIRECT_URL": direct_dsn,
            "PB_STATEMENT_CACHE_SIZE": "0",
            "PB_AUTHENTICATOR_PASSWORD": AUTHENTICATOR_PASSWORD,
            "PB_JOBS_IN_PROCESS": "false",
        },
    )
    proc.start(timeout=60)
    yield proc
    proc.stop()
