"""The storage policies, checked in SQL as the `authenticated` role (never as the owner)."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from harness import acting_as


async def _tenant(pool: asyncpg.Pool) -> str:
    user_id = str(uuid.uuid4())
    await pool.execute(
        "insert into auth.users (id, email, encrypted_password) values ($1, $2, 'x')",
        uuid.UUID(user_id),
        f"policy-{user_id[:8]}@example.com",
    )
    return user_id


async def test_objects_belong_to_the_first_path_segment(owner_pool: asyncpg.Pool) -> None:
    a, b = await _tenant(owner_pool), await _tenant(owner_pool)
    await owner_pool.execute(
        "insert into storage.objects (bucket_id, name, owner_id, metadata)"
        " values ('receipts', $1, $2, '{}'), ('product-images', $3, $2, '{}')",
        f"{a}/r.txt",
        uuid.UUID(a),
        f"{a}/p.png",
    )
    async with acting_as(owner_pool, "authenticated", b) as conn:
        # B sees none of A's rows, in a private bucket or a public one.
        assert (
            await conn.fetchval("select count(*) from storage.objects where name like $1", f"{a}/%")
            == 0
        )
        assert await conn.fetchval("select count(*) from storage.buckets") >= 3
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "insert into storage.objects (bucket_id, name) values ('receipts', $1)", f"{a}/x"
            )
    async with acting_as(owner_pool, "authenticated", b) as conn:
        await conn.execute(
            "insert into storage.objects (bucket_id, name) values ('receipts', $1)", f"{b}/mine"
        )
        # Renaming one's own object into another tenant's folder is refused.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "update storage.objects set name = $1 where name = $2", f"{a}/y", f"{b}/mine"
            )
    async with acting_as(owner_pool, "authenticated", b) as conn:
        assert (
            await conn.execute("delete from storage.objects where name like $1", f"{a}/%")
            == "DELETE 0"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("insert into storage.buckets (id, name) values ('mine', 'mine')")
    async with acting_as(owner_pool, "anon") as conn:
        assert await conn.fetchval("select count(*) from storage.objects") == 0
    async with acting_as(owner_pool, "authenticated", a) as conn:
        assert await conn.fetchval("select count(*) from storage.objects") == 2
    await owner_pool.execute("delete from storage.objects where owner_id = $1", uuid.UUID(a))
