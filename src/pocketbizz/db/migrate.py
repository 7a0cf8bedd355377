"""Schema changes and SQL definitions, applied under one advisory lock.

- `migrations/NNNN_name.sql`: immutable schema changes (tables, columns, constraints, types,
  roles), each applied once in version order and recorded with its checksum; editing an applied
  one is an error. A migration whose first line is `-- pocketbizz: no-transaction` runs outside
  a transaction, as one statement (for `CREATE INDEX CONCURRENTLY`).
- `definitions/<area>/<name>.sql`: functions, triggers and views, written to be re-run
  (`create or replace`). They are applied after the migrations, in the order `definitions/ORDER`
  lists them, whenever a file's checksum differs from the one recorded in
  `pb_internal.schema_definitions`; all changed files of one run commit together.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg

log = logging.getLogger(__name__)

# An arbitrary constant: every migrator of one database takes this lock, so two servers
# starting together apply each file exactly once.
_LOCK_KEY = 0x50_42_4D_49_47  # "PBMIG"

NO_TRANSACTION_MARKER = "-- pocketbizz: no-transaction"


def _checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return _checksum(self.sql)

    @property
    def transactional(self) -> bool:
        return not self.sql.startswith(NO_TRANSACTION_MARKER)


@dataclass(frozen=True)
class Definition:
    path: str  # relative to definitions/, e.g. "sales/create_sale.sql"
    sql: str

    @property
    def checksum(self) -> str:
        return _checksum(self.sql)


class MigrationError(RuntimeError):
    pass


def _package_folder(name: str) -> Traversable:
    return resources.files("pocketbizz.db") / name


def load_migrations(folder: Traversable | None = None) -> list[Migration]:
    folder = folder or _package_folder("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(Migration(version, rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def load_definitions(folder: Traversable | None = None) -> list[Definition]:
    """The definitions in ORDER's order; a file missing from ORDER (or listed but absent) is an
    error, so a new file cannot be silently skipped."""
    folder = folder or _package_folder("definitions")
    order = [
        line.strip()
        for line in folder.joinpath("ORDER").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    present = {
        f"{area.name}/{entry.name}"
        for area in folder.iterdir()
        if area.is_dir()
        for entry in area.iterdir()
        if entry.name.endswith(".sql")
    }
    if len(set(order)) != len(order):
        raise MigrationError("definitions/ORDER lists a file twice")
    if unlisted := sorted(present - set(order)):
        raise MigrationError(f"definitions missing from definitions/ORDER: {unlisted}")
    if absent := sorted(set(order) - present):
        raise MigrationError(f"definitions/ORDER lists missing files: {absent}")
    return [Definition(path, folder.joinpath(*path.split("/")).read_text()) for path in order]


_BOOKKEEPING = """
create schema if not exists pb_internal;
create table if not exists pb_internal.schema_migrations (
    version    text primary key,
    name       text not null,
    checksum   text not null,
    applied_at timestamptz not null default now()
);
create table if not exists pb_internal.schema_definitions (
    path       text primary key,
    checksum   text not null,
    applied_at timestamptz not null default now()
);
"""


async def _applied(conn: asyncpg.Connection) -> dict[str, str]:
    exists = await conn.fetchval("select to_regclass('pb_internal.schema_migrations') is not null")
    if not exists:
        return {}
    rows = await conn.fetch("select version, checksum from pb_internal.schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


async def _applied_definitions(conn: asyncpg.Connection) -> dict[str, str]:
    exists = await conn.fetchval("select to_regclass('pb_internal.schema_definitions') is not null")
    if not exists:
        return {}
    rows = await conn.fetch("select path, checksum from pb_internal.schema_definitions")
    return {r["path"]: r["checksum"] for r in rows}


async def pending_migrations(conn: asyncpg.Connection) -> list[Migration]:
    applied = await _applied(conn)
    return [m for m in load_migrations() if m.version not in applied]


async def pending_definitions(conn: asyncpg.Connection) -> list[Definition]:
    applied = await _applied_definitions(conn)
    return [d for d in load_definitions() if applied.get(d.path) != d.checksum]


async def _apply_migration(conn: asyncpg.Connection, migration: Migration) -> None:
    record = (
        "insert into pb_internal.schema_migrations (version, name, checksum) values ($1, $2, $3)"
    )
    args = (migration.version, migration.name, migration.checksum)
    if migration.transactional:
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(record, *args)
        return
    # One statement, outside any transaction; recorded only once it has succeeded, so a
    # failure (say an invalid concurrent index) is retried by the next run.
    await conn.execute(migration.sql)
    await conn.execute(record, *args)


async def _apply_definitions(conn: asyncpg.Connection, definitions: list[Definition]) -> list[str]:
    applied = await _applied_definitions(conn)
    changed = [d for d in definitions if applied.get(d.path) != d.checksum]
    # A file no longer shipped: forget its record (what it created is dropped by the file that
    # replaced it).
    removed = sorted(set(applied) - {d.path for d in definitions})
    if not changed and not removed:
        return []
    async with conn.transaction():
        await conn.execute(
            "delete from pb_internal.schema_definitions where path = any($1::text[])", removed
        )
        for definition in changed:
            try:
                await conn.execute(definition.sql)
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"definition {definition.path} failed: {exc}") from exc
            await conn.execute(
                "insert into pb_internal.schema_definitions (path, checksum) values ($1, $2)"
                " on conflict (path) do update"
                " set checksum = excluded.checksum, applied_at = now()",
                definition.path,
                definition.checksum,
            )
    for definition in changed:
        log.info("applied definition %s", definition.path)
    return [d.path for d in changed]


async def apply_migrations(
    dsn: str,
    *,
    authenticator_password: str | None = None,
    migrations: list[Migration] | None = None,
    definitions: list[Definition] | None = None,
) -> list[str]:
    """Apply pending migrations, then changed definitions, as the owner; return the migration
    versions applied. `migrations` and `definitions` default to the shipped ones."""
    conn = await asyncpg.connect(dsn)
    done: list[str] = []
    try:
        await conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(_BOOKKEEPING)
            applied = await _applied(conn)
            for migration in load_migrations() if migrations is None else migrations:
                recorded = applied.get(migration.version)
                if recorded is not None:
                    if recorded != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version}_{migration.name} changed after it "
                            "was applied; add a new migration instead of editing an old one"
                        )
                    continue
                await _apply_migration(conn, migration)
                log.info("applied migration %s_%s", migration.version, migration.name)
                done.append(migration.version)
            await _apply_definitions(
                conn, load_definitions() if definitions is None else definitions
            )
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
