"""What every handler may reach: settings, the database, and per-service singletons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from pocketbizz.db import Database
from pocketbizz.db.notifications import Notifications
from pocketbizz.settings import Settings


@dataclass
class AppState:
    settings: Settings
    db: Database
    # Singletons owned by one service each (realtime hub, storage backend, rate limiter...).
    services: dict[str, Any] = field(default_factory=dict)
    # The process's one LISTEN connection, shared by the services that follow a channel
    # (started before their startups and closed after their shutdowns).
    notifications: Notifications = field(init=False)

    def __post_init__(self) -> None:
        self.notifications = Notifications(self.db)


def app_state(conn: HTTPConnection) -> AppState:
    state = conn.scope.get("pb.state")
    if not isinstance(state, AppState):
        raise RuntimeError("request did not pass through the gateway middleware")
    return state
