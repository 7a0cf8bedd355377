"""A row change as announced by the `realtime_notify` trigger, and its wire form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pocketbizz.realtime.frames import loads_exact

CHANGE_TYPES = frozenset({"INSERT", "UPDATE", "DELETE"})


class ChangeError(ValueError):
    pass


@dataclass(frozen=True)
class Change:
    schema: str
    table: str
    type: str  # INSERT | UPDATE | DELETE
    commit_timestamp: str  # ISO 8601 in UTC with milliseconds, as Supabase sends it
    owner_id: str  # business_owner_id of the row
    key: dict[str, Any]  # primary-key columns
    row: dict[str, Any] | None  # the row as written (the old one for DELETE); None if too big


def _utc_timestamp(text: str) -> str:
    moment = datetime.fromisoformat(text).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def decode_change(payload: str) -> Change:
    """Parse one notification; anything unexpected raises ChangeError (and is logged)."""
    try:
        data = loads_exact(payload)
        change = Change(
            schema=str(data["s"]),
            table=str(data["t"]),
            type=str(data["op"]),
            commit_timestamp=_utc_timestamp(str(data["ts"])),
            owner_id=str(data["o"]).lower(),
            key=dict(data["k"]),
            row=dict(data["r"]) if isinstance(data.get("r"), dict) else None,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ChangeError(f"unreadable change notification: {exc}") from exc
    if change.type not in CHANGE_TYPES:
        raise ChangeError(f"unknown change type {change.type!r}")
    return change
