"""The server behind PgBouncer in transaction mode (issue 11.5): the official client signs up,
reads and writes, sells concurrently from several tenants with failures mid-transaction,
stores files, follows row changes and gets a job run — with DATABASE_URL through PgBouncer
(statement cache off) and the session-scoped connections on DATABASE_DIRECT_URL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from deploy.bouncer import AUTHENTICATOR_PASSWORD, SERVER_SESSIONS, PgBouncer
from harness import ServerProcess
from messages.fake_graph import FakeGraph
from postgrest.exceptions import APIError
from realtime import RealtimeSubscribeStates
from supabase import Client, acreate_client, create_client


def sign_up(server: ServerProcess) -> tuple[Client, str, str, str]:
    """A new tenant signed in through PgBouncer: (client, user id, email, password)."""
    client = create_client(server.url, server.anon_key)
    email, password = f"bouncer-{uuid.uuid4().hex[:12]}@example.com", "correct horse battery"
    res = client.auth.sign_up({"email": email, "password": password})
    assert res.user is not None and res.session is not None
    return client, res.user.id, email, password


def stocked_product(client: Client, name: str, price: str, stock: int) -> str:
    row = (
        client.table("products")
        .insert({"sku": f"SKU-{uuid.uuid4().hex[:8]}", "name": name, "sale_price": price})
        .execute()
        .data[0]
    )
    if stock:
        client.rpc(
            "record_purchase", {"product_id": row["id"], "quantity": stock, "unit_cost": "1.00"}
        ).execute()
    return str(row["id"])


def stock_of(client: Client, product_id: str) -> Decimal:
    row = client.table("products").select("current_stock").eq("id", product_id).single()
    return Decimal(str(row.execute().data["current_stock"]))


def test_sign_up_sign_in_and_refresh(pooled_server: ServerProcess) -> None:
    _, user_id, email, password = sign_up(pooled_server)
    again = create_client(pooled_server.url, pooled_server.anon_key)
    signed_in = again.auth.sign_in_with_password({"email": email, "password": password})
    assert signed_in.user is not None and signed_in.user.id == user_id
    assert signed_in.session is not None
    refreshed = again.auth.refresh_session(signed_in.session.refresh_token)
    assert refreshed.session is not None
    assert refreshed.session.refresh_token != signed_in.session.refresh_token
    user = again.auth.get_user(refreshed.session.access_token)
    assert user is not None and user.user.email == email
    # A wrong password is refused the same way as without a pooler.
    with pytest.raises(Exception, match="Invalid login credentials"):
        create_client(pooled_server.url, pooled_server.anon_key).auth.sign_in_with_password(
            {"email": email, "password": "wrong password"}
        )


def test_rest_crud_embeds_and_rpc(pooled_server: ServerProcess) -> None:
    client, user_id, *_ = sign_up(pooled_server)
    kuih = stocked_product(client, "Kuih lapis", "1.50", 10)
    updated = client.table("products").update({"name": "Kuih lapis pandan"}).eq("id", kuih)
    assert updated.execute().data[0]["name"] == "Kuih lapis pandan"

    sale = client.rpc(
        "create_sale", {"items": [{"product_id": kuih, "quantity": 4}], "payment_method": "cash"}
    ).execute()
    read = (
        client.table("sales")
        .select("sale_number, final_amount, sale_items(quantity, products(name))")
        .eq("id", sale.data["id"])
        .single()
        .execute()
        .data
    )
    assert read["sale_number"] == sale.data["sale_number"]
    assert Decimal(str(read["final_amount"])) == Decimal("6.00")
    [item] = read["sale_items"]
    assert item["products"]["name"] == "Kuih lapis pandan"
    assert stock_of(client, kuih) == 6

    spare = stocked_product(client, "Teh tarik", "2.20", 0)
    client.table("products").delete().eq("id", spare).execute()
    names = [r["name"] for r in client.table("products").select("name").execute().data]
    assert names == ["Kuih lapis pandan"]
    profile = client.table("users").select("id").execute().data
    assert profile == [{"id": user_id}]


async def test_concurrent_tenants_with_failures_leave_nothing_on_the_pooled_sessions(
    pooled_server: ServerProcess, pgbouncer: PgBouncer
) -> None:
    tenants = [sign_up(pooled_server) for _ in range(4)]
    products = [stocked_product(c, f"Roti {i}", "3.00", 100) for i, (c, *_) in enumerate(tenants)]

    def day_of_trade(index: int) -> tuple[int, list[str]]:
        """Ten sales, every third call failing inside create_sale's transaction."""
        client, product = tenants[index][0], products[index]
        sold, errors = 0, []
        for n in range(10):
            items = [{"product_id": product, "quantity": 2}]
            try:
                if n % 3 == 2:
                    # Refused after the stock was moved: the whole transaction rolls back.
                    client.rpc("create_sale", {"items": items, "discount_amount": "99"}).execute()
                else:
                    client.rpc("create_sale", {"items": items}).execute()
                    sold += 1
            except APIError as exc:
                errors.append(str(exc.code))
        try:  # a constraint violation in a plain insert, as PostgREST reports it
            client.table("products").insert(
                {"sku": "NEG", "name": "Negative", "sale_price": "-1"}
            ).execute()
        except APIError as exc:
            errors.append(str(exc.code))
        return sold, errors

    # Meanwhile a client of PgBouncer's own reads what each pooled server session holds
    # between transactions: always the bare login, no role, no claims.
    probe = await asyncpg.connect(
        pgbouncer.url(password=AUTHENTICATOR_PASSWORD), statement_cache_size=0
    )
    seen: list[tuple[str, str, str, int]] = []
    done = asyncio.Event()

    async def watch() -> None:
        # Until the trading is over, and at least 20 looks in all: on a fast run the trading
        # may leave the probe only a few turns on the shared sessions.
        while not done.is_set() or len(seen) < 20:
            row = await probe.fetchrow(
                "select current_user::text, current_setting('role'),"
                " coalesce(current_setting('request.jwt.claims', true), ''), pg_backend_pid()"
            )
            assert row is not None
            seen.append((row[0], row[1], row[2], row[3]))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        with ThreadPoolExecutor(max_workers=len(tenants)) as pool:
            outcomes = await asyncio.gather(
                *(
                    asyncio.get_running_loop().run_in_executor(pool, day_of_trade, i)
                    for i in range(len(tenants))
                )
            )
    finally:
        done.set()
        await watcher
        await probe.close()

    for (client, user_id, *_), product, (sold, errors) in zip(
        tenants, products, outcomes, strict=True
    ):
        assert sold == 7 and errors == ["PT422"] * 3 + ["23514"]
        # No partial sale: only the successful ones moved stock, and each tenant sees its own.
        assert stock_of(client, product) == 100 - 2 * sold
        sales = client.table("sales").select("business_owner_id", count="exact").execute()
        assert sales.count == sold and {r["business_owner_id"] for r in sales.data} == {user_id}
    assert len(seen) >= 20
    assert {(login, role, claims) for login, role, claims, _ in seen} == {
        ("authenticator", "none", "")
    }
    # The probe shared the few server sessions the tenants' transactions ran on.
    assert len({pid for *_, pid in seen}) <= SERVER_SESSIONS


