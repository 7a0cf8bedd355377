"""The data API's singleton: the schema cache, kept fresh by NOTIFY, and a small cache of
built read statements keyed by the request's shape (the same list query from many tenants,
or `id=eq.X` for any X, builds its SQL once)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from pocketbizz.db.notifications import Subscription
from pocketbizz.rest.openapi import SchemaNotes, load_notes
from pocketbizz.rest.schema_cache import SchemaCache
from pocketbizz.state import AppState

log = structlog.get_logger("pocketbizz.rest")

# PostgREST's channel (`NOTIFY pgrst, 'reload schema'`) and ours; either reloads the cache.
RELOAD_CHANNELS = ("pgrst", "pocketbizz_schema")
SERVICE_KEY = "rest"  # where the singleton lives in AppState.services
_STATEMENT_CACHE_SIZE = 2048


@dataclass(frozen=True)
class ReadTemplate:
    """A built read statement for a query shape (`query.Shape`): its parameters with the
    shape's taken-out values at `slots`, and the offset the query asked for."""

    statement: str
    params: tuple[Any, ...]
    slots: tuple[int, ...]
    offset: int

    def fill(self, values: tuple[str, ...]) -> list[Any]:
        params = list(self.params)
        for slot, value in zip(self.slots, values, strict=True):
            params[slot] = value
        return params


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
        # Built read statements by query shape (not the plans of plan.py).
        self.statements: dict[Any, ReadTemplate] = {}
        self._subscription: Subscription | None = None
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
            cache = await SchemaCache.read(
                conn,  # type: ignore[arg-type]
                self.state.settings.rest_schema_list,
            )
            notes = await load_notes(conn)
        self.cache, self.notes = cache, notes
        self.statements = {}

    async def listen(self) -> None:
        """Follow the reload channels on the process's shared LISTEN connection."""
        self._subscription = await self.state.notifications.subscribe(
            RELOAD_CHANNELS, self._on_notify, on_connect=self._on_connect
        )

    async def _on_connect(self, resumed: bool) -> None:
        # Every (re)connect reloads: a change announced while disconnected is not replayed.
        self._schedule_reload()

    def _on_notify(self, channel: str, payload: str) -> None:
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
        if self._subscription is not None:
            await self.state.notifications.unsubscribe(self._subscription)
            self._subscription = None
        if self._reload_task is not None:
            self._reload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reload_task
            self._reload_task = None

    def remember(self, key: Any, statement: ReadTemplate, built_with: SchemaCache) -> None:
        if built_with is not self.cache:
            return  # the schema was reloaded while this statement was being built
        if len(self.statements) >= _STATEMENT_CACHE_SIZE:
            self.statements.clear()
        self.statements[key] = statement
