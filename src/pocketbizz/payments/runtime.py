"""The payments' owner pool: settlement writes rows no client may write, for a tenant named by
the provider's evidence, not by a signed-in user."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from pocketbizz.state import AppState

_pool: asyncpg.Pool | None = None


def owner_pool() -> asyncpg.Pool:
    if _pool is None:
        raise RuntimeError("the payments pool is not open (no DATABASE_URL?)")
    return _pool


async def startup(state: AppState) -> None:
    global _pool
    if state.settings.database_url:
        _pool = await asyncpg.create_pool(state.settings.database_url, min_size=0, max_size=2)


async def shutdown(state: AppState) -> None:
    global _pool
    if _pool is not None:
        await _pool.close()
        _pool = None
