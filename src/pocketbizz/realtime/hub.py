"""The hub: joined channels of this process, and the fan-out of changes and broadcasts.

Delivery rule for row changes — a channel gets a change only if its identity could SELECT
the row:
1. Pre-filter (cheap, in memory): the row's business_owner_id must equal the channel's `sub`,
   a necessary condition under the tenant policies; service_role channels bypass RLS and pass.
   Then at least one binding must cover the schema, table and event (and its row filter must
   match the announced row, when the trigger sent it).
2. Confirm (INSERT/UPDATE): read the row by primary key AS the channel's identity — role and
   claims set in one transaction, RLS applies. The row delivered is what that SELECT
   returned, so a subscriber only ever receives a row version it could read itself. Channels
   that see the same rows (same role and stable claims) share one query.
3. DELETE events cannot be re-read: they go only to channels of the old row's tenant (and
   service_role), and carry the primary key only, like Supabase with RLS.
Changes of one tenant are handled in order by one worker; tenants are spread over workers.

The triggers announce a change only while some process has registered a subscription for
its tenant and table (`registry`, migration 0007): `join` registers before the join is
answered, leaving unregisters. That is only a filter in front of the rules above.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import asyncpg
import orjson
import structlog
from prometheus_client import Counter, Gauge

from pocketbizz.db import Database, Identity
from pocketbizz.db.database import SERVICE, DatabaseConnectionLost, DatabaseUnavailable
from pocketbizz.realtime import frames
from pocketbizz.realtime.catalog import Catalog, RealtimeTable
from pocketbizz.realtime.changes import Change
from pocketbizz.realtime.channels import Binding, Channel
from pocketbizz.realtime.frames import Broadcast, Push
from pocketbizz.realtime.registry import Entry, RegistrationError, Registry, entries_for

log = structlog.get_logger("pocketbizz.realtime")

QUEUE_LIMIT = 10_000

CHANNELS = Gauge("pocketbizz_realtime_channels", "Joined realtime channels of this process")
CHANGES = Counter(
    "pocketbizz_realtime_changes_total", "Row changes announced to this process", ["outcome"]
)
FRAMES = Counter("pocketbizz_realtime_frames_total", "Frames pushed to sockets", ["event"])


class Hub:
    def __init__(self, db: Database, catalog: Catalog, *, workers: int = 4) -> None:
        self.db = db
        self.catalog = catalog
        self._all: set[Channel] = set()
        self._by_tenant: dict[str, set[Channel]] = defaultdict(set)
        self._privileged: set[Channel] = set()  # service_role: RLS does not apply
        self._by_topic: dict[tuple[str, str], set[Channel]] = defaultdict(set)
        self._queues: list[asyncio.Queue[Change]] = [
            asyncio.Queue(QUEUE_LIMIT) for _ in range(workers)
        ]
        self._workers: list[asyncio.Task[None]] = []
        self.dropped = 0
        self.registry = Registry(db)
        self._entries: dict[Channel, frozenset[Entry]] = {}  # registered per channel

    # -- registry ---------------------------------------------------------------------------
    async def join(self, channel: Channel) -> None:
        """Index a channel and register its subscriptions in the database; returns once
        changes committed from now on are announced (RegistrationError if they cannot be)."""
        self.add(channel)
        entries = self._subscriptions(channel.identity, channel)
        try:
            await self.registry.acquire(entries)
        except RegistrationError:
            self.remove(channel)
            raise
        if channel.closed or channel not in self._all:
            self.registry.release(entries)  # it left while we waited
            return
        self._entries[channel] = entries

    def add(self, channel: Channel) -> None:
        if channel not in self._all:
            self._all.add(channel)
            CHANNELS.inc()
        self._by_topic[(channel.scope, channel.topic)].add(channel)
        tenant = channel.tenant
        if tenant is not None:
            self._by_tenant[tenant].add(channel)
        elif channel.identity.role == "service_role":
            self._privileged.add(channel)

    def remove(self, channel: Channel) -> None:
        self.registry.release(self._entries.pop(channel, frozenset()))
        self._unindex(channel)

    def _unindex(self, channel: Channel) -> None:
        if channel in self._all:
            self._all.discard(channel)
            CHANNELS.dec()
        self._privileged.discard(channel)
        _discard(self._by_topic, (channel.scope, channel.topic), channel)
        tenant = channel.tenant
        if tenant is not None:
            _discard(self._by_tenant, tenant, channel)

    async def reidentify(self, channel: Channel, identity: Identity) -> None:
        """A token update: register for the new identity first (so a subscription both
        identities share never lapses), then re-index and drop the old registrations."""
        entries = self._subscriptions(identity, channel)
        if entries == self._entries.get(channel) and not channel.closed:
            # A refreshed token of the same user (the usual case): same registrations.
            self._unindex(channel)
            channel.identity = identity
            self.add(channel)
            return
        await self.registry.acquire(entries)
        old = self._entries.pop(channel, frozenset())
        self._unindex(channel)
        channel.identity = identity
        if channel.closed:
            self.registry.release(entries)
        else:
            self.add(channel)
            self._entries[channel] = entries
        self.registry.release(old)

    def _subscriptions(self, identity: Identity, channel: Channel) -> frozenset[Entry]:
        """(tenant, table) pairs whose changes this channel could receive."""
        tables: set[str] = set()
        for binding in channel.bindings:
            if binding.table is None:
                tables.update(self.catalog.tables)
            else:
                tables.add(binding.table)
        return entries_for(identity, tables)

    @property
    def channel_count(self) -> int:
        return len(self._all)

    # -- change fan-out ---------------------------------------------------------------------
    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(q)) for q in self._queues]
        self.registry.start()

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        self._entries.clear()
        await self.registry.stop()

    def submit(self, change: Change) -> None:
        """From the listener; never blocks. One tenant always lands on the same worker."""
        queue = self._queues[zlib.crc32(change.owner_id.encode()) % len(self._queues)]
        try:
            queue.put_nowait(change)
        except asyncio.QueueFull:
            self.dropped += 1
            CHANGES.labels("dropped").inc()
            log.warning("realtime queue full, change dropped", table=change.table)

    async def _work(self, queue: asyncio.Queue[Change]) -> None:
        while True:
            change = await queue.get()
            try:
                await self.deliver(change)
            except Exception:
                log.exception("realtime delivery failed", table=change.table, type=change.type)

    def _candidates(self, change: Change) -> list[tuple[Channel, list[Binding]]]:
        table = self.catalog.get(change.schema, change.table)
        if table is None:
            return []
        found = []
        now = time.time()
        for channel in (*self._by_tenant.get(change.owner_id, ()), *self._privileged):
            if channel.closed or channel.expires_at <= now:
                continue
            bindings = [
                b
                for b in channel.bindings
                if b.covers(change)
                and (b.row_filter is None or change.row is None or b.row_filter.matches(change.row))
            ]
            if bindings:
                found.append((channel, bindings))
        return found

    async def deliver(self, change: Change) -> None:
        table = self.catalog.get(change.schema, change.table)
        candidates = self._candidates(change)
        if table is None or not candidates:
            CHANGES.labels("no_subscriber").inc()
            return
        CHANGES.labels("matched").inc()
        if change.type == "DELETE":
            old_record = {col: change.key.get(col) for col in table.key}
            source = change.row or old_record
            for channel, bindings in candidates:
                self._send(channel, bindings, change, table, None, old_record, source)
            return

        # Group before any await: the identity read as is the one the group was formed by.
        groups: dict[bytes, tuple[Identity, list[tuple[Channel, list[Binding]]]]] = {}
        for channel, bindings in candidates:
            entry = groups.setdefault(channel.visibility, (channel.identity, []))
            entry[1].append((channel, bindings))
        old_record = {col: change.key.get(col) for col in table.key}
        for visibility, (identity, members) in groups.items():
            # The read is the permission check: may this identity SELECT the row?
            row = await self._read_as(identity, table, change)
            # None: invisible to it, or deleted since. A row that is gone can no more be re-read
            # than a DELETE can, so like a DELETE it goes by tenant (the pre-filter above).
            if row is None and (
                change.row is None or await self._read_as(SERVICE, table, change) is not None
            ):
                continue
            # Send the version this change wrote, not a later one the read may have seen.
            record = change.row if change.row is not None else row
            assert record is not None
            for channel, bindings in members:
                # The channel may have left, expired or switched user during the read.
                if channel.closed or channel.visibility != visibility:
                    continue
                if channel.expires_at <= time.time():
                    continue
                old = old_record if change.type == "UPDATE" else None
                self._send(channel, bindings, change, table, record, old, record)

    async def _read_as(
        self, identity: Identity, table: RealtimeTable, change: Change
    ) -> dict[str, Any] | None:
        try:
            params = [_as_text(change.key[col]) for col in table.key]
        except KeyError:
            return None
        try:
            async with self.db.transaction(identity) as conn:
                text = await conn.fetchval(table.row_sql(), *params)
        except asyncpg.PostgresError as exc:
            # e.g. no SELECT grant for this role: it cannot read the row, so it gets nothing.
            log.info("realtime read refused", table=table.name, sqlstate=exc.sqlstate)
            return None
        except (DatabaseUnavailable, DatabaseConnectionLost) as exc:
            # The database is going away: the listener's reconnect tells joined channels to
            # rejoin and re-read, so this one change is not the only news they get.
            log.warning("realtime read lost its database", table=table.name, error=str(exc.code))
            return None
        if text is None:
            return None
        row: dict[str, Any] = frames.loads_exact(text)
        return row

    def _send(
        self,
        channel: Channel,
        bindings: list[Binding],
        change: Change,
        table: RealtimeTable,
        record: dict[str, Any] | None,
        old_record: dict[str, Any] | None,
        filter_source: dict[str, Any],
    ) -> None:
        matched = [
            b for b in bindings if b.row_filter is None or b.row_filter.matches(filter_source)
        ]
        if not matched:
            return
        data: dict[str, Any] = {
            "schema": change.schema,
            "table": change.table,
            "commit_timestamp": change.commit_timestamp,
            "type": change.type,
            "columns": table.columns,
            "errors": None,
        }
        select = _common_select(matched)
        if record is not None:
            data["record"] = _project(record, select)
        if old_record is not None:
            data["old_record"] = old_record
        FRAMES.labels("postgres_changes").inc()
        channel.push(
            Push(channel.topic, "postgres_changes", {"ids": [b.id for b in matched], "data": data})
        )

    # -- broadcast and presence -------------------------------------------------------------
    def broadcast(self, scope: str, topic: str, message: Broadcast, sender: int | None) -> None:
        """Deliver a broadcast to this process's channels of one scope and topic."""
        push = Push(topic, "broadcast", message)  # encoded once per protocol version
        now = time.time()
        for channel in list(self._by_topic.get((scope, topic), ())):
            if channel.closed or channel.expires_at <= now:
                continue
            if not channel.read_broadcast or (
                channel.serial == sender and not channel.broadcast_self
            ):
                continue
            FRAMES.labels("broadcast").inc()
            channel.push(push)

    def presence_diff(
        self, scope: str, topic: str, joins: dict[str, Any], leaves: dict[str, Any]
    ) -> None:
        """Tell this process's channels of one scope and topic who came and went."""
        push = Push(topic, "presence_diff", {"joins": joins, "leaves": leaves})
        now = time.time()
        for channel in list(self._by_topic.get((scope, topic), ())):
            if channel.closed or channel.expires_at <= now:
                continue
            if not (channel.presence_enabled and channel.read_presence):
                continue
            FRAMES.labels("presence_diff").inc()
            channel.push(push)


def _discard(index: dict[Any, set[Channel]], key: Any, channel: Channel) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(channel)
        if not members:
            del index[key]


def _as_text(value: Any) -> str:
    return orjson.dumps(value).decode() if isinstance(value, dict | list) else str(value)


def _common_select(bindings: Iterable[Binding]) -> set[str] | None:
    """Columns to send: the union of the matching bindings' `select`, or every column."""
    columns: set[str] = set()
    for binding in bindings:
        if binding.select is None:
            return None
        columns.update(binding.select)
    return columns


def _project(record: dict[str, Any], columns: set[str] | None) -> dict[str, Any]:
    if columns is None:
        return record
    return {k: v for k, v in record.items() if k in columns}
