"""Ordered SQL migrations, each applied once under an advisory lock with a recorded checksum."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

# An arbitrary constant: every migrator of one database takes this lock, so two servers
# starting together apply each file exactly once.
_LOCK_KEY = 0x50_42_4D_49_47  # "PBMIG"


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    folder = resources.files("pocketbizz.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(Migration(version, rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


_BOOKKEEPING = """
create schema if not exists pb_internal;
create table if not exists pb_internal.schema_migrations (
    version    text primary key,
    name       text not null,
    checksum   text not null,
    applied_at timestamptz not null default now()
);
"""


class MigrationError(RuntimeError):
    pass


async def _applied(conn: asyncpg.Connection) -> dict[str, str]:
    exists = await conn.fetchval("select to_regclass('pb_internal.schema_migrations') is not null")
    if not exists:
        return {}
    rows = await conn.fetch("select version, checksum from pb_internal.schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


async def pending_migrations(conn: asyncpg.Connection) -> list[Migration]:
    applied = await _applied(conn)
    return [m for m in load_migrations() if m.version not in applied]


async def apply_migrations(dsn: str, *, authenticator_password: str | None = None) -> list[str]:
    """Apply pending migrations as the owner; return the versions applied."""
    conn = await asyncpg.connect(dsn)
    done: list[str] = []
    try:
        await conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(_BOOKKEEPING)
            applied = await _applied(conn)
            for migration in load_migrations():
                recorded = applied.get(migration.version)
                if recorded is not None:
                    if recorded != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version}_{migration.name} changed after it "
                            "was applied; add a new migration instead of editing an old one"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "insert into pb_internal.schema_migrations (version, name, checksum)"
                        " values ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.checksum,
                    )
                log.info("applied migration %s_%s", migration.version, migration.name)
                done.append(migration.version)
            if authenticator_password is not None:
                # The password is instance configuration, not schema: set it on every start.
                await conn.execute(
                    "select pb_internal.set_authenticator_password($1)", authenticator_password
                )
        finally:
            await conn.execute("select pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()
    return done
