"""GET /rest/v1/ describes the schema as PostgREST does: SQL comments become descriptions
(first line the summary), and a column limited by a CHECK to a list gets it as `enum`."""

from __future__ import annotations

import asyncpg
import httpx
from harness import ServerProcess

from pocketbizz.rest.openapi import load_notes, openapi_document
from pocketbizz.rest.schema_cache import SchemaCache


def test_served_document_carries_table_and_function_comments(server: ServerProcess) -> None:
    doc = httpx.get(f"{server.url}/rest/v1/", headers={"apikey": server.anon_key}).json()

    products = doc["definitions"]["products"]
    assert products["description"].startswith("The tenant's products and stock on hand\n")
    assert "current_stock is read-only" in products["description"]
    get = doc["paths"]["/products"]["get"]
    assert get["summary"] == "The tenant's products and stock on hand"
    assert "adjust_stock" in get["description"]

    sale = doc["paths"]["/rpc/create_sale"]["post"]
    assert sale["summary"] == (
        "Record a sale atomically: lines, totals, sale number and stock movements"
    )
    assert "walk-in | online | delivery" in sale["description"]
    assert "PT422" in sale["description"]
    for name in ("void_sale", "record_purchase", "adjust_stock", "record_production", "analytics"):
        assert doc["paths"][f"/rpc/{name}"]["post"]["summary"], name


async def test_column_comments_and_enums_from_the_catalog(shipped_schema: asyncpg.Pool) -> None:
    async with shipped_schema.acquire() as conn:
        cache = await SchemaCache.load(conn)
        notes = await load_notes(conn)
    doc = openapi_document(cache, "http://127.0.0.1:8000/", notes)
    definitions = doc["definitions"]

    sales = definitions["sales"]["properties"]
    assert sales["channel"]["enum"] == ["walk-in", "online", "delivery"]
    assert sales["payment_method"]["enum"] == [
        "cash",
        "card",
        "ewallet",
        "qr",
        "bank_transfer",
        "toyyibpay",
        "credit",
        "other",
    ]
    assert sales["payment_status"]["enum"] == ["pending", "paid", "failed", "refunded"]
    assert sales["status"]["enum"] == ["completed", "void"]
    assert definitions["stock_movements"]["properties"]["movement_type"]["enum"] == ["in", "out"]
    assert definitions["products"]["properties"]["negative_stock_policy"]["enum"] == [
        "block",
        "allow",
    ]
    # A range CHECK is not a list of values.
    assert "enum" not in definitions["products"]["properties"]["sale_price"]

    stock = definitions["products"]["properties"]["current_stock"]
    assert stock["description"].startswith("Stock on hand (3 decimals). Read-only")
    assert "adjust_stock" in stock["description"]
    # The primary-key note follows the comment, as in PostgREST.
    assert definitions["products"]["properties"]["id"]["description"] == (
        "Row id (generated).\n\nNote:\nThis is a Primary Key.<pk/>"
    )
    # A column without a comment is described by its type.
    assert definitions["products"]["properties"]["description"]["description"] == "text"


async def test_enum_forms_postgres_prints(owner_dsn: str) -> None:
    """varchar lists, quoted names, quotes inside values, and CHECKs that only look alike."""
    conn = await asyncpg.connect(owner_dsn)
    tx = conn.transaction()
    await tx.start()
    try:
        await conn.execute(
            '''
            create schema openapi_probe;
            create table openapi_probe.t (
                kind varchar(10) check (kind in ('a', 'b')),
                "Odd ""Name""" text check ("Odd ""Name""" in ('it''s', 'x, y')),
                level int check (level in (1, 2)),
                code text check (code in ('p', 'q') and length(code) = 1),
                pair text check (pair in ('l', 'm', 'n')) check (pair in ('m', 'n', 'o'))
            );
            comment on column openapi_probe.t.kind is 'What it is';
            '''
        )
        notes = await load_notes(conn, "openapi_probe")
    finally:
        await tx.rollback()  # leave nothing behind
        await conn.close()
    assert notes.column("t", "kind").enum == ("a", "b")
    assert notes.column("t", "kind").description == "What it is"
    assert notes.column("t", 'Odd "Name"').enum == ("it's", "x, y")
    assert notes.column("t", "level").enum == ()  # numbers: not a list of strings
    assert notes.column("t", "code").enum == ()  # more than a list
    assert notes.column("t", "pair").enum == ("m", "n")  # both lists must pass
