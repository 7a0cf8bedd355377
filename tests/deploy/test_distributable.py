"""The schema stays distributable by tenant (DESIGN §3, issue 11.5): deploy/citus/distribute.sql
names exactly the tables that have business_owner_id, and, once it has run, every one of them
has business_owner_id in its primary key and in every unique index, and every foreign key
between them carries it — so all of them can be distributed and co-located with public.users.

Citus itself is not installed here: the script runs against the migrated schema, in a
transaction that is rolled back, with stand-ins for create_distributed_table and
create_reference_table that record each call (the table names must resolve, its DDL must
apply, its order must distribute a table only after what its foreign keys reference)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pgserver
import pytest

from pocketbizz.db import apply_migrations

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "citus" / "distribute.sql"

STANDINS = """
create schema citus_standin;
create table citus_standin.calls (
    n serial primary key, fn text not null, tbl regclass not null, col text, colocate text
);
create function citus_standin.create_reference_table(table_name regclass) returns void
language sql as $$ insert into citus_standin.calls (fn, tbl) values ('reference', table_name) $$;
create function citus_standin.create_distributed_table(
    table_name regclass, distribution_column text, colocate_with text default 'default'
) returns void language sql as $$
    insert into citus_standin.calls (fn, tbl, col, colocate)
    values ('distributed', table_name, distribution_column, colocate_with)
$$;
"""

# Ordinary and partitioned tables (not partitions: they follow their parent) with the column.
TENANT_TABLES = """
select c.oid::regclass::text as name
  from pg_class c
  join pg_attribute a on a.attrelid = c.oid and a.attname = 'business_owner_id'
       and not a.attisdropped
 where c.relkind in ('r', 'p') and not c.relispartition
   and c.relnamespace::regnamespace::text not in ('pg_catalog', 'information_schema')
"""

# Unique indexes (primary keys and unique constraints included) of the tenant tables that do
# not contain business_owner_id.
UNIQUE_WITHOUT_OWNER = f"""
select i.indexrelid::regclass::text as index, i.indisprimary as is_primary,
       i.indrelid::regclass::text as tbl
  from pg_index i
 where i.indisunique and i.indrelid::regclass::text in ({TENANT_TABLES})
   and not exists (
       select 1 from pg_attribute a
        where a.attrelid = i.indrelid and a.attname = 'business_owner_id'
          and a.attnum = any(i.indkey::int2[]))
"""

# Foreign keys out of tenant tables: whether business_owner_id is on both sides, paired.
FOREIGN_KEYS = f"""
select con.conname, con.conrelid::regclass::text as tbl, con.confrelid::regclass::text as ref,
       exists (
           select 1 from unnest(con.conkey, con.confkey) k(col, refcol)
             join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.col
             join pg_attribute r on r.attrelid = con.confrelid and r.attnum = k.refcol
            where a.attname = 'business_owner_id' and r.attname = 'business_owner_id'
       ) as paired_owner
  from pg_constraint con
 where con.contype = 'f' and con.conrelid::regclass::text in ({TENANT_TABLES})
"""


@pytest.fixture(scope="module")
async def schema_dsn(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A database with the migrations and nothing else: tables other tests create for a while
    in the session's database are no part of the schema to distribute."""
    pg = pgserver.get_server(tmp_path_factory.mktemp("citus-pg"), cleanup_mode="delete")
    dsn = str(pg.get_uri())
    await apply_migrations(dsn, authenticator_password="citus-test")
    yield dsn
    pg.cleanup()


def _script_body() -> str:
    """The script without its own BEGIN/COMMIT: the test's transaction holds it."""
    lines = SCRIPT.read_text().splitlines()
    return "\n".join(line for line in lines if line.strip().lower() not in ("begin;", "commit;"))


async def test_distribute_sql_distributes_every_tenant_table_colocated(schema_dsn: str) -> None:
    conn = await asyncpg.connect(schema_dsn)
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            tenant = {r["name"] for r in await conn.fetch(TENANT_TABLES)}
            before = await conn.fetch(UNIQUE_WITHOUT_OWNER)
            await conn.execute(STANDINS)
            await conn.execute("set local search_path = citus_standin, public")
            await conn.execute(_script_body())
            calls = await conn.fetch(
                "select n, fn, tbl::text as tbl, col, colocate from citus_standin.calls order by n"
            )
            after = await conn.fetch(UNIQUE_WITHOUT_OWNER)
            keys = await conn.fetch(FOREIGN_KEYS)
            has_primary_key = {
                r["tbl"]
                for r in await conn.fetch(
                    "select conrelid::regclass::text as tbl from pg_constraint where contype = 'p'"
                )
            }
        finally:
            await tx.rollback()
    finally:
        await conn.close()

    distributed = [c for c in calls if c["fn"] == "distributed"]
    reference = {c["tbl"] for c in calls if c["fn"] == "reference"}
    position = {c["tbl"]: c["n"] for c in calls}

    # Exactly the tenant tables, each once, by business_owner_id, co-located with users.
    assert sorted(c["tbl"] for c in distributed) == sorted(tenant)
    assert len(distributed) == len(tenant)
    assert {c["col"] for c in distributed} == {"business_owner_id"}
    assert distributed[0]["tbl"] == "users"
    assert {c["colocate"] for c in distributed[1:]} == {"public.users"}

    # Keys: after the script, every unique index of a tenant table holds the tenant.
    assert tenant <= has_primary_key, tenant - has_primary_key
    assert [dict(r) for r in after] == []
    # The migrated schema is already keyed for it (the bill lookups since 0032): the script
    # distributes and changes no key.
    assert [dict(r) for r in before] == []
    assert not re.search(r"drop constraint|add primary key", SCRIPT.read_text(), re.IGNORECASE)

    # Foreign keys: between tenant tables they pair business_owner_id with itself; out of
    # tenant tables they reach reference tables; either way the target is distributed first.
    for key in keys:
        if key["ref"] in tenant:
            assert key["paired_owner"], key["conname"]
        else:
            assert key["ref"] in reference, key["conname"]
        assert position[key["ref"]] < position[key["tbl"]], key["conname"]
