"""The schema rules of DESIGN.md §3, checked on the catalog: a new table that breaks one fails here."""

from __future__ import annotations

import asyncpg

GLOBAL_TABLES = {"plans"}  # reference data shared by all tenants


async def _tenant_tables(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind in ('r', 'p') order by 1"
    )
    return [r["relname"] for r in rows if r["relname"] not in GLOBAL_TABLES]


async def test_every_public_table_has_forced_rls(owner_pool: asyncpg.Pool) -> None:
    rows = await owner_pool.fetch(
        "select c.relname, c.relrowsecurity, c.relforcerowsecurity from pg_class c "
        "join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'public' and c.relkind in ('r', 'p')"
    )
    assert len(rows) >= 8
    bad = [r["relname"] for r in rows if not (r["relrowsecurity"] and r["relforcerowsecurity"])]
    assert bad == []


async def test_tenant_tables_carry_owner_in_keys_and_indexes(owner_pool: asyncpg.Pool) -> None:
    tables = await _tenant_tables(owner_pool)
    assert {
        "users",
        "business_profiles",
        "customers",
        "products",
        "sales",
        "sale_items",
        "stock_movements",
    } <= set(tables)
    problems = []
    for table in tables:
        column = await owner_pool.fetchrow(
            "select data_type, is_nullable from information_schema.columns "
            "where table_schema = 'public' and table_name = $1 and column_name = 'business_owner_id'",
            table,
        )
        if column is None or column["data_type"] != "uuid" or column["is_nullable"] != "NO":
            problems.append(f"{table}: business_owner_id uuid not null missing")
            continue
        # Every primary key and unique index includes business_owner_id.
        indexes = await owner_pool.fetch(
            """select i.indisprimary, i.indisunique, ic.relname as name,
                      array(select a.attname from unnest(i.indkey) with ordinality k(attnum, ord)
                            join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
                            order by k.ord) as columns
               from pg_index i join pg_class ic on ic.oid = i.indexrelid
               where i.indrelid = ('public.' || quote_ident($1))::regclass""",
            table,
        )
        if not any(ix["indisprimary"] for ix in indexes):
            problems.append(f"{table}: no primary key")
        for ix in indexes:
            if (ix["indisprimary"] or ix["indisunique"]) and "business_owner_id" not in ix[
                "columns"
            ]:
                problems.append(f"{table}: unique index {ix['name']} lacks business_owner_id")
        if not any(ix["columns"] and ix["columns"][0] == "business_owner_id" for ix in indexes):
            problems.append(f"{table}: no index leading with business_owner_id")
        # Foreign keys to other tenant tables include business_owner_id.
        fks = await owner_pool.fetch(
            """select con.conname, ref.relname as target,
                      array(select a.attname from unnest(con.conkey) k(attnum)
                            join pg_attribute a on a.attrelid = con.conrelid
                                               and a.attnum = k.attnum) as columns
               from pg_constraint con join pg_class ref on ref.oid = con.confrelid
               join pg_namespace rn on rn.oid = ref.relnamespace
               where con.contype = 'f' and con.conrelid = ('public.' || quote_ident($1))::regclass
                 and rn.nspname = 'public'""",
            table,
        )
        for fk in fks:
            if fk["target"] not in GLOBAL_TABLES and "business_owner_id" not in fk["columns"]:
                problems.append(f"{table}: foreign key {fk['conname']} lacks business_owner_id")
        # Every foreign key is backed by an index on its columns (owner first).
        for fk in fks:
            covered = any(
                ix["columns"][: len(fk["columns"])] == fk["columns"]
                or sorted(ix["columns"][: len(fk["columns"])]) == sorted(fk["columns"])
                for ix in indexes
            )
            if not covered:
                problems.append(f"{table}: foreign key {fk['conname']} has no index")
    assert problems == []


async def test_tenant_tables_have_the_four_owner_policies(owner_pool: asyncpg.Pool) -> None:
    problems = []
    for table in await _tenant_tables(owner_pool):
        policies = await owner_pool.fetch(
            "select cmd, qual, with_check from pg_policies "
            "where schemaname = 'public' and tablename = $1",
            table,
        )
        commands = {p["cmd"] for p in policies}
        if not {"SELECT", "INSERT", "UPDATE", "DELETE"} <= commands and "ALL" not in commands:
            problems.append(f"{table}: policies {sorted(commands)}")
        for p in policies:
            text = f"{p['qual'] or ''} {p['with_check'] or ''}"
            if "business_owner_id" not in text or "auth.uid()" not in text:
                problems.append(f"{table}: policy not scoped by owner: {text}")
    assert problems == []


