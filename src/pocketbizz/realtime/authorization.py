"""Private channels: the policies on realtime.messages decide (migration 0013).

As Supabase's Realtime Authorization: the checks run as the channel's user (role, claims and
`realtime.topic`, the channel name, set for one transaction) and are always rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from pocketbizz.db import Database, Identity

_ROLES = frozenset({"anon", "authenticated", "service_role"})


@dataclass(frozen=True)
class ReadRights:
    broadcast: bool
    presence: bool

    @property
    def any(self) -> bool:
        return self.broadcast or self.presence


class _RollBack(Exception):
    """Leaves the check's transaction without committing anything."""


def _refused_role(identity: Identity) -> bool:
    return identity.role not in _ROLES


# A policy is user SQL: bounded like a request's statements.
_SET_USER = (
    "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true),"
    " set_config('realtime.topic', $3, true), set_config('statement_timeout', '5s', true)"
)


async def read_rights(db: Database, identity: Identity, sub_topic: str) -> ReadRights:
    """Which extensions of this topic the identity may receive (SELECT)."""
    if _refused_role(identity):
        return ReadRights(False, False)
    seen: set[str] = set()
    async with db.pool.acquire() as conn:
        try:
            async with conn.transaction():
                probes = await conn.fetch(
                    "select extension, id from pb_internal.realtime_probe($1)", sub_topic
                )
                await conn.execute(_SET_USER, identity.role, identity.claims_json, sub_topic)
                rows = await conn.fetch(
                    "select extension from realtime.messages where topic = $1 and id = any($2)",
                    sub_topic,
                    [p["id"] for p in probes],
                )
                seen = {r["extension"] for r in rows}
                raise _RollBack
        except _RollBack:
            pass
    return ReadRights("broadcast" in seen, "presence" in seen)


async def may_send(db: Database, identity: Identity, sub_topic: str, extension: str) -> bool:
    """May the identity send on this topic (INSERT of a `broadcast` or `presence` row)?"""
    if _refused_role(identity):
        return False
    allowed = False
    async with db.pool.acquire() as conn:
        try:
            async with conn.transaction():
                await conn.execute(_SET_USER, identity.role, identity.claims_json, sub_topic)
                try:
                    await conn.execute(
                        "insert into realtime.messages (topic, extension) values ($1, $2)",
                        sub_topic,
                        extension,
                    )
                    allowed = True
                except asyncpg.InsufficientPrivilegeError:
                    allowed = False
                raise _RollBack
        except _RollBack:
            pass
    return allowed
