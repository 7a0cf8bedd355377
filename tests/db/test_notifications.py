"""The process-wide LISTEN connection (`pocketbizz.db.notifications`): one connection for every
subscriber, notices fanned out to each, and every subscriber caught up again after the
connection is killed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from harness import ServerProcess

from pocketbizz.db import Database
from pocketbizz.db.notifications import APPLICATION_NAME, Notifications

# The per-service connections this one replaced: none may come back.
FORMER_LISTENERS = ("pocketbizz-rest-schema", "pocketbizz-auth-revocations", "pocketbizz-realtime")


@dataclass
class Follower:
    """A subscriber that records what reaches it."""

    notices: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)
    connects: list[bool] = field(default_factory=list)
    losses: int = 0
    connected_again: asyncio.Event = field(default_factory=asyncio.Event)

    def on_notice(self, channel: str, payload: str) -> None:
        self.notices.put_nowait((channel, payload))

    async def on_connect(self, resumed: bool) -> None:
        self.connects.append(resumed)
        if resumed:
            self.connected_again.set()

    def on_lost(self) -> None:
        self.losses += 1


async def connections(pool: asyncpg.Pool, application_name: str) -> int:
    count: int = await pool.fetchval(
        "select count(*) from pg_stat_activity where application_name = $1", application_name
    )
    return count


async def received(follower: Follower) -> tuple[str, str]:
    return await asyncio.wait_for(follower.notices.get(), 10)


@pytest.fixture
async def notifications(owner_dsn: str) -> AsyncIterator[Notifications]:
    db = Database(owner_dsn, user="authenticator", password="test-authenticator", min_size=1)
    # A name of its own: other servers on this database hold the default one.
    shared = Notifications(db, application_name=f"pb-test-notify-{uuid.uuid4().hex[:8]}")
    shared.start()
    yield shared
    await shared.close()


async def test_subscribers_share_one_connection_and_each_gets_its_notices(
    notifications: Notifications, owner_pool: asyncpg.Pool
) -> None:
    schema, revocations, realtime = Follower(), Follower(), Follower()
    subs = [
        await notifications.subscribe(
            ("t_schema", "t_common"), f.on_notice, on_connect=f.on_connect
        )
        for f in (schema, revocations)
    ]
    subs.append(
        await notifications.subscribe(
            ("t_changes", "t_common"), realtime.on_notice, on_connect=realtime.on_connect
        )
    )
    for sub in subs:
        await asyncio.wait_for(sub.connected.wait(), 10)

    assert await connections(owner_pool, notifications.application_name) == 1
    for channel in ("t_schema", "t_changes", "t_common"):
        await owner_pool.execute("select pg_notify($1, $2)", channel, f"to {channel}")
    assert [await received(schema), await received(schema)] == [
        ("t_schema", "to t_schema"),
        ("t_common", "to t_common"),
    ]
    assert await received(revocations) == ("t_schema", "to t_schema")
    assert await received(revocations) == ("t_common", "to t_common")
    assert [await received(realtime), await received(realtime)] == [
        ("t_changes", "to t_changes"),
        ("t_common", "to t_common"),
    ]
    for follower in (schema, revocations, realtime):
        assert follower.connects == [False]  # caught up once, as a first connect
        assert follower.notices.empty()


async def test_every_subscriber_is_caught_up_again_after_the_connection_is_killed(
    notifications: Notifications, owner_pool: asyncpg.Pool
) -> None:
    followers = [Follower() for _ in range(3)]
    for i, f in enumerate(followers):
        sub = await notifications.subscribe(
            (f"t_kill_{i}",), f.on_notice, on_connect=f.on_connect, on_lost=f.on_lost
        )
        await asyncio.wait_for(sub.connected.wait(), 10)

    killed = await owner_pool.fetchval(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = $1",
        notifications.application_name,
    )
    assert killed == 1
    for f in followers:
        await asyncio.wait_for(f.connected_again.wait(), 15)
        assert f.connects == [False, True]
        assert f.losses == 1
    # On-connect ran after LISTEN: a notice sent now reaches every subscriber.
    assert await connections(owner_pool, notifications.application_name) == 1
    for i, f in enumerate(followers):
        await owner_pool.execute("select pg_notify($1, 'after')", f"t_kill_{i}")
        assert await received(f) == (f"t_kill_{i}", "after")


async def test_a_failing_handler_does_not_starve_the_other_subscribers(
    notifications: Notifications, owner_pool: asyncpg.Pool
) -> None:
    def broken(channel: str, payload: str) -> None:
        raise ValueError("a subscriber's bug")

    healthy = Follower()
    await notifications.subscribe(("t_shared",), broken)
    sub = await notifications.subscribe(("t_shared",), healthy.on_notice)
    await asyncio.wait_for(sub.connected.wait(), 10)
    await owner_pool.execute("select pg_notify('t_shared', 'x')")
    assert await received(healthy) == ("t_shared", "x")


async def test_a_server_process_holds_one_listen_connection_and_resumes_after_its_loss(
    owner_dsn: str,
    owner_pool: asyncpg.Pool,
    server: ServerProcess,
    tmp_path: Path,
) -> None:
    before = await connections(owner_pool, APPLICATION_NAME)
    extra = ServerProcess(
        owner_dsn, tmp_path, env_overrides={"PB_AUTHENTICATOR_PASSWORD": "test-authenticator"}
    )
    extra.start()
    try:
        # Schema cache, revocations and realtime all follow their channels on it.
        assert await connections(owner_pool, APPLICATION_NAME) == before + 1
        for name in FORMER_LISTENERS:
            assert await connections(owner_pool, name) == 0
        await owner_pool.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1",
            APPLICATION_NAME,
        )
        # A table created around the loss is served: the schema cache reloads on reconnect.
        table = f"notify_probe_{uuid.uuid4().hex[:8]}"
        await owner_pool.execute(
            f"create table public.{table} (id int primary key); "
            f"grant select on public.{table} to service_role"
        )
        headers = {"apikey": extra.service_key, "Authorization": f"Bearer {extra.service_key}"}
        url = f"{extra.url}/rest/v1/{table}"
        status = 0
        async with httpx.AsyncClient() as client:
            for _ in range(150):
                status = (await client.get(url, headers=headers)).status_code
                if status == 200:
                    break
                await asyncio.sleep(0.1)
        assert status == 200
        for _ in range(150):
            if await connections(owner_pool, APPLICATION_NAME) == before + 1:
                break
            await asyncio.sleep(0.1)
        assert await connections(owner_pool, APPLICATION_NAME) == before + 1
        await owner_pool.execute(f"drop table public.{table}")
    finally:
        extra.stop()


async def test_a_subscriber_whose_catch_up_fails_gets_a_new_connection(
    notifications: Notifications, owner_pool: asyncpg.Pool
) -> None:
    first = Follower()
    sub = await notifications.subscribe(("t_first",), first.on_notice, on_connect=first.on_connect)
    await asyncio.wait_for(sub.connected.wait(), 10)
    failures = [RuntimeError("the reload's query failed")]
    late = Follower()

    async def flaky(resumed: bool) -> None:
        if failures:
            raise failures.pop()
        await late.on_connect(resumed)

    late_sub = await notifications.subscribe(("t_late",), late.on_notice, on_connect=flaky)
    await asyncio.wait_for(late_sub.connected.wait(), 15)
    assert late.connects == [False]
    assert first.connects == [False, True]  # told that notices may have been missed
    await owner_pool.execute("select pg_notify('t_late', 'caught up')")
    assert await received(late) == ("t_late", "caught up")


async def test_an_unsubscribed_subscriber_gets_no_more_notices(
    notifications: Notifications, owner_pool: asyncpg.Pool
) -> None:
    gone, staying = Follower(), Follower()
    gone_sub = await notifications.subscribe(("t_gone", "t_both"), gone.on_notice)
    sub = await notifications.subscribe(("t_both",), staying.on_notice)
    await asyncio.wait_for(sub.connected.wait(), 10)
    await notifications.unsubscribe(gone_sub)
    await owner_pool.execute("select pg_notify('t_gone', 'x'), pg_notify('t_both', 'y')")
    assert await received(staying) == ("t_both", "y")
    assert gone.notices.empty()
