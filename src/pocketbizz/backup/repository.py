"""The SQL of backup and restore: the snapshot the dump and the file copy share, the objects
whose bytes to copy, the migration level, and the cluster-level roles the dump's grants name.

Roles live outside any one database, so `pg_dump` leaves them out; a restore that did not make
them first would lose every grant, owner and policy role — and with them tenant isolation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Role:
    """A role as `create role` needs it (passwords are never copied: the only login role,
    authenticator, gets its password from the data dir on every start)."""

    name: str
    login: bool
    inherit: bool
    bypassrls: bool
    createrole: bool
    createdb: bool
    replication: bool
    superuser: bool
    connection_limit: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Membership:
    """`grant role to member`, with its options (PostgreSQL 16 records inherit and set apart;
    an older server's grant inherits as its member does and may always be SET)."""

    role: str
    member: str
    admin: bool
    inherit: bool
    set: bool

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StoredObject:
    bucket_id: str
    version: str
    content_type: str

    @property
    def key(self) -> str:
        return f"{self.bucket_id}/{self.version}"


async def export_snapshot(conn: asyncpg.Connection) -> str:
    """Call inside a REPEATABLE READ transaction: `pg_dump --snapshot` then sees exactly what
    this transaction sees, so the database and the list of files agree."""
    # Off, so a role that RLS would filter fails loudly instead of backing up a part.
    await conn.execute("set local row_security = off")
    return str(await conn.fetchval("select pg_export_snapshot()"))


async def server_version_num(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("select current_setting('server_version_num')::int"))


async def applied_migrations(conn: asyncpg.Connection) -> list[str]:
    exists = await conn.fetchval("select to_regclass('pb_internal.schema_migrations') is not null")
    if not exists:
        return []
    rows = await conn.fetch("select version from pb_internal.schema_migrations order by version")
    return [str(r["version"]) for r in rows]


async def stored_objects(conn: asyncpg.Connection) -> list[StoredObject]:
    rows = await conn.fetch(
        """select distinct bucket_id, version::text as version,
                  coalesce(metadata->>'mimetype', 'application/octet-stream') as content_type
             from storage.objects
            order by bucket_id, version"""
    )
    return [StoredObject(r["bucket_id"], r["version"], r["content_type"]) for r in rows]


# Roles this database depends on (owners, grantees, policy roles: pg_shdepend), then every role
# linked to them by membership either way (authenticator owns nothing but is granted the request
# roles; the migrating superuser is granted pb_definer and others). pg_* roles exist everywhere;
# a role the target already has (its superuser `postgres`) is only given its memberships.
_ROLES = """
with recursive used as (
    select refobjid as oid
      from pg_shdepend
     where refclassid = 'pg_authid'::regclass
       and dbid = (select oid from pg_database where datname = current_database())
    union
    select case when m.member = u.oid then m.roleid else m.member end
      from pg_auth_members m
      join used u on u.oid in (m.member, m.roleid)
)
select r.rolname, r.rolcanlogin, r.rolinherit, r.rolbypassrls, r.rolcreaterole,
       r.rolcreatedb, r.rolreplication, r.rolsuper, r.rolconnlimit
  from pg_roles r
 where r.oid in (select oid from used) and r.rolname !~ '^pg_'
 order by r.rolname
"""


async def roles(conn: asyncpg.Connection) -> tuple[list[Role], list[Membership]]:
    rows = await conn.fetch(_ROLES)
    found = [
        Role(
            name=r["rolname"],
            login=r["rolcanlogin"],
            inherit=r["rolinherit"],
            bypassrls=r["rolbypassrls"],
            createrole=r["rolcreaterole"],
            createdb=r["rolcreatedb"],
            replication=r["rolreplication"],
            superuser=r["rolsuper"],
            connection_limit=r["rolconnlimit"],
        )
        for r in rows
    ]
    names = [role.name for role in found]
    if await server_version_num(conn) >= 160000:
        options = "m.inherit_option, m.set_option"
    else:
        options = "mr.rolinherit as inherit_option, true as set_option"
    grants = await conn.fetch(
        f"""select g.rolname as role, mr.rolname as member, m.admin_option, {options}
              from pg_auth_members m
              join pg_roles g on g.oid = m.roleid
              join pg_roles mr on mr.oid = m.member
             where g.rolname = any($1::text[]) and mr.rolname = any($1::text[])
             order by 1, 2""",
        names,
    )
    memberships = [
        Membership(
            role=g["role"],
            member=g["member"],
            admin=g["admin_option"],
            inherit=g["inherit_option"],
            set=g["set_option"],
        )
        for g in grants
    ]
    return found, memberships


async def create_roles(
    conn: asyncpg.Connection, found: list[Role], memberships: list[Membership]
) -> list[str]:
    """Make the roles a fresh cluster lacks, then their memberships; returns those created.
    A superuser from the source is made without LOGIN: it is only the owner of what it made."""
    existing = {r["rolname"] for r in await conn.fetch("select rolname from pg_roles")}
    created = []
    for role in found:
        if role.name in existing:
            continue
        attributes = " ".join(
            word if on else f"no{word}"
            for word, on in (
                ("login", role.login and not role.superuser),
                ("inherit", role.inherit),
                ("bypassrls", role.bypassrls),
                ("createrole", role.createrole),
                ("createdb", role.createdb),
                ("replication", role.replication),
                ("superuser", role.superuser),
            )
        )
        statement = await conn.fetchval(
            "select format('create role %I with %s connection limit %s', $1::text, $2::text, $3::int)",
            role.name,
            attributes,
            role.connection_limit,
        )
        await conn.execute(statement)
        created.append(role.name)
    for grant in memberships:
        statement = await conn.fetchval(
            "select format('grant %I to %I with admin %s, inherit %s, set %s',"
            " $1::text, $2::text, $3::boolean::text, $4::boolean::text, $5::boolean::text)",
            grant.role,
            grant.member,
            grant.admin,
            grant.inherit,
            grant.set,
        )
        await conn.execute(statement)
    return created