def test_storage_upload_and_download(pooled_server: ServerProcess) -> None:
    client, user_id, *_ = sign_up(pooled_server)
    bucket = client.storage.from_("receipts")
    key = f"{user_id}/2026/receipt-1.txt"
    bucket.upload(key, b"Resit: Kuih lapis x4", {"content-type": "text/plain"})
    assert bucket.download(key) == b"Resit: Kuih lapis x4"
    assert [o["name"] for o in bucket.list(f"{user_id}/2026")] == ["receipt-1.txt"]
    other, *_ = sign_up(pooled_server)
    with pytest.raises(Exception, match="not found"):
        other.storage.from_("receipts").download(key)


@asynccontextmanager
async def _inserts_seen(
    server: ServerProcess, email: str, password: str, topic: str, table: str
) -> AsyncIterator[tuple[list[dict[str, Any]], asyncio.Event]]:
    """A client signed in on `server` and subscribed to INSERTs on `table`: the changes it
    receives, and an event set at each."""
    client = await acreate_client(server.url, server.anon_key)
    try:
        res = await client.auth.sign_in_with_password({"email": email, "password": password})
        assert res.session is not None
        await client.realtime.set_auth(res.session.access_token)
        changes: list[dict[str, Any]] = []
        arrived = asyncio.Event()

        def on_change(payload: dict[str, Any]) -> None:
            changes.append(payload)
            arrived.set()

        states: list[RealtimeSubscribeStates] = []
        channel = client.channel(topic)
        channel.on_postgres_changes("INSERT", on_change, table=table, schema="public")
        await channel.subscribe(lambda state, _err: states.append(state))
        assert states == [RealtimeSubscribeStates.SUBSCRIBED]
        yield changes, arrived
    finally:
        await client.realtime.close()


