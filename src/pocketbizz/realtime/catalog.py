"""Which tables announce changes, and their columns and keys — read from the catalog.

A table is available to realtime exactly when it carries the `pb_internal.realtime_notify`
trigger (migration 0005). Only names found here reach SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

SCHEMA = "public"

_TABLES_SQL = """
select c.relname as table_name,
       a.attname as column_name,
       t.typname as type_name,
       pg_catalog.format_type(a.atttypid, null) as cast_type,
       coalesce(a.attnum = any (i.indkey::int2[]), false) as is_key
from pg_catalog.pg_trigger tr
join pg_catalog.pg_proc p on p.oid = tr.tgfoid and p.proname = 'realtime_notify'
join pg_catalog.pg_namespace pn on pn.oid = p.pronamespace and pn.nspname = 'pb_internal'
join pg_catalog.pg_class c on c.oid = tr.tgrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace and n.nspname = $1
join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
join pg_catalog.pg_type t on t.oid = a.atttypid
left join pg_catalog.pg_index i on i.indrelid = c.oid and i.indisprimary
order by c.relname, a.attnum
"""


@dataclass(frozen=True)
class RealtimeTable:
    name: str
    column_types: dict[str, str]  # name → type name as Supabase reports it ('uuid', 'numeric')
    cast_types: dict[str, str]  # name → type usable in a cast
    key: tuple[str, ...]

    @property
    def columns(self) -> list[dict[str, str]]:
        return [{"name": name, "type": type_} for name, type_ in self.column_types.items()]

    def row_sql(self) -> str:
        """The row by primary key, as exact JSON text; RLS of the running role applies."""
        where = " and ".join(
            f"t.{_quote(col)} = ${n}::text::{self.cast_types[col]}"
            for n, col in enumerate(self.key, start=1)
        )
        return (
            f"select pg_catalog.to_jsonb(t)::text from {SCHEMA}.{_quote(self.name)} t where {where}"
        )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class Catalog:
    def __init__(self) -> None:
        self.tables: dict[str, RealtimeTable] = {}

    async def load(self, conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> None:
        rows = await conn.fetch(_TABLES_SQL, SCHEMA)
        tables: dict[str, RealtimeTable] = {}
        for row in rows:
            name = row["table_name"]
            table = tables.setdefault(name, RealtimeTable(name, {}, {}, ()))
            table.column_types[row["column_name"]] = row["type_name"]
            table.cast_types[row["column_name"]] = row["cast_type"]
            if row["is_key"]:
                tables[name] = table = RealtimeTable(
                    name, table.column_types, table.cast_types, (*table.key, row["column_name"])
                )
        self.tables = tables

    def get(self, schema: str, table: str) -> RealtimeTable | None:
        return self.tables.get(table) if schema == SCHEMA else None
