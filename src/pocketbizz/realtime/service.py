"""The realtime service of one server process: hub, listener, presence and limits."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pocketbizz.db import Database, Identity
from pocketbizz.realtime.catalog import Catalog
from pocketbizz.realtime.frames import Broadcast
from pocketbizz.realtime.hub import Hub
from pocketbizz.realtime.limits import Caps, Limits
from pocketbizz.realtime.listener import Listener
from pocketbizz.realtime.presence import PresenceBook
from pocketbizz.state import AppState

if TYPE_CHECKING:
    from pocketbizz.realtime.session import Session

SERVICE_KEY = "realtime"
# NOTIFY carries broadcasts between processes and caps a body at 8000 bytes.
MAX_BROADCAST_BYTES = 7_000
# Deliveries only start once the listener is connected; wait that long for it at startup.
_LISTENER_WAIT_SECONDS = 10.0


class BroadcastTooLarge(ValueError):
    """A broadcast too big for NOTIFY, the way it reaches the other server processes."""


RevocationCheck = Callable[[Database, Mapping[str, Any]], Awaitable[bool]]


@dataclass
class RealtimeService:
    db: Database
    hub: Hub
    listener: Listener
    presence: PresenceBook
    limits: Limits
    revoked: RevocationCheck | None = None
    sessions: weakref.WeakSet[Session] = field(default_factory=weakref.WeakSet)

    async def token_revoked(self, identity: Identity) -> bool:
        """A signed-in user's token whose user is gone or whose session ended."""
        if self.revoked is None or identity.role != "authenticated":
            return False
        return await self.revoked(self.db, identity.claims)

    async def broadcast(
        self, scope: str, topic: str, message: Broadcast, sender: int | None = None
    ) -> None:
        """Deliver on this process, then to the others through NOTIFY (BroadcastTooLarge when
        the message cannot travel that way)."""
        note = self.listener.broadcast_note(scope, topic, message)
        if len(note) > MAX_BROADCAST_BYTES:
            raise BroadcastTooLarge(
                f"broadcast payload too large (at most {MAX_BROADCAST_BYTES} bytes)"
            )
        self.hub.broadcast(scope, topic, message, sender)
        await self.listener.publish(note)

    def rejoin_all(self, reason: str) -> None:
        """Tell every joined channel of this process to rejoin."""
        for session in list(self.sessions):
            session.rejoin_all(reason)


def _revocation_check() -> RevocationCheck | None:
    try:
        from pocketbizz.auth.revocation import token_is_revoked
    except ImportError:
        return None
    return token_is_revoked


def _caps(settings: Any) -> Caps:
    return Caps(
        channels_per_user=settings.realtime_max_channels_per_user,
        bindings_per_user=settings.realtime_max_bindings_per_user,
        sockets_per_tenant=settings.realtime_max_sockets_per_tenant,
        joins_per_second=settings.realtime_max_joins_per_second,
        events_per_second=settings.realtime_max_events_per_second,
    )


async def start(state: AppState) -> RealtimeService:
    catalog = Catalog()
    async with state.db.pool.acquire() as conn:
        await catalog.load(conn)
    hub = Hub(state.db, catalog, workers=max(state.settings.realtime_workers, 1))
    hub.start()
    listener = Listener(state.db, hub, state.notifications)
    presence = PresenceBook(state.db, hub, listener.process_id)
    service = RealtimeService(
        state.db, hub, listener, presence, Limits(_caps(state.settings)), _revocation_check()
    )
    listener.on_reconnect = service.rejoin_all
    hub.registry.on_lapse = service.rejoin_all
    await listener.start()
    presence.start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(listener.connected(), _LISTENER_WAIT_SECONDS)
    state.services[SERVICE_KEY] = service
    return service


async def stop(state: AppState) -> None:
    service = state.services.pop(SERVICE_KEY, None)
    if isinstance(service, RealtimeService):
        await service.listener.stop()
        await service.presence.stop()
        await service.hub.stop()
