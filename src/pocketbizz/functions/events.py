"""`events`: product-analytics events from the app (the seed's Firebase Analytics, self-hosted).

Body `{"events": [{"name", "params", "occurred_at", "session_id", "platform", "app_version"}],
"device_id"}` → 202 `{"accepted": n}`. Firebase Analytics' limits are the validation: an event
name is `[a-z][a-z0-9_]{0,39}`, at most 25 parameters (names like event names, any case; values
strings of at most 100 characters, numbers or booleans), at most 100 events a batch. A batch with
any bad event is refused whole (400 `invalid_events`), each problem named in `details` by its
index, so an offline queue can drop exactly those and resend the rest.

A signed-in user's events are its tenant's (RLS: `business_owner_id = auth.uid()`); before sign-in
the anon key may send them with a `device_id`, kept under no tenant. Stored in
`public.analytics_events`, monthly partitions kept `PB_EVENTS_RETENTION_DAYS` days by
`EventPartitions`, which every server process runs at start and then every few hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import structlog

from pocketbizz.db.database import SERVICE, Database
from pocketbizz.errors import BadRequest
from pocketbizz.functions.context import FunctionContext, WithStatus

log = structlog.get_logger("pocketbizz.functions.events")

MAX_EVENTS = 100
MAX_PARAMS = 25
MAX_PARAM_VALUE_CHARS = 100
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
_FIELDS = frozenset({"name", "params", "occurred_at", "session_id", "platform", "app_version"})
# Lengths the table's CHECKs allow.
_TEXT_LIMITS = {"session_id": 100, "platform": 40, "app_version": 40, "device_id": 100}
# Device clocks drift; an event further in the future than this is a wrong clock, not a time.
FUTURE_SLACK = timedelta(days=1)
# Problems listed in one answer: enough to fix a batch, bounded however bad the batch is.
_MAX_PROBLEMS = 20

_INSERT = """
insert into public.analytics_events
    (business_owner_id, name, params, occurred_at, session_id, platform, app_version, device_id)
select coalesce((select auth.uid()), '00000000-0000-0000-0000-000000000000'::uuid),
       e.name, e.params::jsonb, e.occurred_at, e.session_id, e.platform, e.app_version, $7
from unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[])
     as e(name, params, occurred_at, session_id, platform, app_version)
"""


@dataclass(frozen=True)
class Event:
    name: str
    params: str  # a JSON object, as text
    occurred_at: datetime
    session_id: str | None
    platform: str | None
    app_version: str | None


@dataclass(frozen=True)
class Problem:
    index: int | None  # None: the batch itself, not one event
    field: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        where = "events" if self.index is None else f"events[{self.index}]"
        return f"{where}.{self.field} {self.message}" if self.field else f"{where} {self.message}"


def parse_batch(body: Any, now: datetime, retention_days: int) -> tuple[list[Event], str | None]:
    """The batch's events and device id, or BadRequest listing every problem found."""
    if not isinstance(body, dict):
        raise _refusal([Problem(None, "", 'must be sent as {"events": [...]}')])
    problems: list[Problem] = []
    device_id = _text(body.get("device_id"), "device_id", None, problems)
    unknown = sorted(set(body) - {"events", "device_id"})
    if unknown:
        problems.append(Problem(None, "", f"has unknown fields: {', '.join(unknown)}"))
    raw = body.get("events")
    if not isinstance(raw, list) or not raw:
        problems.append(Problem(None, "", "must be a non-empty list"))
        raise _refusal(problems)
    if len(raw) > MAX_EVENTS:
        problems.append(Problem(None, "", f"has {len(raw)} events; at most {MAX_EVENTS} a batch"))
        raise _refusal(problems)
    events = [_event(index, item, now, retention_days, problems) for index, item in enumerate(raw)]
    if problems:
        raise _refusal(problems)
    return [e for e in events if e is not None], device_id


def _event(
    index: int, item: Any, now: datetime, retention_days: int, problems: list[Problem]
) -> Event | None:
    if not isinstance(item, dict):
        problems.append(Problem(index, "", "must be a JSON object"))
        return None
    before = len(problems)
    for field in sorted(set(item) - _FIELDS):
        problems.append(Problem(index, _shown(field), "is not an event field"))
    name = item.get("name")
    if not isinstance(name, str) or not EVENT_NAME.fullmatch(name):
        problems.append(Problem(index, "name", "must match [a-z][a-z0-9_]{0,39}"))
    params = _params(index, item.get("params"), problems)
    occurred_at = _occurred_at(index, item.get("occurred_at"), now, retention_days, problems)
    session = item.get("session_id")
    # Firebase's session id is a number; a client may send either form.
    if isinstance(session, int) and not isinstance(session, bool):
        session = str(session)
    texts = {
        field: _text(value, field, index, problems)
        for field, value in (
            ("session_id", session),
            ("platform", item.get("platform")),
            ("app_version", item.get("app_version")),
        )
    }
    if len(problems) > before or params is None or occurred_at is None:
        return None
    return Event(
        str(name), params, occurred_at, texts["session_id"], texts["platform"], texts["app_version"]
    )


