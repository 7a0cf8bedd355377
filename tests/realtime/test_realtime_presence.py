"""Presence: track / untrack, presence_state and presence_diff, per channel and tenant, across
server processes (which share only PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from harness import ServerProcess
from rt_helpers import Inbox, signed_in
from supabase import AsyncClient
from v2_helpers import is_reply, join, nothing_arrives, recv, v2_url
from websockets.asyncio.client import ClientConnection

AUTHENTICATOR_PASSWORD = "test-authenticator"


def event_is(name: str) -> Callable[[Any], bool]:
    return lambda f: isinstance(f, list) and f[3] == name


class Frames:
    """A socket's frames, kept while a test waits for another one (a reply may come after the
    diffs and state its request caused)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.kept: list[Any] = []

    async def next(self, predicate: Callable[[Any], bool], within: float = 2.0) -> list[Any]:
        for frame in self.kept:
            if predicate(frame):
                self.kept.remove(frame)
                assert isinstance(frame, list)
                return frame
        async with asyncio.timeout(within):
            while True:
                frame = await recv(self.ws, within)
                if predicate(frame):
                    assert isinstance(frame, list)
                    return frame
                self.kept.append(frame)


async def track(frames: Frames, topic: str, ref: str, meta: Any) -> list[Any]:
    payload = {"type": "presence", "event": "track", "payload": meta}
    await frames.ws.send(json.dumps(["1", ref, topic, "presence", payload]))
    return await frames.next(is_reply(ref))


