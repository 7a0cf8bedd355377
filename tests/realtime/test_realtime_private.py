"""Private channels (Realtime Authorization): row-level security on realtime.messages decides
who may join and receive (SELECT) and who may send (INSERT), with realtime.topic()."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
import websockets
from harness import ServerProcess
from rt_helpers import Inbox, signed_in
from supabase import AsyncClient
from v2_helpers import (
    is_reply,
    join,
    nothing_arrives,
    read_user_broadcast,
    recv,
    recv_until,
    user_broadcast_push,
    v2_url,
)


def refused(sub_topic: str) -> dict[str, Any]:
    reason = (
        f"Unauthorized: You do not have permissions to read from this Channel topic: {sub_topic}"
    )
    return {"status": "error", "response": {"reason": reason}}


@asynccontextmanager
async def policy(pool: asyncpg.Pool, sql: str) -> AsyncIterator[str]:
    """A policy on realtime.messages (named at random, `{name}` in `sql`), dropped at the end."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    async with pool.acquire() as conn:
        await conn.execute(sql.format(name=name))
    try:
        yield name
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f"drop policy {name} on realtime.messages")


async def test_a_tenant_may_use_its_own_topics_only(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a, b = make_user(), make_user()
    own = f"{a.id}:till"
    async with (
        websockets.connect(v2_url(server)) as a_till,
        websockets.connect(v2_url(server)) as a_phone,
        websockets.connect(v2_url(server)) as b_sock,
        websockets.connect(v2_url(server)) as anon,
    ):
        reply = await join(b_sock, f"realtime:{own}", "1", token=b.access_token, private=True)
        assert reply[4] == refused(own)
        reply = await join(anon, f"realtime:{own}", "1", private=True)
        assert reply[4] == refused(own)

        for sock in (a_till, a_phone):
            reply = await join(sock, f"realtime:{own}", "1", token=a.access_token, private=True)
            assert reply[4]["status"] == "ok"
        await a_till.send(user_broadcast_push(f"realtime:{own}", "sale", b'{"n": 1}'))
        got = await recv(a_phone)
        assert isinstance(got, bytes) and orjson.loads(read_user_broadcast(got).payload) == {"n": 1}

        # The bare user id is the tenant's too; another tenant's id is not.
        reply = await join(a_till, f"realtime:{a.id}", "2", token=a.access_token, private=True)
        assert reply[4]["status"] == "ok"
        reply = await join(a_till, f"realtime:{b.id}", "3", token=a.access_token, private=True)
        assert reply[4] == refused(str(b.id))


async def test_an_operator_policy_with_realtime_topic_lets_users_in(
    server: ServerProcess, make_user: Callable[..., Any], owner_pool: asyncpg.Pool
) -> None:
    a, b = make_user(), make_user()
    topic = f"market-{uuid.uuid4().hex[:8]}"
    async with websockets.connect(v2_url(server)) as sock:
        assert (await join(sock, f"realtime:{topic}", "1", token=a.access_token, private=True))[
            4
        ] == refused(topic)
    select = (
        "create policy {name} on realtime.messages for select to authenticated"
        f" using ((select realtime.topic()) = '{topic}')"
    )
    async with (
        policy(owner_pool, select),
        websockets.connect(v2_url(server)) as reader,
        websockets.connect(v2_url(server)) as writer,
    ):
        # SELECT alone: both may join and receive, nobody may send.
        assert (await join(reader, f"realtime:{topic}", "1", token=a.access_token, private=True))[
            4
        ]["status"] == "ok"
        reply = await join(
            writer, f"realtime:{topic}", "1", token=b.access_token, private=True, ack=True
        )
        assert reply[4]["status"] == "ok"
        await writer.send(user_broadcast_push(f"realtime:{topic}", "bid", b"{}", ref="2"))
        assert await nothing_arrives(reader) == []
        # Dropped without a reply, as supabase/realtime does without INSERT.
        assert [f for f in await nothing_arrives(writer) if is_reply("2")(f)] == []

        insert = (
            "create policy {name} on realtime.messages for insert to authenticated"
            f" with check ((select realtime.topic()) = '{topic}')"
        )
        async with policy(owner_pool, insert):
            # Rights are asked once per channel (as Supabase): rejoin to be asked again.
            await join(
                writer, f"realtime:{topic}", "3", token=b.access_token, private=True, ack=True
            )
            await writer.send(user_broadcast_push(f"realtime:{topic}", "bid", b'{"p": 5}', ref="4"))
            assert (await recv_until(writer, is_reply("4")))[4]["status"] == "ok"  # type: ignore[index]
            got = await recv(reader)
            assert isinstance(got, bytes) and read_user_broadcast(got).event == "bid"


async def test_supabase_py_sees_the_refusal_as_a_channel_error(
    server: ServerProcess, make_user: Callable[..., Any], clients: list[AsyncClient]
) -> None:
    a, b = make_user(), make_user()
    client = await signed_in(server, b.email, b.password)
    clients.append(client)
    states = Inbox()
    channel = client.channel(f"{a.id}:till", {"config": {"private": True}})
    await channel.subscribe(lambda state, err: states({"state": str(state), "err": str(err)}))
    got = await states.wait_for(lambda s: "CHANNEL_ERROR" in s["state"], within=3)
    assert "You do not have permissions to read from this Channel topic" in got["err"]


async def test_private_and_public_channels_of_one_name_are_apart(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a = make_user()
    own = f"realtime:{a.id}:till"
    async with (
        websockets.connect(v2_url(server)) as private,
        websockets.connect(v2_url(server)) as public,
    ):
        await join(private, own, "1", token=a.access_token, private=True)
        await join(public, own, "1", token=a.access_token)
        await public.send(user_broadcast_push(own, "sale", b"{}"))
        assert await nothing_arrives(private) == []
        await private.send(user_broadcast_push(own, "sale", b"{}"))
        assert await nothing_arrives(public) == []
