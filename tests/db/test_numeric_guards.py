"""Numbers a column cannot keep are refused (issue 8 A.2): NaN, ±Infinity, more decimals than
the column keeps, more integer digits than it had. Proved on the catalog for every numeric
column, then shown through SQL and through REST with the official client."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal

import asyncpg
import pytest
from harness import acting_as
from postgrest.exceptions import APIError

# Every schema a client can write, directly or through a function.
CLIENT_SCHEMAS = ("public", "storage", "auth")


async def _numeric_columns(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch(
        """select n.nspname as schema, c.relname as table, a.attname as column, a.attnum,
                  c.oid as relid, g.scale, g.precision
           from pg_attribute a
           join pg_class c on c.oid = a.attrelid
           join pg_namespace n on n.oid = c.relnamespace
           left join pb_internal.numeric_columns g
                  on (g.table_schema, g.table_name, g.column_name) = (n.nspname, c.relname, a.attname)
           where c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
             and a.atttypid = 'numeric'::regtype and n.nspname = any($1::text[])
           order by 1, 2, 3""",
        list(CLIENT_SCHEMAS),
    )


async def _refused(pool: asyncpg.Pool, relid: int, attnum: int, column: str, value: str) -> bool:
    """Whether the checks on this column alone refuse `value` (each check is evaluated on a
    one-column row holding it, as PostgreSQL evaluates it on a new row)."""
    checks = await pool.fetch(
        "select pg_get_expr(conbin, conrelid) as expr from pg_constraint"
        " where conrelid = $1 and contype = 'c' and conkey = array[$2::smallint]",
        relid,
        attnum,
    )
    for check in checks:
        ok = await pool.fetchval(
            f'select ({check["expr"]}) from (select $1::numeric as "{column}") x', value
        )
        if ok is False:
            return True
    return False


async def test_no_float_columns_in_client_schemas(owner_pool: asyncpg.Pool) -> None:
    # float4/float8 hold NaN and round silently: money and quantities are numeric only.
    rows = await owner_pool.fetch(
        "select n.nspname || '.' || c.relname || '.' || a.attname as name from pg_attribute a"
        " join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped"
        " and a.atttypid in ('float4'::regtype, 'float8'::regtype)"
        " and n.nspname = any($1::text[])",
        list(CLIENT_SCHEMAS),
    )
    assert [r["name"] for r in rows] == []


async def test_no_numeric_column_can_hold_nan_infinity_or_extra_decimals(
    owner_pool: asyncpg.Pool,
) -> None:
    columns = await _numeric_columns(owner_pool)
    assert len(columns) >= 24
    problems = []
    for col in columns:
        name = f"{col['schema']}.{col['table']}.{col['column']}"
        if col["scale"] is None:
            problems.append(f"{name}: not in pb_internal.numeric_columns")
            continue
        too_precise = "0." + "0" * col["scale"] + "1"
        too_large = "1" + "0" * (col["precision"] - col["scale"])
        for value in ("NaN", "Infinity", "-Infinity", too_precise, too_large, "-" + too_large):
            if not await _refused(owner_pool, col["relid"], col["attnum"], col["column"], value):
                problems.append(f"{name} accepts {value}")
    assert problems == []


async def test_scale_is_kept_and_errors_name_the_column_and_the_rule(
    owner_pool: asyncpg.Pool,
) -> None:
    owner = await owner_pool.fetchval(
        "insert into auth.users (email, encrypted_password) values ($1, 'x') returning id",
        f"nan-{uuid.uuid4().hex[:8]}@example.com",
    )
    async with acting_as(owner_pool, "authenticated", owner) as conn:
        row = await conn.fetchrow(
            "insert into products (sku, name, sale_price, cost_price, reorder_level)"
            " values ('N-1', 'Roti', 5, '1.230', 2) returning sale_price::text as price,"
            " cost_price::text as cost, reorder_level::text as level, id"
        )
        # The column's scale, as numeric(12, 2) showed it: clients decoding doubles still work.
        assert (row["price"], row["cost"], row["level"]) == ("5.00", "1.23", "2.000")
        cases = {
            "NaN": "products_sale_price_is_finite",
            "Infinity": "products_sale_price_is_finite",
            "-Infinity": "products_sale_price_is_finite",
            "1.234": "products_sale_price_max_2_decimals",
            "10000000000": "products_sale_price_max_10_integer_digits",
        }
        for value, constraint in cases.items():
            with pytest.raises(asyncpg.CheckViolationError) as info:
                async with conn.transaction():
                    await conn.execute(
                        "update products set sale_price = $1::numeric where id = $2",
                        value,
                        row["id"],
                    )
            assert info.value.constraint_name == constraint, value
        with pytest.raises(asyncpg.CheckViolationError) as info:
            async with conn.transaction():
                await conn.execute(
                    "update products set reorder_level = 1.0005 where id = $1", row["id"]
                )
        assert info.value.constraint_name == "products_reorder_level_max_3_decimals"
        assert (
            await conn.fetchval("select sale_price from products where id = $1", row["id"])
        ) == Decimal("5.00")


async def test_guard_refuses_to_repair_existing_nan_rows(owner_pool: asyncpg.Pool) -> None:
    """The migration's guard stops on a stored NaN instead of rewriting it."""
    async with owner_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(
                "create table public.nan_probe (id int primary key, amount numeric(12, 2));"
                " insert into public.nan_probe values (1, 'NaN'), (2, 1.5);"
                " insert into pb_internal.numeric_columns values"
                " ('public', 'nan_probe', 'amount', 12, 2)"
            )
            with pytest.raises(asyncpg.RaiseError, match=r"public\.nan_probe\.amount holds 1 non"):
                async with conn.transaction():
                    await conn.execute(
                        "select pb_internal.guard_numeric_columns('public', 'nan_probe')"
                    )
            assert (
                await conn.fetchval("select amount::text from public.nan_probe where id = 1")
                == "NaN"
            )
        finally:
            await tx.rollback()