def metas(state: dict[str, Any], key: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = state[key]["metas"]
    return entries


async def test_track_untrack_and_diffs_between_two_sockets_of_one_tenant(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a = make_user()
    on = {"key": "till-1", "enabled": True}
    async with (
        websockets.connect(v2_url(server)) as till_ws,
        websockets.connect(v2_url(server)) as phone_ws,
    ):
        till, phone = Frames(till_ws), Frames(phone_ws)
        await join(till_ws, "realtime:shop", "1", token=a.access_token, presence=on)
        assert await till.next(event_is("presence_state")) == [
            "1",
            None,
            "realtime:shop",
            "presence_state",
            {},
        ]
        reply = await track(till, "realtime:shop", "2", {"device": "till", "open": True})
        assert reply == ["1", "2", "realtime:shop", "phx_reply", {"status": "ok", "response": {}}]
        diff = await till.next(event_is("presence_diff"))
        assert diff[:3] == [None, None, "realtime:shop"]
        (joined,) = metas(diff[4]["joins"], "till-1")
        assert diff[4]["leaves"] == {}
        assert joined["device"] == "till" and joined["open"] is True
        assert isinstance(joined["phx_ref"], str) and joined["phx_ref"]

        # A channel joining later gets the state, with the same phx_ref.
        await join(phone_ws, "realtime:shop", "1", token=a.access_token, presence={"key": "phone"})
        state = await phone.next(event_is("presence_state"))
        assert metas(state[4], "till-1") == [joined]

        # Tracking again is an update: a join carrying phx_ref_prev, and a leave of the old meta.
        await track(till, "realtime:shop", "3", {"device": "till", "open": False})
        update = await phone.next(event_is("presence_diff"))
        (new,) = metas(update[4]["joins"], "till-1")
        assert new["open"] is False and new["phx_ref_prev"] == joined["phx_ref"]
        assert metas(update[4]["leaves"], "till-1") == [joined]

        untrack = {"type": "presence", "event": "untrack"}
        await till_ws.send(json.dumps(["1", "4", "realtime:shop", "presence", untrack]))
        assert (await till.next(is_reply("4")))[4]["status"] == "ok"
        gone = await phone.next(event_is("presence_diff"))
        assert gone[4]["joins"] == {}
        assert [m["phx_ref"] for m in metas(gone[4]["leaves"], "till-1")] == [new["phx_ref"]]


async def test_a_closed_socket_leaves_and_other_tenants_see_nothing(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a, b = make_user(), make_user()
    async with (
        websockets.connect(v2_url(server)) as watcher_ws,
        websockets.connect(v2_url(server)) as stranger,
    ):
        watcher = Frames(watcher_ws)
        await join(watcher_ws, "realtime:shop", "1", token=a.access_token, presence={"key": "w"})
        await join(stranger, "realtime:shop", "1", token=b.access_token, presence={"key": "s"})
        async with websockets.connect(v2_url(server)) as till_ws:
            await join(till_ws, "realtime:shop", "1", token=a.access_token, presence={"key": "t"})
            await track(Frames(till_ws), "realtime:shop", "2", {"device": "till"})
            joined = await watcher.next(event_is("presence_diff"))
            assert list(joined[4]["joins"]) == ["t"]
        left = await watcher.next(event_is("presence_diff"))
        assert list(left[4]["leaves"]) == ["t"]
        # Tenant B, on a topic of the same name, saw none of it.
        assert [f for f in await nothing_arrives(stranger) if event_is("presence_diff")(f)] == []


async def test_a_channel_without_presence_gets_no_diffs_until_it_tracks(
    server: ServerProcess, make_user: Callable[..., Any]
) -> None:
    a = make_user()
    async with (
        websockets.connect(v2_url(server)) as quiet_ws,
        websockets.connect(v2_url(server)) as busy_ws,
    ):
        quiet = Frames(quiet_ws)
        await join(quiet_ws, "realtime:shop", "1", token=a.access_token)  # enabled: false
        await join(busy_ws, "realtime:shop", "1", token=a.access_token, presence={"key": "b"})
        await track(Frames(busy_ws), "realtime:shop", "2", {"n": 1})
        assert await nothing_arrives(quiet_ws) == []
        # Its first track turns presence on, and brings the state it has not seen.
        await track(quiet, "realtime:shop", "3", {"n": 2})
        state = await quiet.next(event_is("presence_state"))
        assert {"b"} <= set(state[4])


@pytest.mark.parametrize("meta", [["not", "an", "object"], {"big": "x" * 4000}])
async def test_bad_track_payloads_are_refused(
    server: ServerProcess, make_user: Callable[..., Any], meta: Any
) -> None:
    a = make_user()
    async with websockets.connect(v2_url(server)) as ws:
        await join(ws, "realtime:shop", "1", token=a.access_token)
        reply = await track(Frames(ws), "realtime:shop", "2", meta)
        assert reply[4]["status"] == "error"


async def test_presence_crosses_server_processes(
    server: ServerProcess,
    owner_dsn: str,
    tmp_path: Path,
    make_user: Callable[..., Any],
    clients: list[AsyncClient],
) -> None:
    a = make_user()
    other = ServerProcess(
        owner_dsn, tmp_path, env_overrides={"PB_AUTHENTICATOR_PASSWORD": AUTHENTICATOR_PASSWORD}
    )
    other.start()
    try:
        async with websockets.connect(v2_url(server)) as here:
            await join(here, "realtime:shop", "1", token=a.access_token, presence={"key": "till"})
            frames = Frames(here)
            await track(frames, "realtime:shop", "2", {"device": "till"})

            # supabase-py on the other process: presence_state on join, diffs afterwards.
            py = await signed_in(other, a.email, a.password)
            clients.append(py)
            synced, joins = Inbox(), Inbox()
            channel = py.channel("shop", {"config": {"presence": {"key": "phone"}}})
            channel.on_presence_sync(lambda: synced({"state": channel.presence_state()}))
            channel.on_presence_join(lambda key, cur, new: joins({"key": key, "new": new}))
            await channel.subscribe()
            got = await synced.wait_for(lambda s: "till" in s["state"], within=3)
            assert got["state"]["till"][0]["device"] == "till"

            await channel.track({"device": "phone"})
            came = await frames.next(
                lambda f: event_is("presence_diff")(f) and "phone" in f[4]["joins"], within=3
            )
            assert metas(came[4]["joins"], "phone")[0]["device"] == "phone"
    finally:
        other.stop()
