"""Realtime at /realtime/v1 (Phoenix channels, protocol 1.0.0 or 2.0.0 per socket: `frames`).

Triggers announce row changes with NOTIFY (migration 0005) — only while some server process
has registered a subscription for the row's tenant and table (`registry`, migration 0007);
each server process LISTENs on one connection (`listener`), and the `hub` delivers a change to
a subscriber only after reading the row as that subscriber, so RLS decides who sees what.
Broadcast and presence (`presence`, migration 0012) stay within a tenant on public channels;
private channels are authorized by the policies on realtime.messages (`authorization`, 0013).
"""

from __future__ import annotations

from pocketbizz.realtime import service
from pocketbizz.state import AppState


async def startup(state: AppState) -> None:
    await service.start(state)


async def shutdown(state: AppState) -> None:
    await service.stop(state)