def test_rest_refuses_nan_infinity_and_extra_decimals(make_user: Callable[..., object]) -> None:
    user = make_user()
    products = user.client.table("products")  # type: ignore[attr-defined]
    product = products.insert({"sku": "NAN-1", "name": "Kuih", "sale_price": "2.50"}).execute()
    pid = product.data[0]["id"]
    assert Decimal(str(product.data[0]["sale_price"])) == Decimal("2.50")
    for body, constraint in [
        ({"sale_price": "NaN"}, "products_sale_price_is_finite"),
        ({"sale_price": "Infinity"}, "products_sale_price_is_finite"),
        ({"cost_price": "-Infinity"}, "products_cost_price_is_finite"),
        ({"cost_price": "-1"}, "products_cost_price_non_negative"),
        ({"sale_price": "1.234"}, "products_sale_price_max_2_decimals"),
        ({"sale_price": 1.234}, "products_sale_price_max_2_decimals"),
        ({"reorder_level": "0.0001"}, "products_reorder_level_max_3_decimals"),
        ({"tax_rate": "NaN"}, "products_tax_rate_is_finite"),
    ]:
        with pytest.raises(APIError) as info:
            products.update(body).eq("id", pid).execute()  # type: ignore[attr-defined]
        assert info.value.code == "23514", body
        assert constraint in str(info.value.message), body
    with pytest.raises(APIError) as info:
        products.insert({"sku": "NAN-2", "name": "Bad", "sale_price": "NaN"}).execute()  # type: ignore[attr-defined]
    assert info.value.code == "23514"
    assert "products_sale_price_is_finite" in str(info.value.message)
    kept = products.select("sale_price").eq("id", pid).execute()  # type: ignore[attr-defined]
    assert Decimal(str(kept.data[0]["sale_price"])) == Decimal("2.50")
