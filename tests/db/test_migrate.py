"""The migration runner: immutable migrations (one of them outside a transaction) and SQL
definitions re-applied when their checksum changes — each on a fresh database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from pocketbizz.db.migrate import (
    NO_TRANSACTION_MARKER,
    Definition,
    Migration,
    MigrationError,
    apply_migrations,
    load_definitions,
    load_migrations,
)


@pytest.fixture
async def fresh_dsn(owner_pool: asyncpg.Pool, owner_dsn: str) -> AsyncIterator[str]:
    name = f"pb_migrate_{uuid.uuid4().hex[:10]}"
    await owner_pool.execute(f"create database {name}")
    parts = urlsplit(owner_dsn)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    await owner_pool.execute(f"drop database {name} with (force)")


async def _definitions(dsn: str) -> dict[str, tuple[str, object]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select path, checksum, applied_at from pb_internal.schema_definitions"
        )
    finally:
        await conn.close()
    return {r["path"]: (r["checksum"], r["applied_at"]) for r in rows}


def _probe(result: int) -> Definition:
    return Definition(
        "test/probe.sql",
        f"create or replace function pb_internal.probe() returns int language sql as $$ select {result} $$;",
    )


async def test_definitions_apply_once_and_again_only_when_changed(fresh_dsn: str) -> None:
    shipped = load_definitions()
    assert {"sales/create_sale.sql", "stock/record_production.sql", "analytics/analytics.sql"} <= {
        d.path for d in shipped
    }
    applied = await apply_migrations(fresh_dsn, definitions=[*shipped, _probe(1)])
    assert applied == [m.version for m in load_migrations()]
    first = await _definitions(fresh_dsn)
    assert {path: checksum for path, (checksum, _) in first.items()} == {
        d.path: d.checksum for d in [*shipped, _probe(1)]
    }

    # Nothing changed: nothing applied.
    assert await apply_migrations(fresh_dsn, definitions=[*shipped, _probe(1)]) == []
    assert await _definitions(fresh_dsn) == first

    # One file changed: it alone is applied again.
    await apply_migrations(fresh_dsn, definitions=[*shipped, _probe(2)])
    second = await _definitions(fresh_dsn)
    assert second["test/probe.sql"][0] == _probe(2).checksum
    assert second["test/probe.sql"][1] != first["test/probe.sql"][1]
    assert {p: v for p, v in second.items() if p != "test/probe.sql"} == {
        p: v for p, v in first.items() if p != "test/probe.sql"
    }
    conn = await asyncpg.connect(fresh_dsn)
    try:
        assert await conn.fetchval("select pb_internal.probe()") == 2
    finally:
        await conn.close()

    # A failing definition changes nothing: the run's changed files commit together or not at all.
    broken = Definition("test/broken.sql", "create or replace function pb_internal.broken(")
    with pytest.raises(MigrationError, match=r"test/broken\.sql"):
        await apply_migrations(fresh_dsn, definitions=[*shipped, _probe(3), broken])
    assert await _definitions(fresh_dsn) == second


async def test_edited_migration_is_refused_and_no_transaction_runs_alone(fresh_dsn: str) -> None:
    shipped = load_migrations()
    await apply_migrations(fresh_dsn)
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in shipped[:1]]
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await apply_migrations(fresh_dsn, migrations=edited + shipped[1:])

    # CREATE INDEX CONCURRENTLY cannot run in a transaction: the marker runs it outside one.
    concurrent = Migration(
        "9990",
        "concurrent_index",
        f"{NO_TRANSACTION_MARKER}\n"
        "create index concurrently probe_products_unit_idx on public.products (business_owner_id, unit);",
    )
    assert not concurrent.transactional and shipped[0].transactional
    assert await apply_migrations(fresh_dsn, migrations=[*shipped, concurrent]) == ["9990"]
    conn = await asyncpg.connect(fresh_dsn)
    try:
        valid = await conn.fetchval(
            "select indisvalid from pg_index where indexrelid = 'public.probe_products_unit_idx'::regclass"
        )
        recorded = await conn.fetchval(
            "select checksum from pb_internal.schema_migrations where version = '9990'"
        )
    finally:
        await conn.close()
    assert valid is True and recorded == concurrent.checksum


def test_every_definition_file_is_listed_in_order(tmp_path: Path) -> None:
    (tmp_path / "sales").mkdir()
    (tmp_path / "sales" / "a.sql").write_text("select 1;")
    (tmp_path / "sales" / "b.sql").write_text("select 2;")
    (tmp_path / "ORDER").write_text("# comment\nsales/b.sql\nsales/a.sql\n")
    assert [d.path for d in load_definitions(tmp_path)] == ["sales/b.sql", "sales/a.sql"]
    (tmp_path / "ORDER").write_text("sales/a.sql\n")
    with pytest.raises(MigrationError, match="missing from definitions/ORDER"):
        load_definitions(tmp_path)
    (tmp_path / "ORDER").write_text("sales/a.sql\nsales/b.sql\nsales/c.sql\n")
    with pytest.raises(MigrationError, match="lists missing files"):
        load_definitions(tmp_path)
