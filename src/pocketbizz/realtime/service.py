"""The realtime service of one server process: its hub and its database listener."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from pocketbizz.realtime.catalog import Catalog
from pocketbizz.realtime.hub import Hub
from pocketbizz.realtime.listener import Listener
from pocketbizz.state import AppState

SERVICE_KEY = "realtime"
# Deliveries only start once the listener is connected; wait that long for it at startup.
_LISTENER_WAIT_SECONDS = 10.0


@dataclass
class RealtimeService:
    hub: Hub
    listener: Listener


async def start(state: AppState) -> RealtimeService:
    catalog = Catalog()
    async with state.db.pool.acquire() as conn:
        await catalog.load(conn)
    workers = int(getattr(state.settings, "realtime_workers", 4))
    hub = Hub(state.db, catalog, workers=max(workers, 1))
    hub.start()
    listener = Listener(state.db, hub)
    listener.start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(listener.connected.wait(), _LISTENER_WAIT_SECONDS)
    service = RealtimeService(hub, listener)
    state.services[SERVICE_KEY] = service
    return service


async def stop(state: AppState) -> None:
    service = state.services.pop(SERVICE_KEY, None)
    if isinstance(service, RealtimeService):
        await service.listener.stop()
        await service.hub.stop()
