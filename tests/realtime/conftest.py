"""Fixtures of the realtime tests."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from supabase import AsyncClient

# This folder cannot be imported as the package `realtime` (that name is the official client's
# library), so the test modules import their helpers from it directly.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
async def clients() -> AsyncIterator[list[AsyncClient]]:
    """Async clients a test opens; their sockets are closed at the end."""
    opened: list[AsyncClient] = []
    yield opened
    for client in opened:
        await client.realtime.close()
