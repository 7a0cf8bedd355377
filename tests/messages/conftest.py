"""A server configured for WhatsApp, pointed at a local fake of the Cloud API, with its own
database: its in-process job worker is then the only one that takes the sending jobs (the
session's other servers, not configured for WhatsApp, never see them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pgserver
import pytest
from harness import ServerProcess
from messages.fake_graph import APP_SECRET, PHONE_NUMBER_ID, TOKEN, VERIFY_TOKEN, FakeGraph

from pocketbizz.db import Database, apply_migrations
from pocketbizz.jobs.repository import apply_schema
from pocketbizz.settings import Settings


@pytest.fixture(scope="module")
def graph() -> Iterator[FakeGraph]:
    fake = FakeGraph(TOKEN, PHONE_NUMBER_ID)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _fresh_graph(graph: FakeGraph) -> None:
    graph.reset()


def whatsapp_env(graph: FakeGraph) -> dict[str, str]:
    return {
        "PB_WHATSAPP_API_URL": graph.url,
        "PB_WHATSAPP_TOKEN": TOKEN,
        "PB_WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "PB_WHATSAPP_APP_SECRET": APP_SECRET,
        "PB_WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "PB_WHATSAPP_RECEIPT_TEMPLATE": "receipt_ready",
    }


@pytest.fixture(scope="module")
async def wa_dsn(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    pg = pgserver.get_server(tmp_path_factory.mktemp("wa-pg"), cleanup_mode="delete")
    dsn = str(pg.get_uri())
    await apply_migrations(dsn, authenticator_password="test-authenticator")
    await apply_schema(dsn)  # the job queue's tables, before the first send-receipt
    yield dsn
    pg.cleanup()


@pytest.fixture(scope="module")
def wa_server(
    wa_dsn: str, graph: FakeGraph, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        wa_dsn,
        tmp_path_factory.mktemp("wa-data"),
        env_overrides={"PB_AUTHENTICATOR_PASSWORD": "test-authenticator", **whatsapp_env(graph)},
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def wa_settings(graph: FakeGraph, wa_server: ServerProcess, tmp_path: Path) -> Settings:
    """The settings a sending worker of that server has."""
    return Settings(
        public_url=wa_server.url,
        data_dir=tmp_path,
        whatsapp_api_url=graph.url,
        whatsapp_token=TOKEN,
        whatsapp_phone_number_id=PHONE_NUMBER_ID,
        whatsapp_receipt_template="receipt_ready",
        whatsapp_timeout_s=10,
    )


@pytest.fixture
async def db(wa_dsn: str) -> AsyncIterator[Database]:
    database = Database(wa_dsn, user="authenticator", password="test-authenticator", min_size=1)
    await database.open()
    yield database
    await database.close()
