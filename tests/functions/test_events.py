"""Product-analytics events: POST /functions/v1/events, Firebase's limits, per-tenant storage,
monthly partitions kept for PB_EVENTS_RETENTION_DAYS."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from harness import ServerProcess
from supabase import Client
from supabase_functions.errors import FunctionsHttpError

NO_TENANT = "00000000-0000-0000-0000-000000000000"


def _post(server: ServerProcess, body: Any, token: str | None = None) -> httpx.Response:
    headers = {"apikey": server.anon_key, "Authorization": f"Bearer {token or server.anon_key}"}
    return httpx.post(f"{server.url}/functions/v1/events", headers=headers, json=body)


def _event(name: str = "screen_view", **fields: Any) -> dict[str, Any]:
    return {"name": name, **fields}


def _own_events(client: Client) -> list[dict[str, Any]]:
    return client.table("analytics_events").select("*").order("occurred_at").execute().data


def test_a_batch_is_stored_for_the_tenant(make_user: Callable[..., Any]) -> None:
    user = make_user()
    started = datetime.now(UTC).replace(microsecond=0)
    batch = {
        "device_id": "install-7f3a",
        "events": [
            _event(
                "app_start",
                params={"load_ms": 812, "tti_ms": 1450.5, "cold": True},
                occurred_at=(started - timedelta(minutes=2)).isoformat(),
                session_id=1732950000,
                platform="android",
                app_version="1.4.2",
            ),
            _event(
                "screen_view",
                params={"screen_name": "sell"},
                occurred_at=(started - timedelta(minutes=1)).isoformat(),
                session_id="1732950000",
                platform="android",
            ),
            _event("sale_completed", params={"items": 3, "channel": "walk-in"}),
        ],
    }
    # The official client, as the app calls it.
    answer = user.client.functions.invoke("events", {"body": batch, "responseType": "json"})
    assert answer == {"accepted": 3}

    rows = _own_events(user.client)
    assert [r["name"] for r in rows] == ["app_start", "screen_view", "sale_completed"]
    assert {r["business_owner_id"] for r in rows} == {user.id}
    assert rows[0]["params"] == {"load_ms": 812, "tti_ms": 1450.5, "cold": True}
    assert rows[0]["session_id"] == rows[1]["session_id"] == "1732950000"
    assert (rows[0]["platform"], rows[0]["app_version"]) == ("android", "1.4.2")
    assert datetime.fromisoformat(rows[0]["occurred_at"]) == started - timedelta(minutes=2)
    assert {r["device_id"] for r in rows} == {"install-7f3a"}
    # No occurred_at: the time it arrived.
    assert datetime.fromisoformat(rows[2]["occurred_at"]) >= started
    assert rows[2]["params"] == {"items": 3, "channel": "walk-in"}


def test_status_is_202_with_the_count(server: ServerProcess, make_user: Callable[..., Any]) -> None:
    user = make_user()
    res = _post(server, {"events": [_event()] * 100}, user.access_token)
    assert res.status_code == 202
    assert res.json() == {"accepted": 100}
    assert len(_own_events(user.client)) == 100


def _refused(res: httpx.Response) -> dict[str, Any]:
    assert res.status_code == 400, res.text
    body: dict[str, Any] = res.json()
    assert body["code"] == "invalid_events"
    return body


def test_101_events_are_refused(server: ServerProcess, make_user: Callable[..., Any]) -> None:
    user = make_user()
    body = _refused(_post(server, {"events": [_event()] * 101}, user.access_token))
    assert "101 events; at most 100" in body["error"]
    assert _own_events(user.client) == []


def test_a_bad_name_refuses_the_batch_naming_the_event(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    events = [_event("screen_view"), _event("Screen View"), _event("x" * 41), _event("9lives")]
    body = _refused(_post(server, {"events": events}, user.access_token))
    assert body["error"].startswith("Invalid events: events[1].name must match [a-z][a-z0-9_]")
    assert [(d["index"], d["field"]) for d in body["details"]] == [
        (1, "name"),
        (2, "name"),
        (3, "name"),
    ]
    # All or nothing: the good event was not stored either.
    assert _own_events(user.client) == []
    # The longest allowed name passes.
    assert _post(server, {"events": [_event("a" * 40)]}, user.access_token).status_code == 202


def test_26_params_are_refused(server: ServerProcess, make_user: Callable[..., Any]) -> None:
    user = make_user()
    params = {f"p{i}": i for i in range(26)}
    body = _refused(_post(server, {"events": [_event(params=params)]}, user.access_token))
    assert body["details"] == [
        {"index": 0, "field": "params", "message": "has 26 parameters; at most 25"}
    ]
    params.pop("p25")
    assert _post(server, {"events": [_event(params=params)]}, user.access_token).status_code == 202


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (_event(params={"screen": "x" * 101}), "params.screen"),
        (_event(params={"nested": {"a": 1}}), "params.nested"),
        (_event(params={"list": [1]}), "params.list"),
        (_event(params={"nothing": None}), "params.nothing"),
        (_event(params={"bad-name": 1}), "params.bad-name"),
        (_event(params=[1, 2]), "params"),
        (_event(occurred_at="2026-11-30T10:00:00"), "occurred_at"),  # no offset
        (_event(occurred_at="yesterday"), "occurred_at"),
        (_event(occurred_at=(datetime.now(UTC) + timedelta(days=3)).isoformat()), "occurred_at"),
        (_event(occurred_at=(datetime.now(UTC) - timedelta(days=500)).isoformat()), "occurred_at"),
        (_event(platform=""), "platform"),
        (_event(app_version="v" * 41), "app_version"),
        (_event(session_id=["s"]), "session_id"),
        (_event(colour="red"), "colour"),
    ],
)
def test_invalid_fields_are_named(
    server: ServerProcess, make_user: Callable[..., Any], event: dict[str, Any], field: str
) -> None:
    user = make_user()
    body = _refused(_post(server, {"events": [_event(), event]}, user.access_token))
    assert [(d["index"], d["field"]) for d in body["details"]] == [(1, field)]
    assert f"events[1].{field}" in body["error"]


@pytest.mark.parametrize(
    "payload", [None, [], {"events": []}, {"events": "x"}, {"events": [1]}, {"batch": []}]
)
def test_malformed_batches_are_refused(
    server: ServerProcess, make_user: Callable[..., Any], payload: Any
) -> None:
    user = make_user()
    _refused(_post(server, payload, user.access_token))


def test_errors_reach_the_official_client(make_user: Callable[..., Any]) -> None:
    user = make_user()
    with pytest.raises(FunctionsHttpError) as refused:
        user.client.functions.invoke("events", {"body": {"events": [_event("Bad")]}})
    assert refused.value.status == 400
    assert "events[0].name" in refused.value.message


async def test_anon_needs_a_device_id_and_its_events_belong_to_no_tenant(
    server: ServerProcess, make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    body = _refused(_post(server, {"events": [_event("app_start")]}))
    assert body["details"][0]["field"] == "device_id"

    device = f"device-{uuid.uuid4().hex}"
    res = _post(server, {"device_id": device, "events": [_event("app_start")] * 2})
    assert (res.status_code, res.json()) == (202, {"accepted": 2})
    rows = await owner_pool.fetch(
        "select business_owner_id::text as owner from public.analytics_events where device_id = $1",
        device,
    )
    assert [r["owner"] for r in rows] == [NO_TENANT, NO_TENANT]
    # Nobody signed in reads them, and anon reads nothing.
    user = make_user()
    seen = user.client.table("analytics_events").select("id").eq("device_id", device).execute()
    assert seen.data == []
    async with httpx.AsyncClient() as http:
        anon = await http.get(
            f"{server.url}/rest/v1/analytics_events?device_id=eq.{device}",
            headers={"apikey": server.anon_key},
        )
    assert anon.status_code == 401


def test_b_cannot_read_or_forge_a_events(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a, b = make_user(), make_user()
    assert _post(
        server, {"events": [_event("sale_completed")] * 3}, a.access_token
    ).status_code == (202)
    assert _post(server, {"events": [_event("screen_view")]}, b.access_token).status_code == 202
    a_ids = [r["id"] for r in _own_events(a.client)]
    assert len(a_ids) == 3

    # Through REST, B sees only its own event, however it asks.
    assert [r["name"] for r in _own_events(b.client)] == ["screen_view"]
    assert b.client.table("analytics_events").select("id").in_("id", a_ids).execute().data == []
    filtered = (
        b.client.table("analytics_events").select("id").eq("business_owner_id", a.id).execute()
    )
    assert filtered.data == []
    counted = b.client.table("analytics_events").select("id", count="exact").execute()
    assert counted.count == 1
    # Nor can B write into A's tenant, change or delete A's events (or its own).
    forged = httpx.post(
        f"{server.url}/rest/v1/analytics_events",
        headers={"apikey": server.anon_key, "Authorization": f"Bearer {b.access_token}"},
        json={"business_owner_id": a.id, "name": "forged"},
    )
    assert forged.status_code in (401, 403)
    for method in ("PATCH", "DELETE"):
        changed = httpx.request(
            method,
            f"{server.url}/rest/v1/analytics_events?id=eq.{a_ids[0]}",
            headers={"apikey": server.anon_key, "Authorization": f"Bearer {b.access_token}"},
            json={"name": "changed"} if method == "PATCH" else None,
        )
        assert changed.status_code in (401, 403), (method, changed.text)
    assert [r["id"] for r in _own_events(a.client)] == a_ids


async def test_partitions_are_not_reachable_directly(
    server: ServerProcess, make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    user = make_user()
    assert _post(server, {"events": [_event()]}, user.access_token).status_code == 202
    part = "analytics_events_" + datetime.now(UTC).strftime("%Y_%m")
    async with owner_pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "select set_config('role', 'authenticated', true),"
            " set_config('request.jwt.claims', $1, true)",
            json.dumps({"sub": user.id, "role": "authenticated"}),
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch(f"select * from pb_internal.{part}")
    flags = await owner_pool.fetchrow(
        "select relrowsecurity, relforcerowsecurity from pg_class"
        " where oid = ('pb_internal.' || $1)::regclass",
        part,
    )
    assert flags is not None and flags["relrowsecurity"] and flags["relforcerowsecurity"]


async def _partitions(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch(
        "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
        " where i.inhparent = 'public.analytics_events'::regclass order by 1"
    )
    return [r["relname"] for r in rows]


def _month(moment: datetime) -> str:
    return "analytics_events_" + moment.strftime("%Y_%m")


async def _maintain(pool: asyncpg.Pool, retention_days: int) -> asyncpg.Record:
    """As the server runs it: as service_role."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "select set_config('role', 'service_role', true),"
            " set_config('request.jwt.claims', '{\"role\": \"service_role\"}', true)"
        )
        row = await conn.fetchrow(
            "select * from pb_internal.maintain_analytics_event_partitions($1)", retention_days
        )
    assert row is not None
    return row


