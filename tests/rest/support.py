"""Helpers for the data-API suites: tenants signed up through the official client, and direct
SQL — as the tenant, the way the server runs it — to compare answers with."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
from harness import ServerProcess
from supabase import Client, create_client


@dataclass
class Tenant:
    client: Client
    id: str
    access_token: str


def sign_up(server: ServerProcess) -> Tenant:
    client = create_client(server.url, server.anon_key)
    email = f"rest-{uuid.uuid4().hex[:12]}@example.com"
    res = client.auth.sign_up({"email": email, "password": "correct horse battery"})
    assert res.user is not None and res.session is not None
    return Tenant(client, res.user.id, res.session.access_token)


def run_sql(dsn: str, sql: str, *args: Any, as_user: str | None = None) -> list[asyncpg.Record]:
    """One statement in its own transaction: as `authenticated` with `as_user` as the JWT
    subject (RLS applies, as in the server), or as the owner when `as_user` is None."""

    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                if as_user is not None:
                    await conn.execute(
                        "select set_config('role', 'authenticated', true), "
                        "set_config('request.jwt.claims', $1, true)",
                        json.dumps({"role": "authenticated", "sub": as_user}),
                    )
                return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def insert_sale(dsn: str, owner: str, lines: list[tuple[dict[str, Any], Decimal]]) -> str:
    """A sale with one item per (product, quantity), written as the owner: clients hold no
    write grant on sales or sale_items."""
    sale_id = str(uuid.uuid4())
    total = sum((Decimal(str(p["sale_price"])) * q for p, q in lines), Decimal(0))
    run_sql(
        dsn,
        "insert into public.sales (business_owner_id, id, sale_number, total_amount, "
        "final_amount) values ($1, $2, $3, $4, $4)",
        uuid.UUID(owner),
        uuid.UUID(sale_id),
        f"S-{uuid.uuid4().hex[:8]}",
        total,
    )
    for n, (product, quantity) in enumerate(lines, start=1):
        price = Decimal(str(product["sale_price"]))
        run_sql(
            dsn,
            "insert into public.sale_items (business_owner_id, sale_id, product_id, "
            "product_name, quantity, unit_price, subtotal, line_no) "
            "values ($1, $2, $3, $4, $5, $6, $7, $8)",
            uuid.UUID(owner),
            uuid.UUID(sale_id),
            uuid.UUID(product["id"]),
            product["name"],
            quantity,
            price,
            price * quantity,
            n,
        )
    return sale_id


# A small catalogue with nulls, duplicates, odd characters and JSON, for filters to bite on.
CATALOGUE: list[dict[str, Any]] = [
    {
        "sku": "K-01",
        "name": "Kopi O",
        "category": "drinks",
        "sale_price": "2.50",
        "reorder_level": "5",
        "images": ["kopi.png"],
        "description": "hot, black",
    },
    {
        "sku": "K-02",
        "name": "Kopi Susu",
        "category": "drinks",
        "sale_price": "3.00",
        "reorder_level": "5",
        "images": [],
        "description": None,
    },
    {
        "sku": "T-01",
        "name": "Teh Tarik",
        "category": "drinks",
        "sale_price": "3.00",
        "reorder_level": "0",
        "images": ["teh.png", "teh2.png"],
        "description": "sweet",
    },
    {
        "sku": "N-01",
        "name": "Nasi Lemak",
        "category": "food",
        "sale_price": "6.50",
        "reorder_level": "10",
        "images": [],
        "description": "with sambal",
    },
    {
        "sku": "N-02",
        "name": "Nasi Goreng",
        "category": "food",
        "sale_price": "8.00",
        "reorder_level": "2",
        "images": [],
        "description": None,
        "is_active": False,
    },
    {
        "sku": "R-01",
        "name": "Roti Canai",
        "category": "food",
        "sale_price": "1.80",
        "reorder_level": "20",
        "images": [],
        "description": "plain",
    },
    {
        "sku": "C-01",
        "name": "Curry Puff",
        "category": None,
        "sale_price": "1.20",
        "reorder_level": "0",
        "images": [],
        "description": "a,b (c)",
    },
    {
        "sku": "C-02",
        "name": 'Cendol "Special"',
        "category": None,
        "sale_price": "5.00",
        "reorder_level": "1",
        "images": ["c.png"],
        "description": None,
    },
    {
        "sku": "A-01",
        "name": "Air Kosong",
        "category": "drinks",
        "sale_price": "0.00",
        "reorder_level": "0",
        "images": [],
        "description": "free",
        "is_active": False,
    },
    {
        "sku": "S-01",
        "name": "Kuih Seri Muka ½ — ketupat 🍙",
        "category": "food",
        "sale_price": "2.20",
        "reorder_level": "0",
        "images": [],
        "description": "pandan & santan",
    },
    {
        "sku": "M-01",
        "name": "Milo Ais",
        "category": "drinks",
        "sale_price": "4.20",
        "reorder_level": "3",
        "images": [],
        "description": "ice, cold",
    },
]
