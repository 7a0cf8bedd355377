"""The delivery rule equals RLS: for a population of rows and subscribers, the set of
(subscriber, row) pairs delivered is exactly the set each subscriber can SELECT.

A restrictive policy hides some of each tenant's own rows from that tenant, so owner matching
alone would deliver too much: only reading the row as the subscriber gets this right.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from harness import ServerProcess
from rt_helpers import Inbox, committed_as, reading_as, signed_in
from supabase import AsyncClient, acreate_client

TABLES = ("products", "customers")
Event = tuple[str, str, str, str]  # (subscriber, table, row id, type)


async def readable(pool: asyncpg.Pool, role: str, user_id: str | None, ids: list[str]) -> set:
    """(table, id) of `ids` that this role and user can SELECT right now."""
    found: set[tuple[str, str]] = set()
    for table in TABLES:
        try:
            async with reading_as(pool, role, user_id) as conn:
                rows = await conn.fetch(
                    f"select id::text from public.{table} where id = any($1::uuid[])", ids
                )
        except asyncpg.InsufficientPrivilegeError:
            continue  # anon: no grant at all
        found.update((table, r["id"]) for r in rows)
    return found


def delivered(inboxes: dict[str, Inbox], type_: str) -> set[Event]:
    out: set[Event] = set()
    for name, inbox in inboxes.items():
        for item in inbox.items:
            data = item["data"]
            kind = getattr(data["type"], "value", data["type"])
            if kind != type_:
                continue
            row = data.get("record") if type_ != "DELETE" else data.get("old_record")
            out.add((name, data["table"], row["id"], type_))
    return out


async def settle(inboxes: dict[str, Inbox], type_: str, expected: set[Event]) -> set[Event]:
    """Wait until every expected event is in, then a little longer for unexpected ones."""
    for _ in range(60):
        if expected <= delivered(inboxes, type_):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    return delivered(inboxes, type_)


async def test_delivered_pairs_equal_the_pairs_readable_under_rls(
    server: ServerProcess,
    make_user: Callable[..., Any],
    owner_pool: asyncpg.Pool,
    clients: list[AsyncClient],
) -> None:
    users = {name: make_user() for name in ("a", "b", "c")}
    subscribers: dict[str, tuple[str, str | None]] = {
        name: ("authenticated", u.id) for name, u in users.items()
    }
    subscribers["service"] = ("service_role", None)
    subscribers["anon"] = ("anon", None)

    inboxes = {name: Inbox() for name in subscribers}
    for name in subscribers:
        if name in users:
            client = await signed_in(server, users[name].email, users[name].password)
        else:
            key = server.service_key if name == "service" else server.anon_key
            client = await acreate_client(server.url, key)
        clients.append(client)
        channel = client.channel(f"rls-{name}")
        if name == "a":  # one binding for every table of the schema
            channel.on_postgres_changes("*", inboxes[name], schema="public")
        else:
            for table in TABLES:
                channel.on_postgres_changes("*", inboxes[name], table=table, schema="public")
        await channel.subscribe()

    marker = uuid.uuid4().hex[:8]
    policy = f"hide_{marker}"
    async with owner_pool.acquire() as conn:
        await conn.execute(
            f"create policy {policy} on public.products as restrictive for select "
            f"to authenticated using (name not like 'hidden-{marker}%')"
        )
    try:
        # Phase 1: inserts by every tenant, some hidden from their own tenant by the policy,
        # and one written by the owner role straight into A's tenant.
        inserted: list[str] = []
        for name, user in users.items():
            async with committed_as(owner_pool, user.id) as conn:
                for label in ("shown-1", "shown-2", f"hidden-{marker}"):
                    product_id = str(uuid.uuid4())
                    await conn.execute(
                        "insert into public.products (id, sku, name, sale_price)"
                        " values ($1, $2, $3, 1)",
                        product_id,
                        f"{label}-{name}",
                        f"{label}-{name}",
                    )
                    inserted.append(product_id)
                customer_id = str(uuid.uuid4())
                await conn.execute(
                    "insert into public.customers (id, name) values ($1, $2)",
                    customer_id,
                    f"Pelanggan {name}",
                )
                inserted.append(customer_id)
        async with owner_pool.acquire() as conn:
            direct = str(uuid.uuid4())
            await conn.execute(
                "insert into public.products (business_owner_id, id, sku, name, sale_price)"
                " values ($1, $2, 'direct', 'direct', 1)",
                users["a"].id,
                direct,
            )
            inserted.append(direct)

        async def expected_for(ids: list[str], type_: str) -> set[Event]:
            out: set[Event] = set()
            for name, (role, user_id) in subscribers.items():
                for table, row_id in await readable(owner_pool, role, user_id, ids):
                    out.add((name, table, row_id, type_))
            return out

        expected = await expected_for(inserted, "INSERT")
        got = await settle(inboxes, "INSERT", expected)
        assert got == expected
        # The population really exercises the rule: cross-tenant, hidden and service rows.
        assert any(e[0] == "service" for e in got) and not any(e[0] == "anon" for e in got)
        assert len({e[2] for e in got if e[0] in users}) < len(inserted)

        # Phase 2: updates, including of rows the updating tenant cannot see.
        async with owner_pool.acquire() as conn:
            await conn.execute(
                "update public.products set description = 'updated' where id = any($1::uuid[])",
                inserted,
            )
            await conn.execute(
                "update public.customers set notes = 'updated' where id = any($1::uuid[])",
                inserted,
            )
        expected = await expected_for(inserted, "UPDATE")
        got = await settle(inboxes, "UPDATE", expected)
        assert got == expected

        # Phase 3: deletes of rows their tenants can see (a deleted row cannot be re-read,
        # so deletes go to the tenant that could read the row just before).
        shown = [
            row_id
            for name, user in users.items()
            for _, row_id in await readable(owner_pool, "authenticated", user.id, inserted)
            if _ == "products"
        ]
        doomed = shown[::2]
        expected = await expected_for(doomed, "DELETE")
        async with owner_pool.acquire() as conn:
            await conn.execute("delete from public.products where id = any($1::uuid[])", doomed)
        got = await settle(inboxes, "DELETE", expected)
        assert got == expected
    finally:
        async with owner_pool.acquire() as conn:
            await conn.execute(f"drop policy {policy} on public.products")