async def test_realtime_changes_arrive(pooled_server: ServerProcess) -> None:
    writer, user_id, email, password = sign_up(pooled_server)
    async with _inserts_seen(pooled_server, email, password, "shop", "products") as (
        changes,
        arrived,
    ):
        created = await asyncio.to_thread(
            lambda: (
                writer.table("products")
                .insert({"sku": "RT-1", "name": "Cendol", "sale_price": "4.00"})
                .execute()
            )
        )
        await asyncio.wait_for(arrived.wait(), 10)
    record = changes[0]["data"]["record"]
    assert record["id"] == created.data[0]["id"]
    assert record["business_owner_id"] == user_id


async def test_a_change_made_through_one_process_reaches_a_subscriber_of_another(
    pooled_server: ServerProcess, second_pooled_server: ServerProcess
) -> None:
    """Two API processes behind one PgBouncer: the write goes through the first, the
    subscriber is on the second, and the change crosses by NOTIFY on their direct LISTEN
    connections."""
    writer, user_id, email, password = sign_up(pooled_server)
    async with _inserts_seen(
        second_pooled_server, email, password, "other-process", "customers"
    ) as (changes, arrived):
        created = await asyncio.to_thread(
            lambda: writer.table("customers").insert({"name": "Mak Cik Kiah"}).execute()
        )
        await asyncio.wait_for(arrived.wait(), 10)
    assert changes[0]["data"]["record"]["id"] == created.data[0]["id"]
    assert changes[0]["data"]["record"]["business_owner_id"] == user_id


async def test_a_queued_receipt_job_runs(pooled_server: ServerProcess, graph: FakeGraph) -> None:
    graph.reset()
    client, user_id, *_ = sign_up(pooled_server)
    client.table("business_profiles").update(
        {"business_name": "Kedai Pool", "negative_stock_policy": "allow"}
    ).eq("business_owner_id", user_id).execute()
    product = stocked_product(client, "Air kelapa", "5.00", 0)
    sale = client.rpc("create_sale", {"items": [{"product_id": product, "quantity": 1}]}).execute()
    answer = client.functions.invoke(
        "send-receipt",
        {"body": {"sale_id": sale.data["id"], "phone": "012-345 6789"}, "responseType": "json"},
    )
    assert answer["status"] == "queued"

    # The in-process worker (on the direct URL) runs the job; the job's transactions go
    # through PgBouncer like a request's.
    def status() -> str:
        rows = client.table("outbound_messages").select("status").eq("id", answer["message_id"])
        return str(rows.single().execute().data["status"])

    deadline = asyncio.get_running_loop().time() + 40
    while status() != "sent":
        assert asyncio.get_running_loop().time() < deadline, status()
        await asyncio.sleep(0.2)
    [sent] = graph.sent("messages")
    assert sent.json["to"] == "60123456789"
