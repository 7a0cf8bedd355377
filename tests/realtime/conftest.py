"""Fixtures of the realtime tests."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from supabase import AsyncClient

# This folder cannot be imported as the package `realtime` (that name is the official client's
# library), so the test modules import their helpers from it directly.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
async def notes(owner_dsn: str) -> AsyncIterator[Any]:
    """Notifications on the realtime channel (parsed, numbers exact), heard by a test
    connection of the owner: what the triggers announce, whoever listens."""
    from rt_helpers import Inbox

    from pocketbizz.realtime.listener import CHANGES_CHANNEL

    inbox = Inbox()
    conn = await asyncpg.connect(owner_dsn)

    def on_note(_c: Any, _pid: int, _channel: str, payload: str) -> None:
        inbox(json.loads(payload, parse_float=Decimal))

    await conn.add_listener(CHANGES_CHANNEL, on_note)
    yield inbox
    await conn.close()


@pytest.fixture
async def clients() -> AsyncIterator[list[AsyncClient]]:
    """Async clients a test opens; their sockets are closed at the end."""
    opened: list[AsyncClient] = []
    yield opened
    for client in opened:
        await client.realtime.close()
