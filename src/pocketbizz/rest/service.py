"""The data API's singleton: the schema cache, kept fresh by NOTIFY, and a small cache of
built read statements keyed by the request's shape (the same list query from many tenants
builds its SQL once)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import structlog

from pocketbizz.rest.openapi import SchemaNotes, load_notes
from pocketbizz.rest.schema_cache import SchemaCache
from pocketbizz.state import AppState

log = structlog.get_logger("pocketbizz.rest")

# PostgREST's channel (`NOTIFY pgrst, 'reload schema'`) and ours; either reloads the cache.
RELOAD_CHANNELS = ("pgrst", "pocketbizz_schema")
APPLICATION_NAME = "pocketbizz-rest-schema"
SERVICE_KEY = "rest"  # where the singleton lives in AppState.services
_PLAN_CACHE_SIZE = 2048
_KEEPALIVE_SECONDS = 30.0
_MAX_BACKOFF_SECONDS = 10.0


class RestService:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.cache = SchemaCache({}, [], {})
        self.notes = SchemaNotes()  # column comments and enums for the OpenAPI document
        settings = state.settings
        self.max_rows = settings.rest_max_rows
        self.max_query_bytes = settings.rest_max_query_bytes
        self.max_filter_depth = settings.rest_max_filter_depth
        self.max_embed_depth = settings.rest_max_embed_depth
        self.max_response_bytes = settings.rest_max_response_bytes
        self.aggregates_enabled = settings.rest_aggregates_enabled
        self.plans: dict[Any, tuple[str, list[Any]]] = {}
        self._listen_task: asyncio.Task[None] | None = None
        self._reload_task: asyncio.Task[None] | None = None
        # Set by a NOTIFY that arrives while a reload runs: that reload may have read the
        # catalog before the change, so it runs again.
        self._dirty = False

    async def load(self) -> None:
        # One REPEATABLE READ snapshot for both: the notes describe the cache's tables.
        async with (
            self.state.db.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            cache = await SchemaCache.read(conn)  # type: ignore[arg-type]
            notes = await load_notes(conn)
        self.cache, self.notes = cache, notes
        self.plans = {}

    def listen(self) -> None:
        self._listen_task = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        """Hold one LISTEN connection, re-opened when it drops; every (re)connect reloads,
        since a change announced while disconnected is not replayed."""
        backoff = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self.state.db.connect_listener(APPLICATION_NAME)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                for channel in RELOAD_CHANNELS:
                    await conn.add_listener(channel, self._on_notify)
                # Catch up on anything announced before (or while) this connection was down.
                self._schedule_reload()
                backoff = 0.5
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), _KEEPALIVE_SECONDS)
                    except TimeoutError:
                        await conn.fetchval("select 1", timeout=10)
            except Exception as exc:  # keep listening whatever happened to the connection
                log.warning("schema listener lost its connection", error=str(exc))
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        self._schedule_reload()

    def _schedule_reload(self) -> None:
        # A burst of DDL notifies once per statement: reload once, after the burst.
        self._dirty = True
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        while self._dirty:
            self._dirty = False
            await asyncio.sleep(0.05)
            try:
                await self.load()
                log.info("schema cache reloaded", tables=len(self.cache.tables))
            except (OSError, asyncpg.PostgresError) as exc:
                log.error("schema cache reload failed", error=str(exc))

    async def close(self) -> None:
        for task in (self._listen_task, self._reload_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._listen_task = self._reload_task = None

    def remember(self, key: Any, plan: tuple[str, list[Any]], built_with: SchemaCache) -> None:
        if built_with is not self.cache:
            return  # the schema was reloaded while this plan was being built
        if len(self.plans) >= _PLAN_CACHE_SIZE:
            self.plans.clear()
        self.plans[key] = plan
