"""Presence: who is tracked on a channel, shared by every server process (migration 0012).

Shapes are Phoenix.Presence's, as supabase/realtime sends them: a state is
`{key: {"metas": [{...meta, "phx_ref": ref}]}}`, a diff `{"joins": state, "leaves": state}`;
tracking again with a new payload is a join whose meta carries `phx_ref_prev` plus a leave of
the old meta. A channel that leaves (or whose socket closes) is untracked. Rows live in
`pb_internal.realtime_presence`; each change is written and NOTIFYed in one statement and
delivered here at once (the listener skips notes of its own process).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid
import weakref
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from pocketbizz.db import Database
from pocketbizz.realtime.channels import Channel
from pocketbizz.realtime.hub import Hub

log = structlog.get_logger("pocketbizz.realtime")

REFRESH_SECONDS = 30.0
TTL_SECONDS = 90
# NOTIFY carries a diff between processes and caps a body at 8000 bytes; an update carries the
# old and the new meta.
MAX_META_BYTES = 3_000
_STOP_TIMEOUT_SECONDS = 5.0

State = dict[str, dict[str, list[dict[str, Any]]]]


class PresenceError(ValueError):
    """A track the server refuses; the reason goes back to the client."""


@dataclass(frozen=True)
class Tracked:
    scope: str
    topic: str
    key: str
    ref: str
    meta: dict[str, Any]

    def entry(self, **extra: Any) -> dict[str, Any]:
        return {**self.meta, "phx_ref": self.ref, **extra}


def _new_ref() -> str:
    # Phoenix refs are opaque base64 strings, unique per presence.
    return "F" + base64.urlsafe_b64encode(secrets.token_bytes(9)).decode()


def group(rows: list[tuple[str, dict[str, Any]]]) -> State:
    """Entries by presence key, in order: Phoenix.Presence.group."""
    state: State = {}
    for key, entry in rows:
        state.setdefault(key, {"metas": []})["metas"].append(entry)
    return state


class PresenceBook:
    def __init__(self, db: Database, hub: Hub, origin: str) -> None:
        self.db = db
        self.hub = hub
        self.origin = origin  # the listener's process id: our own notes are not re-delivered
        self.server_id = uuid.uuid4()
        self._tracked: dict[Channel, Tracked] = {}
        self._locks: weakref.WeakKeyDictionary[Channel, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._pending: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh_loop())

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
            self._refresher = None
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        self._tracked.clear()
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_SECONDS):
                await self._remove(self.server_id)
        except Exception as exc:  # the rows expire, and another process announces them
            log.warning("realtime presence removal at shutdown failed", error=str(exc))

    # -- channels ---------------------------------------------------------------------------
    async def state(self, scope: str, topic: str) -> State:
        async with self.db.pool.acquire() as conn:
            rows = await conn.fetch(
                "select presence_key, presence_ref, meta::text as meta"
                " from pb_internal.realtime_presence_list($1, $2)",
                scope,
                topic,
            )
        return group(
            [
                (r["presence_key"], {**orjson.loads(r["meta"]), "phx_ref": r["presence_ref"]})
                for r in rows
            ]
        )

    async def track(self, channel: Channel, meta: Any) -> None:
        if not isinstance(meta, dict):
            raise PresenceError("presence payload must be an object")
        if len(orjson.dumps(meta)) > MAX_META_BYTES:
            raise PresenceError(f"presence payload too large (at most {MAX_META_BYTES} bytes)")
        # One change of a channel at a time: a leave racing a track must find its row.
        async with self._lock(channel):
            if channel.closed:
                return
            previous = self._tracked.get(channel)
            if previous is not None and previous.meta == meta:
                return  # unchanged: no diff, as Phoenix
            scope, topic = channel.scope, channel.topic
            if previous is not None and (previous.scope, previous.topic) != (scope, topic):
                await self._untrack(channel)  # the token changed user: leave the old scope
                previous = None
            tracked = Tracked(scope, topic, channel.presence_key, _new_ref(), meta)
            prev_ref = {"phx_ref_prev": previous.ref} if previous is not None else {}
            joins = group([(tracked.key, tracked.entry(**prev_ref))])
            leaves = group([(previous.key, previous.entry())]) if previous is not None else {}
            await self._change(
                scope,
                topic,
                joins=[{"key": tracked.key, "ref": tracked.ref, "meta": meta}],
                leave_refs=[previous.ref] if previous is not None else [],
                diff=(joins, leaves),
            )
            self._tracked[channel] = tracked

    async def untrack(self, channel: Channel) -> None:
        async with self._lock(channel):
            await self._untrack(channel)

    async def _untrack(self, channel: Channel) -> None:
        tracked = self._tracked.get(channel)
        if tracked is None:
            return
        leaves = group([(tracked.key, tracked.entry())])
        await self._change(
            tracked.scope, tracked.topic, joins=[], leave_refs=[tracked.ref], diff=({}, leaves)
        )
        del self._tracked[channel]

    def _lock(self, channel: Channel) -> asyncio.Lock:
        lock = self._locks.get(channel)
        if lock is None:
            lock = self._locks[channel] = asyncio.Lock()
        return lock

    def forget(self, channel: Channel) -> None:
        """A channel that left or closed: untrack it in the background (after a track of it
        still being written, which holds the channel's lock)."""
        lock = self._locks.get(channel)
        if channel not in self._tracked and (lock is None or not lock.locked()):
            return
        task = asyncio.get_running_loop().create_task(self._untrack_quietly(channel))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _untrack_quietly(self, channel: Channel) -> None:
        try:
            await self.untrack(channel)
        except Exception as exc:  # the row expires and a sweep announces the leave
            log.warning("realtime presence untrack failed", error=str(exc))

    # -- database ---------------------------------------------------------------------------
    async def _change(
        self,
        scope: str,
        topic: str,
        *,
        joins: list[dict[str, Any]],
        leave_refs: list[str],
        diff: tuple[State, State],
    ) -> None:
        note = self._note(scope, topic, *diff)
        async with self.db.pool.acquire() as conn:
            await conn.execute(
                "select pb_internal.realtime_presence_change($1, $2, $3, $4::text::jsonb, $5,"
                " $6, $7)",
                self.server_id,
                scope,
                topic,
                orjson.dumps(joins).decode(),
                leave_refs,
                TTL_SECONDS,
                note,
            )
        self.hub.presence_diff(scope, topic, *diff)

    def _note(self, scope: str, topic: str, joins: State, leaves: State) -> str:
        body = {
            "origin": self.origin,
            "kind": "presence",
            "scope": scope,
            "topic": topic,
            "joins": joins,
            "leaves": leaves,
        }
        return orjson.dumps(body).decode()

    async def _remove(self, server_id: uuid.UUID | None) -> None:
        """Remove presences (expired ones, or one server's) and announce them as leaves."""
        async with self.db.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "select scope, topic, presence_key, presence_ref, meta::text as meta"
                " from pb_internal.realtime_presence_remove($1)",
                server_id,
            )
            gone: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = defaultdict(list)
            for r in rows:
                entry = {**orjson.loads(r["meta"]), "phx_ref": r["presence_ref"]}
                gone[(r["scope"], r["topic"])].append((r["presence_key"], entry))
            for (scope, topic), entries in gone.items():
                note = self._note(scope, topic, {}, group(entries))
                await conn.execute("select pg_catalog.pg_notify('pocketbizz_broadcast', $1)", note)
        for (scope, topic), entries in gone.items():
            self.hub.presence_diff(scope, topic, {}, group(entries))

    async def refresh(self) -> None:
        async with self.db.pool.acquire() as conn:
            await conn.execute(
                "select pb_internal.realtime_presence_refresh($1, $2)", self.server_id, TTL_SECONDS
            )
        await self._remove(None)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("realtime presence refresh failed", error=str(exc))