def _params(index: int, value: Any, problems: list[Problem]) -> str | None:
    if value is None:
        return "{}"
    if not isinstance(value, dict):
        problems.append(Problem(index, "params", "must be a JSON object"))
        return None
    if len(value) > MAX_PARAMS:
        problems.append(
            Problem(index, "params", f"has {len(value)} parameters; at most {MAX_PARAMS}")
        )
        return None
    ok = True
    for key, item in value.items():
        if not PARAM_NAME.fullmatch(key):
            problems.append(
                Problem(index, f"params.{_shown(key)}", "must match [A-Za-z][A-Za-z0-9_]{0,39}")
            )
            ok = False
        elif isinstance(item, str):
            if len(item) > MAX_PARAM_VALUE_CHARS:
                problems.append(
                    Problem(
                        index, f"params.{key}", f"is longer than {MAX_PARAM_VALUE_CHARS} characters"
                    )
                )
                ok = False
        elif not isinstance(item, (bool, int, float)) or (
            isinstance(item, float) and not math.isfinite(item)
        ):
            problems.append(
                Problem(index, f"params.{key}", "must be a string, a number or a boolean")
            )
            ok = False
    return orjson.dumps(value).decode() if ok else None


def _occurred_at(
    index: int, value: Any, now: datetime, retention_days: int, problems: list[Problem]
) -> datetime | None:
    if value is None:
        return now
    when = None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(value)
    if when is None or when.tzinfo is None:
        problems.append(Problem(index, "occurred_at", "must be an ISO 8601 time with a UTC offset"))
        return None
    if when > now + FUTURE_SLACK:
        problems.append(Problem(index, "occurred_at", "is in the future"))
        return None
    # Older ones would land in a partition already dropped (or about to be).
    if when < now - timedelta(days=retention_days):
        problems.append(
            Problem(
                index, "occurred_at", f"is older than the {retention_days} days events are kept"
            )
        )
        return None
    return when


def _text(value: Any, field: str, index: int | None, problems: list[Problem]) -> str | None:
    if value is None:
        return None
    limit = _TEXT_LIMITS[field]
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        problems.append(Problem(index, field, f"must be a string of 1 to {limit} characters"))
        return None
    return value


def _shown(name: str) -> str:
    """A client's field name as quoted back in an error: bounded, whatever was sent."""
    return name if len(name) <= 50 else name[:50] + "..."


def _refusal(problems: list[Problem]) -> BadRequest:
    first = str(problems[0])
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return BadRequest(
        f"Invalid events: {first}{more}",
        code="invalid_events",
        details=[p.as_json() for p in problems[:_MAX_PROBLEMS]],
    )


async def run(ctx: FunctionContext) -> WithStatus:
    now = datetime.now(UTC)
    events, device_id = parse_batch(ctx.body, now, ctx.settings.events_retention_days)
    if ctx.identity.user_id is None and device_id is None:
        # Before sign-in the device is the only thing that ties events together.
        raise BadRequest(
            "Invalid events: events.device_id is required before sign-in",
            code="invalid_events",
            details=[Problem(None, "device_id", "is required before sign-in").as_json()],
        )
    await ctx.conn.execute(
        _INSERT,
        [e.name for e in events],
        [e.params for e in events],
        [e.occurred_at for e in events],
        [e.session_id for e in events],
        [e.platform for e in events],
        [e.app_version for e in events],
        device_id,
    )
    return WithStatus({"accepted": len(events)}, status=202)


# --- Partitions: months ahead created, months past the retention dropped. ---------------------

MAINTENANCE_INTERVAL_SECONDS = 6 * 3600
SERVICE_KEY = "functions.event_partitions"


async def maintain_partitions(db: Database, retention_days: int) -> tuple[list[str], list[str]]:
    """One pass; returns the partitions created and dropped. Idempotent, one process at a time
    (the SQL function takes a transaction lock)."""
    async with db.transaction(SERVICE) as conn:
        row = await conn.fetchrow(
            "select created, dropped from pb_internal.maintain_analytics_event_partitions($1)",
            retention_days,
        )
    assert row is not None
    return list(row["created"]), list(row["dropped"])


class EventPartitions:
    def __init__(self, db: Database, retention_days: int) -> None:
        self.db = db
        self.retention_days = retention_days
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                created, dropped = await maintain_partitions(self.db, self.retention_days)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("event partition upkeep failed; retrying next interval", error=str(exc))
            else:
                if created or dropped:
                    log.info("event partitions", created=created, dropped=dropped)
            await asyncio.sleep(MAINTENANCE_INTERVAL_SECONDS)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
