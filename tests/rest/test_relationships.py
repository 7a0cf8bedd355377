"""Relationship detection from the FK catalog: composite tenant keys join on every column, the
owner-only FK to `users` never makes an embed ambiguous, and true ambiguity is PGRST201."""

from __future__ import annotations

import asyncpg
import pytest

from pocketbizz.errors import ApiError
from pocketbizz.rest.plan import Planner
from pocketbizz.rest.query import Query, parse_select
from pocketbizz.rest.schema_cache import Column, ForeignKey, SchemaCache, Table
from pocketbizz.rest.sql import Builder


async def test_catalog_relationships_use_every_fk_column(owner_pool: asyncpg.Pool) -> None:
    async with owner_pool.acquire() as conn:
        cache = await SchemaCache.load(conn)
    (items_to_sale,) = cache.relationships("sale_items", "sales")
    assert items_to_sale.to_one
    assert set(items_to_sale.pairs) == {
        ("business_owner_id", "business_owner_id"),
        ("sale_id", "id"),
    }
    (sale_to_items,) = cache.relationships("sales", "sale_items")
    assert not sale_to_items.to_one
    assert set(sale_to_items.pairs) == {
        ("business_owner_id", "business_owner_id"),
        ("id", "sale_id"),
    }
    # business_profiles is keyed by its owner: one-to-one from users.
    (profile,) = cache.relationships("users", "business_profiles")
    assert profile.to_one and profile.owner_only
    assert cache.tables["products"].primary_key == ("business_owner_id", "id")


def _synthetic() -> SchemaCache:
    def table(name: str, *cols: str, pk: tuple[str, ...]) -> Table:
        return Table(name, False, {c: Column(c, "uuid", False, None) for c in cols}, pk)

    users = table("users", "business_owner_id", "id", pk=("business_owner_id", "id"))
    users.unique_keys.append(("business_owner_id",))
    shifts = table(
        "shifts",
        "business_owner_id",
        "id",
        "manager_id",
        "cashier_id",
        pk=("business_owner_id", "id"),
    )
    notes = table("notes", "business_owner_id", "id", "author_id", pk=("business_owner_id", "id"))
    owner = ("business_owner_id",)
    fks = [
        ForeignKey("shifts_owner_fkey", "shifts", owner, "users", owner),
        ForeignKey(
            "shifts_manager_fkey",
            "shifts",
            ("business_owner_id", "manager_id"),
            "users",
            ("business_owner_id", "id"),
        ),
        ForeignKey(
            "shifts_cashier_fkey",
            "shifts",
            ("business_owner_id", "cashier_id"),
            "users",
            ("business_owner_id", "id"),
        ),
        ForeignKey("notes_owner_fkey", "notes", owner, "users", owner),
        ForeignKey(
            "notes_author_fkey",
            "notes",
            ("business_owner_id", "author_id"),
            "users",
            ("business_owner_id", "id"),
        ),
    ]
    return SchemaCache({"users": users, "shifts": shifts, "notes": notes}, fks, {})


def _embed_sql(cache: SchemaCache, table: str, select: str) -> str:
    plan = Planner(cache).read(cache.tables[table], Query(select=parse_select(select)))
    (embed,) = plan.embeds
    sub, _ = Builder().embed(plan.table, "t0", embed)
    return sub


def test_owner_only_fk_does_not_make_an_embed_ambiguous() -> None:
    sql = _embed_sql(_synthetic(), "notes", "id,users(id)")
    assert '"author_id"' in sql and sql.count(" = ") == 2


def test_two_real_fks_are_ambiguous_until_hinted() -> None:
    cache = _synthetic()
    with pytest.raises(ApiError) as err:
        _embed_sql(cache, "shifts", "id,users(id)")
    assert err.value.code == "PGRST201" and err.value.status == 300
    assert '"manager_id"' in _embed_sql(cache, "shifts", "id,users!shifts_manager_fkey(id)")
    assert '"cashier_id"' in _embed_sql(cache, "shifts", "id,users!cashier_id(id)")
    # Naming the owner-only FK explicitly still works.
    owner_only = _embed_sql(cache, "shifts", "id,users!shifts_owner_fkey(id)")
    assert "manager_id" not in owner_only and "cashier_id" not in owner_only