async def test_runtime_role_has_no_rights_of_its_own(owner_pool: asyncpg.Pool) -> None:
    role = await owner_pool.fetchrow(
        "select rolsuper, rolbypassrls, rolinherit, rolcanlogin from pg_roles "
        "where rolname = 'authenticator'"
    )
    assert role is not None
    assert (role["rolsuper"], role["rolbypassrls"], role["rolinherit"], role["rolcanlogin"]) == (
        False,
        False,
        False,
        True,
    )
    granted = await owner_pool.fetch(
        "select table_schema, table_name from information_schema.role_table_grants "
        "where grantee = 'authenticator' and table_schema <> 'pb_internal'"
    )
    assert granted == []
    for name in ("anon", "authenticated"):
        flags = await owner_pool.fetchrow(
            "select rolsuper, rolbypassrls from pg_roles where rolname = $1", name
        )
        assert flags is not None and not flags["rolsuper"] and not flags["rolbypassrls"]


async def test_no_function_is_executable_by_public(owner_pool: asyncpg.Pool) -> None:
    rows = await owner_pool.fetch(
        """select n.nspname || '.' || p.proname as name
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname in ('public', 'auth', 'pb_internal', 'storage')
             and has_function_privilege('public', p.oid, 'execute')
             and p.prokind = 'f'
             and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')"""
    )
    assert [r["name"] for r in rows] == []


async def test_security_definer_functions_pin_search_path(owner_pool: asyncpg.Pool) -> None:
    rows = await owner_pool.fetch(
        """select n.nspname || '.' || p.proname as name, p.proconfig
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema')"""
    )
    unpinned = [
        r["name"]
        for r in rows
        if not any(c.startswith("search_path=") for c in (r["proconfig"] or []))
    ]
    assert unpinned == []


async def test_views_run_as_the_caller(owner_pool: asyncpg.Pool) -> None:
    rows = await owner_pool.fetch(
        """select c.relname, c.reloptions from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = 'public' and c.relkind = 'v'"""
    )
    definer_views = [
        r["relname"]
        for r in rows
        if "security_invoker=true" not in (r["reloptions"] or [])
        and "security_invoker=on" not in (r["reloptions"] or [])
    ]
    assert definer_views == []


async def test_client_callable_definer_functions_run_under_rls(owner_pool: asyncpg.Pool) -> None:
    """Issue 13.3: a SECURITY DEFINER function a client can call runs as a role that neither is
    a superuser nor bypasses RLS, so the forced owner policies apply inside it too."""
    rows = await owner_pool.fetch(
        """select n.nspname || '.' || p.proname as name, r.rolname, r.rolsuper, r.rolbypassrls
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           join pg_roles r on r.oid = p.proowner
           where p.prosecdef and n.nspname in ('public', 'storage')"""
    )
    assert {"public.create_sale", "public.void_sale", "public.record_purchase"} <= {
        r["name"] for r in rows
    }
    privileged = [r["name"] for r in rows if r["rolsuper"] or r["rolbypassrls"]]
    assert privileged == []
    owners = {r["rolname"] for r in rows}
    role = await owner_pool.fetchrow(
        "select rolcanlogin, rolsuper, rolbypassrls from pg_roles where rolname = 'pb_definer'"
    )
    assert role is not None and not any(role.values())
    assert owners == {"pb_definer"}


async def test_clients_hold_no_rights_on_server_tables(owner_pool: asyncpg.Pool) -> None:
    """pb_internal is the server's own (sealed payment keys, bills, activity, the analytics
    cache, reminders): the API's client roles get no table right there, directly or through
    a role they are members of, so a new table there cannot leak by a stray grant."""
    tables = await owner_pool.fetch(
        "select c.oid, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'pb_internal' and c.relkind in ('r', 'p', 'v', 'm')"
    )
    assert {"payment_secrets", "user_activity", "analytics_days"} <= {t["relname"] for t in tables}
    leaks = await owner_pool.fetch(
        "select c.relname, r.role, p.privilege from pg_class c "
        "join pg_namespace n on n.oid = c.relnamespace "
        "cross join unnest(array['anon', 'authenticated']) as r(role) "
        "cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) "
        "  as p(privilege) "
        "where n.nspname = 'pb_internal' and c.relkind in ('r', 'p', 'v', 'm') "
        "  and has_table_privilege(r.role, c.oid, p.privilege) order by 1, 2, 3"
    )
    assert [tuple(row) for row in leaks] == []