async def test_partitions_cover_the_retention_and_months_ahead(owner_pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    await _maintain(owner_pool, 400)
    names = await _partitions(owner_pool)
    assert _month(now) in names
    assert _month(now.replace(day=1) + timedelta(days=40)) in names  # next month, made ahead
    assert _month(now - timedelta(days=399)) in names
    assert names == sorted(set(names))
    # Idempotent.
    again = await _maintain(owner_pool, 400)
    assert (again["created"], again["dropped"]) == ([], [])


async def test_retention_drops_whole_expired_months(owner_pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=200)
    await _maintain(owner_pool, 400)
    owner = str(uuid.uuid4())
    await owner_pool.execute(
        "insert into public.analytics_events (business_owner_id, name, occurred_at)"
        " values ($1, 'old_event', $2), ($1, 'new_event', $3)",
        uuid.UUID(owner),
        old,
        now,
    )
    try:
        result = await _maintain(owner_pool, 90)
        assert _month(old) in result["dropped"]
        assert _month(now) not in result["dropped"]
        names = await owner_pool.fetch(
            "select name from public.analytics_events where business_owner_id = $1",
            uuid.UUID(owner),
        )
        assert [r["name"] for r in names] == ["new_event"]
        # The month holding the horizon itself is kept: it still has events within retention.
        assert _month(now - timedelta(days=90)) in await _partitions(owner_pool)
    finally:
        await _maintain(owner_pool, 400)
        await owner_pool.execute(
            "delete from public.analytics_events where business_owner_id = $1", uuid.UUID(owner)
        )


async def test_the_server_keeps_the_retention_setting(
    owner_dsn: str, owner_pool: asyncpg.Pool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Months from six years ago exist, as a longer retention would have left them.
    await _maintain(owner_pool, 6 * 366)
    ancient = _month(datetime.now(UTC) - timedelta(days=6 * 365))
    assert ancient in await _partitions(owner_pool)
    proc = ServerProcess(
        owner_dsn,
        tmp_path_factory.mktemp("events"),
        env_overrides={
            "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
            "PB_EVENTS_RETENTION_DAYS": "400",
        },
    )
    proc.start()
    try:
        # The first upkeep runs as the server starts; give it a few seconds.
        for _ in range(150):
            if ancient not in await _partitions(owner_pool):
                break
            await asyncio.sleep(0.2)
        names = await _partitions(owner_pool)
    finally:
        proc.stop()
    assert ancient not in names
    assert _month(datetime.now(UTC)) in names


async def test_closing_an_account_deletes_its_events(
    server: ServerProcess,
    make_user: Callable[..., Any],
    service_client: Client,
    owner_pool: asyncpg.Pool,
) -> None:
    closing, staying = make_user(), make_user()
    for user in (closing, staying):
        assert _post(server, {"events": [_event()] * 2}, user.access_token).status_code == 202
    service_client.auth.admin.delete_user(closing.id)
    counts = await owner_pool.fetch(
        "select business_owner_id::text as owner, count(*) from public.analytics_events"
        " where business_owner_id = any($1::uuid[]) group by 1",
        [uuid.UUID(closing.id), uuid.UUID(staying.id)],
    )
    assert {r["owner"]: r["count"] for r in counts} == {staying.id: 2}
