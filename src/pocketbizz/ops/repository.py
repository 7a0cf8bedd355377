"""The operator's SQL: activity rows, the business figures, plans and slow queries.

Every call runs in a service_role transaction opened by the caller (routes, the activity
recorder, the gauges task) after it has decided the caller may see platform-wide figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
import orjson

PLAN_COLUMNS = "code, name, price_monthly, max_active_products, max_sales_per_month, is_active"


async def record_activity(conn: asyncpg.Connection, rows: Sequence[tuple[date, UUID]]) -> None:
    # A user closed between the request and the flush has no tenant row any more: skipped
    # rather than failing the batch on the foreign key.
    await conn.execute(
        """
        insert into pb_internal.user_activity (day, user_id)
        select a.day, a.user_id
        from unnest($1::date[], $2::uuid[]) as a (day, user_id)
        where exists (select from public.users u where u.business_owner_id = a.user_id)
        on conflict do nothing
        """,
        [day for day, _ in rows],
        [user for _, user in rows],
    )


async def business_metrics(conn: asyncpg.Connection, first: date, last: date) -> dict[str, Any]:
    # As text: the same on a request connection (jsonb codec) and on the CLI's plain one.
    text = await conn.fetchval("select pb_internal.business_metrics($1, $2)::text", first, last)
    result: dict[str, Any] = orjson.loads(text)
    return result


async def list_plans(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"select {PLAN_COLUMNS} from public.plans order by price_monthly, code"
    )
    return rows


async def update_plan(
    conn: asyncpg.Connection, code: str, changes: Mapping[str, Any]
) -> asyncpg.Record | None:
    """Set the given columns (names from the service's fixed list, values bound)."""
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    row: asyncpg.Record | None = await conn.fetchrow(
        f"update public.plans set {assignments} where code = $1 returning {PLAN_COLUMNS}",
        code,
        *changes.values(),
    )
    return row


async def slow_queries(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record] | None:
    """The statements with the highest mean time, or None without pg_stat_statements (the
    embedded PostgreSQL ships no contrib modules)."""
    installed = await conn.fetchval(
        "select exists (select from pg_catalog.pg_extension where extname = 'pg_stat_statements')"
    )
    if not installed:
        return None
    schema = await conn.fetchval(
        "select n.nspname from pg_catalog.pg_extension e "
        "join pg_catalog.pg_namespace n on n.oid = e.extnamespace "
        "where e.extname = 'pg_stat_statements'"
    )
    rows: list[asyncpg.Record] = await conn.fetch(
        "select left(query, 500) as query, calls, mean_exec_time, total_exec_time "
        f"from {_quoted(schema)}.pg_stat_statements "
        "order by mean_exec_time desc limit $1",
        limit,
    )
    return rows


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
