"""Start and stop the auth service's background work: the revocation registry (every process)
and the periodic purge of spent refresh tokens, idle sessions and old tombstones."""

from __future__ import annotations

import asyncio

from pocketbizz.auth import revocation
from pocketbizz.state import AppState


async def startup(state: AppState) -> None:
    registry = revocation.start_registry(state.db, state.settings.jwt_expiry_seconds)
    # Bounded: a database that is slow to answer must not hang start-up forever.
    async with asyncio.timeout(30):
        await registry.ready()


async def shutdown(state: AppState) -> None:
    await revocation.stop_registry(state.db)
