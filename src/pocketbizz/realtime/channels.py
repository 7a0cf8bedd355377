"""A joined channel: who it runs as, its `postgres_changes` bindings and broadcast settings."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from pocketbizz.db import Identity
from pocketbizz.gateway.tokens import TokenError, decode_token
from pocketbizz.realtime.catalog import SCHEMA, Catalog
from pocketbizz.realtime.changes import CHANGE_TYPES, Change
from pocketbizz.realtime.filters import FilterError, RowFilter, parse_filter
from pocketbizz.realtime.frames import Push

MAX_BINDINGS = 100
_TOKEN_ROLES = frozenset({"anon", "authenticated", "service_role"})
# Claims that differ between two sessions of one user without changing what they may read.
_VOLATILE_CLAIMS = frozenset({"exp", "iat", "nbf", "jti", "session_id", "amr"})
# Binding ids are non-zero ints, unique within the process (the client matches them by value).
_binding_ids = itertools.count(1000)
_channel_serials = itertools.count(1)


class JoinError(ValueError):
    """Why a join (or token update) is refused; sent back as the reply's reason."""


@dataclass(frozen=True)
class Binding:
    id: int
    event: str  # "*" or a change type
    schema: str
    table: str | None  # None: every realtime table of the schema
    row_filter: RowFilter | None
    select: tuple[str, ...] | None
    echo: dict[str, Any]  # the binding exactly as the client sent it, plus "id"

    def covers(self, change: Change) -> bool:
        """Schema, table and event match; the row filter is checked separately."""
        return (
            self.schema == change.schema
            and (self.table is None or self.table == change.table)
            and (self.event == "*" or self.event == change.type)
        )


def parse_bindings(raw: Any, catalog: Catalog) -> list[Binding]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise JoinError("config.postgres_changes must be a list")
    if len(raw) > MAX_BINDINGS:
        raise JoinError(f"too many postgres_changes bindings (at most {MAX_BINDINGS})")
    return [_parse_binding(item, catalog) for item in raw]


def _parse_binding(item: Any, catalog: Catalog) -> Binding:
    if not isinstance(item, dict):
        raise JoinError("each postgres_changes binding must be an object")
    event = item.get("event")
    if not isinstance(event, str) or (event != "*" and event.upper() not in CHANGE_TYPES):
        raise JoinError(f"invalid postgres_changes event {event!r} (use *, INSERT, UPDATE, DELETE)")
    schema = item.get("schema") or SCHEMA
    if schema != SCHEMA:
        raise JoinError(f"schema {schema!r} is not available to realtime")
    table = item.get("table")
    if table in (None, "*"):
        table = None
    elif not isinstance(table, str) or catalog.get(schema, table) is None:
        raise JoinError(f"table {table!r} is not available to realtime")
    known = catalog.get(schema, table) if table else None

    row_filter = None
    text = item.get("filter")
    if text not in (None, ""):
        if not isinstance(text, str):
            raise JoinError("filter must be a string")
        if known is None:
            raise JoinError("a filter needs a table")
        try:
            row_filter = parse_filter(text, known.column_types)
        except FilterError as exc:
            raise JoinError(str(exc)) from exc

    select = item.get("select")
    if select is not None:
        if (
            known is None
            or not isinstance(select, list)
            or not all(isinstance(c, str) and c in known.column_types for c in select)
        ):
            raise JoinError("select must list columns of the binding's table")
        select = tuple(select)

    binding_id = next(_binding_ids)
    return Binding(
        id=binding_id,
        event="*" if event == "*" else event.upper(),
        schema=schema,
        table=table,
        row_filter=row_filter,
        select=select,
        echo={**item, "id": binding_id},
    )


def resolve_identity(token: Any, *, apikey: str, key_identity: Identity, secret: str) -> Identity:
    """The channel's identity: the socket's key role, or the role of the token it sent."""
    if token is None or token == apikey:
        return key_identity
    if not isinstance(token, str) or not token:
        raise JoinError("access_token must be a string")
    try:
        claims = decode_token(token, secret)
    except TokenError as exc:
        raise JoinError("Token has expired" if exc.expired else "Invalid token") from exc
    role = claims.get("role")
    if role not in _TOKEN_ROLES:
        raise JoinError("Invalid token: role is not allowed")
    if role == "authenticated" and not claims.get("sub"):
        raise JoinError("Invalid token: no subject")
    if _expires_at(claims) <= time.time():
        raise JoinError("Token has expired")
    return Identity(str(role), claims)


def _expires_at(claims: Mapping[str, Any]) -> float:
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else float("inf")


def visibility_key(identity: Identity) -> bytes:
    """Identities that see the same rows share a key: the role and the claims that policies
    may read, without the per-session and per-token fields."""
    stable = {k: v for k, v in identity.claims.items() if k not in _VOLATILE_CLAIMS}
    return orjson.dumps([identity.role, stable], option=orjson.OPT_SORT_KEYS)


# Broadcast and presence scopes (see `Channel.scope`).
PRIVATE_SCOPE = "private"
PUBLIC_SCOPE = "public"


def broadcast_scope(identity: Identity, *, private: bool) -> str:
    """Which sockets share a topic's broadcasts and presence.

    A private channel is authorized by the policies on realtime.messages, so its topic is one
    for everybody the policies let in. A public channel stays within the signed-in user's
    tenant; anon (and service_role) public channels share one public scope, as on Supabase,
    which no tenant channel ever sees.
    """
    if private:
        return PRIVATE_SCOPE
    if identity.role == "authenticated":
        sub = str(identity.claims.get("sub", "")).lower()
        if sub:
            return "tenant:" + sub
    return PUBLIC_SCOPE


@dataclass(eq=False)
class Channel:
    """One joined topic of one socket. `push` queues a frame on the socket."""

    topic: str
    identity: Identity
    bindings: list[Binding]
    push: Callable[[Push], None]
    broadcast_self: bool = False
    broadcast_ack: bool = False
    private: bool = False
    join_ref: str | None = None
    presence_key: str = ""
    presence_enabled: bool = False
    # Private channels: what the policies let it receive (SELECT), asked at join.
    read_broadcast: bool = True
    read_presence: bool = True
    # Private channels: may this identity send (INSERT on realtime.messages)? None: not yet
    # asked (Supabase asks at the first send and keeps the answer until the token changes).
    may_broadcast: bool | None = None
    may_track: bool | None = None
    serial: int = field(default_factory=lambda: next(_channel_serials))
    closed: bool = False

    @property
    def sub_topic(self) -> str:
        return self.topic.removeprefix("realtime:")

    @property
    def tenant(self) -> str | None:
        """The tenant whose rows this channel may see under the policies (authenticated)."""
        if self.identity.role != "authenticated":
            return None
        return str(self.identity.claims.get("sub", "")).lower() or None

    @property
    def scope(self) -> str:
        return broadcast_scope(self.identity, private=self.private)

    @property
    def expires_at(self) -> float:
        return _expires_at(self.identity.claims)

    @property
    def visibility(self) -> bytes:
        return visibility_key(self.identity)
