"""Per-tenant and per-user caps on realtime use, counted in this server process.

As supabase/realtime's tenant limits (max concurrent users, joins and events per second,
channels per client), with its reasons on the wire. A tenant is the signed-in user (its `sub`);
anon and service_role channels count under their role, and their per-user caps (channels,
bindings) hold per socket. Counts are per process: with
`serve --workers N` a tenant may reach N times a cap, which still bounds what one tenant can
cost the database (each broadcast is a NOTIFY, each join a registration).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TypeVar

from pocketbizz.realtime.channels import Channel

TOO_MANY_CHANNELS = "ChannelRateLimitReached: Too many channels"
TOO_MANY_BINDINGS = "ChannelRateLimitReached: Too many postgres_changes bindings"
TOO_MANY_JOINS = "ClientJoinRateLimitReached: Too many joins per second"
TOO_MANY_USERS = "ConnectionRateLimitReached: Too many connected users"
TOO_MANY_EVENTS = "Too many messages per second"
_PRUNE_ABOVE = 1_024

K = TypeVar("K", str, int)


@dataclass(frozen=True)
class Caps:
    channels_per_user: int = 100
    bindings_per_user: int = 500
    sockets_per_tenant: int = 200
    joins_per_second: int = 100
    events_per_second: int = 100


class LimitReached(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def tenant_key(channel: Channel) -> str:
    return channel.tenant or channel.identity.role


class _Window:
    """Events in the current one-second window."""

    __slots__ = ("count", "start")

    def __init__(self) -> None:
        self.start = 0.0
        self.count = 0

    def hit(self, cap: int) -> bool:
        now = time.monotonic()
        if now - self.start >= 1.0:
            self.start, self.count = now, 0
        self.count += 1
        return self.count <= cap


@dataclass(frozen=True)
class Admission:
    """What one admitted channel counts against, to be given back when it goes."""

    tenant: str
    user: str
    socket_id: int
    bindings: int


class Limits:
    def __init__(self, caps: Caps) -> None:
        self.caps = caps
        self._channels: Counter[str] = Counter()  # per user
        self._bindings: Counter[str] = Counter()  # per user
        # tenant → sockets (by id) → how many of the tenant's channels each holds
        self._sockets: dict[str, Counter[int]] = {}
        self._joins: dict[str, _Window] = defaultdict(_Window)
        self._events: dict[str, _Window] = defaultdict(_Window)

    def admit(self, channel: Channel, socket_id: int) -> Admission:
        """Count a joining channel, or raise LimitReached (nothing counted)."""
        tenant = tenant_key(channel)
        # Without a user, the per-user caps hold per socket (the public scope is one tenant).
        user = channel.tenant or f"{channel.identity.role}:{socket_id}"
        caps = self.caps
        if not _window(self._joins, tenant).hit(caps.joins_per_second):
            raise LimitReached(TOO_MANY_JOINS)
        sockets = self._sockets.get(tenant, Counter())
        if socket_id not in sockets and len(sockets) >= caps.sockets_per_tenant:
            raise LimitReached(TOO_MANY_USERS)
        if self._channels[user] + 1 > caps.channels_per_user:
            raise LimitReached(TOO_MANY_CHANNELS)
        if self._bindings[user] + len(channel.bindings) > caps.bindings_per_user:
            raise LimitReached(TOO_MANY_BINDINGS)
        self._channels[user] += 1
        self._bindings[user] += len(channel.bindings)
        sockets[socket_id] += 1
        self._sockets[tenant] = sockets
        return Admission(tenant, user, socket_id, len(channel.bindings))

    def release(self, admission: Admission) -> None:
        _decrement(self._channels, admission.user, 1)
        _decrement(self._bindings, admission.user, admission.bindings)
        sockets = self._sockets.get(admission.tenant)
        if sockets is not None:
            _decrement(sockets, admission.socket_id, 1)
            if not sockets:
                del self._sockets[admission.tenant]

    def event(self, channel: Channel) -> bool:
        """One broadcast or presence event of the channel's tenant; False when over the cap."""
        return _window(self._events, tenant_key(channel)).hit(self.caps.events_per_second)


def _decrement(counter: Counter[K], key: K, by: int) -> None:
    counter[key] -= by
    if counter[key] <= 0:
        del counter[key]


def _window(windows: dict[str, _Window], key: str) -> _Window:
    if len(windows) > _PRUNE_ABOVE and key not in windows:
        # Forget tenants idle for a second or more, so the map stays as big as the busy ones.
        stale = time.monotonic() - 1.0
        for old in [k for k, w in windows.items() if w.start < stale]:
            del windows[old]
    return windows[key]
