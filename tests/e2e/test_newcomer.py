"""One day of a home bakery, driven from outside with only the official Supabase client.

The server is the installed `pocketbizz` command on a fresh data dir (see conftest.py). Owner A
runs "Dapur Mak Teh": sets up her business profile and products, bakes (production from a
recipe), buys stock, sells (cash with 5-sen rounding, an idempotent online order), voids a
sale, counts stock, reads her analytics and receipts, stores a product photo and a private
receipt, and watches her products live. Owner B, another tenant on the same server, must see
and touch none of it.

The tests run in order and share `Day`; each one builds on the previous ones. The whole module
stays well under the default rate limit (100 requests/minute per user, per IP for anon).
"""

from __future__ import annotations

import asyncio
import json
import signal
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError
from supabase import Client, acreate_client, create_client
from supabase_auth.errors import AuthApiError
from supabase_functions.errors import FunctionsHttpError

if TYPE_CHECKING:
    from conftest import Server

KL = ZoneInfo("Asia/Kuala_Lumpur")
PASSWORD = "roti-canai-2026"


def _png(width: int = 8, height: int = 8) -> bytes:
    """A real RGB PNG (a plain orange square), built with zlib."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xf0\x90\x30" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = _png()


def D(value: Any) -> Decimal:
    """A JSON number or string as an exact Decimal (JSON numbers arrive as floats; their
    shortest repr is the literal the server sent)."""
    assert value is not None and not isinstance(value, bool), value
    return Decimal(str(value))


def exact_json(raw: bytes) -> Any:
    return json.loads(raw, parse_float=Decimal, parse_int=Decimal)


@dataclass
class Owner:
    client: Client
    id: str
    email: str


@dataclass
class Day:
    a: Owner | None = None
    b: Owner | None = None
    products: dict[str, str] = field(default_factory=dict)  # sku -> id (A)
    customer_id: str = ""
    sales: dict[str, dict[str, Any]] = field(default_factory=dict)
    year: str = ""
    image_path: str = ""
    image_url: str = ""
    receipt_path: str = ""
    receipt_bytes: bytes = b""


@pytest.fixture(scope="module")
def day() -> Day:
    return Day()


def _owner(day: Day, which: str) -> Owner:
    owner = getattr(day, which)
    assert owner is not None, f"owner {which} was not signed up by an earlier test"
    return owner


# ---------------------------------------------------------------------------------------------
def test_01_installed_server_is_ready(server: Server) -> None:
    print(f"\ninstall notes: {server.installed.build_notes}; ready in {server.ready_seconds:.1f} s")
    assert server.ready_seconds < 30
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.keys["anon_key"] and server.keys["service_role_key"]
    assert server.keys["anon_key"] != server.keys["service_role_key"]
    health = httpx.get(f"{server.url}/health", timeout=5)
    assert health.status_code == 200, health.text
    # The embedded database lives under the data dir the newcomer chose, next to the JWT
    # secret generated on first start (owner-only).
    assert server.data_dir.is_dir() and any(server.data_dir.iterdir())
    assert (server.data_dir / "jwt_secret").stat().st_mode & 0o777 == 0o600


def test_02_two_owners_sign_up(server: Server, day: Day) -> None:
    for which, name, business in (
        ("a", "Siti Aminah", "Dapur Mak Teh"),
        ("b", "Lim Wei", "Roti Lim"),
    ):
        client = create_client(server.url, server.anon_key)
        email = f"{which}-{uuid.uuid4().hex[:10]}@example.com"
        res = client.auth.sign_up(
            {
                "email": email,
                "password": PASSWORD,
                "options": {"data": {"full_name": name, "business_name": business}},
            }
        )
        assert res.session is not None and res.user is not None
        assert res.user.email == email
        assert res.session.expires_in > 0 and res.session.refresh_token
        me = client.auth.get_user()
        assert me is not None and me.user.id == res.user.id
        setattr(day, which, Owner(client, res.user.id, email))
    assert _owner(day, "a").id != _owner(day, "b").id


def test_03_business_profile(day: Day) -> None:
    a = _owner(day, "a")
    profile = a.client.table("users").select("*").single().execute().data
    assert profile["id"] == a.id and profile["email"] == a.email
    assert profile["full_name"] == "Siti Aminah" and profile["subscription_plan"] == "free"

    updated = (
        a.client.table("business_profiles")
        .update(
            {
                "business_name": "Dapur Mak Teh Enterprise",
                "business_type": "home bakery",
                "registration_number": "202601234567 (SA0123456-X)",
                "phone": "+60123456789",
                "address": {"line1": "12 Jalan Mawar", "postcode": "43000", "city": "Kajang"},
            }
        )
        .eq("business_owner_id", a.id)
        .execute()
        .data
    )
    assert len(updated) == 1
    assert updated[0]["business_name"] == "Dapur Mak Teh Enterprise"
    assert updated[0]["business_owner_id"] == a.id
    assert updated[0]["timezone"] == "Asia/Kuala_Lumpur"

    # A client may not write its own subscription.
    with pytest.raises(APIError) as refused:
        a.client.table("users").update({"subscription_plan": "pro"}).eq("id", a.id).execute()
    assert refused.value.code == "42501"


def test_04_products(day: Day) -> None:
    a = _owner(day, "a")
    rows = [
        {
            "sku": "KP-01",
            "name": "Karipap Pusing",
            "category": "Kuih",
            "unit": "pcs",
            "cost_price": "0.50",
            "sale_price": "1.30",
            "reorder_level": "10",
        },
        {
            "sku": "KB-10",
            "name": "Kuih Bahulu (10 biji)",
            "category": "Kuih",
            "unit": "pack",
            "cost_price": "2.50",
            "sale_price": "6.50",
            "reorder_level": "5",
        },
        {
            "sku": "KLS-1KG",
            "name": "Kek Lapis Sarawak",
            "category": "Kek",
            "unit": "pcs",
            "cost_price": "18.00",
            "sale_price": "45.00",
            "reorder_level": "2",
        },
        {
            "sku": "TN-JAR",
            "name": "Tart Nanas (balang)",
            "category": "Biskut",
            "unit": "jar",
            "cost_price": "10.00",
            "sale_price": "25.00",
            "reorder_level": "0",
        },
        {
            "sku": "ING-TPG",
            "name": "Tepung Gandum (kg)",
            "category": "Bahan",
            "unit": "kg",
            "cost_price": "0",
            "sale_price": "0",
            "reorder_level": "2",
        },
    ]
    inserted = a.client.table("products").insert(rows).execute().data
    assert len(inserted) == 5
    for row in inserted:
        assert row["business_owner_id"] == a.id
        assert D(row["current_stock"]) == 0 and row["is_active"] is True
        day.products[row["sku"]] = row["id"]
    assert D(next(r for r in inserted if r["sku"] == "KP-01")["sale_price"]) == Decimal("1.30")

    listed = a.client.table("products").select("*").order("name").execute().data
    assert [p["name"] for p in listed] == [
        "Karipap Pusing",
        "Kek Lapis Sarawak",
        "Kuih Bahulu (10 biji)",
        "Tart Nanas (balang)",
        "Tepung Gandum (kg)",
    ]

    one = (
        a.client.table("products").select("*").eq("id", day.products["KLS-1KG"]).single().execute()
    ).data
    assert one["sku"] == "KLS-1KG" and D(one["sale_price"]) == Decimal("45.00")

    changed = (
        a.client.table("products")
        .update({"sale_price": "48.00", "reorder_level": "8", "description": "Resipi asli"})
        .eq("id", day.products["KLS-1KG"])
        .execute()
        .data
    )
    assert len(changed) == 1
    assert D(changed[0]["sale_price"]) == Decimal("48.00")
    assert D(changed[0]["reorder_level"]) == 8 and changed[0]["description"] == "Resipi asli"

    # The stock level is not the client's to write.
    with pytest.raises(APIError) as refused:
        a.client.table("products").update({"current_stock": 999}).eq(
            "id", day.products["KP-01"]
        ).execute()
    assert refused.value.code == "42501"

    deleted = a.client.table("products").delete().eq("id", day.products.pop("TN-JAR")).execute()
    assert [r["sku"] for r in deleted.data] == ["TN-JAR"]
    remaining = a.client.table("products").select("sku", count="exact").order("sku").execute()
    assert remaining.count == 4
    assert [r["sku"] for r in remaining.data] == ["ING-TPG", "KB-10", "KLS-1KG", "KP-01"]


def test_05_morning_stock_in(day: Day) -> None:
    a, p = _owner(day, "a"), day.products
    flour = a.client.rpc(
        "record_purchase",
        {"product_id": p["ING-TPG"], "quantity": 10, "unit_cost": "3.20", "notes": "Kedai runcit"},
    ).execute()
    assert flour.data["product_id"] == p["ING-TPG"]
    assert D(flour.data["current_stock"]) == 10 and D(flour.data["cost_price"]) == Decimal("3.20")

    recipe = (
        a.client.table("recipe_items")
        .insert({"product_id": p["KP-01"], "ingredient_id": p["ING-TPG"], "quantity": "0.05"})
        .execute()
        .data
    )
    assert len(recipe) == 1 and recipe[0]["business_owner_id"] == a.id

    baked = a.client.rpc(
        "record_production", {"product_id": p["KP-01"], "quantity": 60, "notes": "Batch pagi"}
    ).execute()
    assert D(baked.data["current_stock"]) == 60
    assert D(baked.data["unit_cost"]) == Decimal("0.16")  # round(0.05 kg * 3.20, 2)
    assert [(i["product_id"], D(i["quantity"])) for i in baked.data["ingredients"]] == [
        (p["ING-TPG"], Decimal("3"))
    ]

    bahulu = a.client.rpc(
        "record_purchase", {"product_id": p["KB-10"], "quantity": 20, "unit_cost": "2.40"}
    ).execute()
    assert D(bahulu.data["current_stock"]) == 20 and D(bahulu.data["cost_price"]) == Decimal("2.40")

    for qty, cost, expected_avg in ((5, "18.00", "18.00"), (3, "20.00", "18.75")):
        kek = a.client.rpc(
            "record_purchase", {"product_id": p["KLS-1KG"], "quantity": qty, "unit_cost": cost}
        ).execute()
        assert D(kek.data["cost_price"]) == Decimal(expected_avg)
    assert D(kek.data["current_stock"]) == 8

    stock = {
        r["sku"]: (D(r["current_stock"]), D(r["cost_price"]))
        for r in a.client.table("products").select("sku, current_stock, cost_price").execute().data
    }
    assert stock == {
        "ING-TPG": (Decimal(7), Decimal("3.20")),
        "KP-01": (Decimal(60), Decimal("0.16")),
        "KB-10": (Decimal(20), Decimal("2.40")),
        "KLS-1KG": (Decimal(8), Decimal("18.75")),
    }


def _check_sale(sale: dict[str, Any], **expected: str) -> None:
    for key, value in expected.items():
        assert D(sale[key]) == Decimal(value), (key, sale[key], value)


def test_06_customer_and_sales(day: Day) -> None:
    a, p = _owner(day, "a"), day.products
    day.year = str(datetime.now(KL).year)
    customer = (
        a.client.table("customers")
        .insert({"name": "Puan Rohana", "phone": "+60198765432", "whatsapp_consent": True})
        .execute()
        .data
    )
    assert len(customer) == 1 and customer[0]["business_owner_id"] == a.id
    day.customer_id = customer[0]["id"]

    # Walk-in, cash: 3 x 1.30 + (6.50 - 0.28 line discount) = 10.12 -> rounded down to 10.10.
    s1 = (
        a.client.rpc(
            "create_sale",
            {
                "items": [
                    {"product_id": p["KP-01"], "quantity": 3},
                    {"product_id": p["KB-10"], "quantity": 1, "discount_amount": "0.28"},
                ],
                "payment_method": "cash",
            },
        )
        .execute()
        .data
    )
    assert s1["sale_number"] == f"INV-{day.year}-000001"
    assert s1["channel"] == "walk-in" and s1["payment_method"] == "cash"
    assert s1["payment_status"] == "paid" and s1["customer_id"] is None
    _check_sale(
        s1,
        total_amount="10.12",
        discount_amount="0",
        tax_amount="0",
        rounding_amount="-0.02",
        final_amount="10.10",
    )
    assert [
        (i["product_name"], D(i["quantity"]), D(i["unit_price"]), D(i["subtotal"]))
        for i in s1["items"]
    ] == [
        ("Karipap Pusing", 3, Decimal("1.30"), Decimal("3.90")),
        ("Kuih Bahulu (10 biji)", 1, Decimal("6.50"), Decimal("6.22")),
    ]
    day.sales["s1"] = s1

    # Online order for a customer, paid by e-wallet, sent with a client_ref and retried.
    ref = str(uuid.uuid4())
    order = {
        "items": [{"product_id": p["KLS-1KG"], "quantity": 1}],
        "channel": "online",
        "customer_id": day.customer_id,
        "discount_amount": "3.00",
        "payment_method": "ewallet",
        "notes": "Hantar esok",
        "client_ref": ref,
    }
    s2 = a.client.rpc("create_sale", order).execute().data
    assert s2["sale_number"] == f"INV-{day.year}-000002" and s2["client_ref"] == ref
    assert s2["customer_id"] == day.customer_id and s2["channel"] == "online"
    _check_sale(
        s2, total_amount="48.00", discount_amount="3.00", rounding_amount="0", final_amount="45.00"
    )
    retried = a.client.rpc("create_sale", order).execute().data
    assert retried == s2
    with pytest.raises(APIError) as conflict:
        a.client.rpc(
            "create_sale", {**order, "items": [{"product_id": p["KLS-1KG"], "quantity": 2}]}
        ).execute()
    assert conflict.value.code == "PT409"
    day.sales["s2"] = s2

    # Not enough Kek Lapis: refused, naming the product, and nothing is written.
    with pytest.raises(APIError) as short:
        a.client.rpc(
            "create_sale", {"items": [{"product_id": p["KLS-1KG"], "quantity": 100}]}
        ).execute()
    assert short.value.code == "PT422" and "Kek Lapis Sarawak" in (short.value.message or "")

    # Delivery, cash, sale discount: 13.00 + 13.00 - 0.37 = 25.63 -> rounded up to 25.65.
    s3 = (
        a.client.rpc(
            "create_sale",
            {
                "items": [
                    {"product_id": p["KP-01"], "quantity": 10},
                    {"product_id": p["KB-10"], "quantity": 2},
                ],
                "channel": "delivery",
                "discount_amount": "0.37",
            },
        )
        .execute()
        .data
    )
    assert s3["sale_number"] == f"INV-{day.year}-000003"  # gapless: refusals used no number
    _check_sale(
        s3,
        total_amount="26.00",
        discount_amount="0.37",
        rounding_amount="0.02",
        final_amount="25.65",
    )
    day.sales["s3"] = s3

    embedded = (
        a.client.table("sales")
        .select("*, sale_items(*, products(name))")
        .eq("id", s1["id"])
        .single()
        .execute()
        .data
    )
    assert embedded["sale_number"] == s1["sale_number"] and embedded["status"] == "completed"
    _check_sale(embedded, final_amount="10.10", rounding_amount="-0.02")
    items = sorted(embedded["sale_items"], key=lambda i: i["line_no"])
    assert [(i["products"]["name"], D(i["quantity"]), D(i["discount_amount"])) for i in items] == [
        ("Karipap Pusing", 3, Decimal("0")),
        ("Kuih Bahulu (10 biji)", 1, Decimal("0.28")),
    ]
    assert {i["business_owner_id"] for i in items} == {a.id}

    count = a.client.table("sales").select("id", count="exact").execute()
    assert count.count == 3

    # Clients cannot write sales directly.
    with pytest.raises(APIError) as direct:
        a.client.table("sales").insert(
            {"sale_number": "FAKE-1", "total_amount": 1, "final_amount": 1}
        ).execute()
    assert direct.value.code == "42501"


def test_07_void_and_stock_ledger(day: Day) -> None:
    a, p = _owner(day, "a"), day.products
    s3 = day.sales["s3"]
    voided = (
        a.client.rpc("void_sale", {"sale_id": s3["id"], "reason": "Pelanggan batal"}).execute().data
    )
    assert voided["id"] == s3["id"] and voided["status"] == "void"
    assert voided["void_reason"] == "Pelanggan batal" and voided["voided_at"]
    again = a.client.rpc("void_sale", {"sale_id": s3["id"], "reason": "Pelanggan batal"}).execute()
    assert again.data == voided  # a retried void changes nothing

    counted = (
        a.client.rpc(
            "adjust_stock", {"product_id": p["KB-10"], "counted_quantity": 18, "reason": "damage"}
        )
        .execute()
        .data
    )
    assert D(counted["previous_stock"]) == 19 and D(counted["current_stock"]) == 18
    assert D(counted["difference"]) == -1

    karipap = (
        a.client.table("stock_movements")
        .select("reference_type, movement_type, quantity, reference_id")
        .eq("product_id", p["KP-01"])
        .order("created_at")
        .execute()
        .data
    )
    assert [(m["reference_type"], m["movement_type"], D(m["quantity"])) for m in karipap] == [
        ("production", "in", 60),
        ("sale", "out", 3),
        ("sale", "out", 10),
        ("void", "in", 10),
    ]
    assert karipap[1]["reference_id"] == day.sales["s1"]["id"]
    assert karipap[3]["reference_id"] == s3["id"]

    ledger = a.client.table("stock_movements").select("*", count="exact").execute()
    assert ledger.count == 14 and len(ledger.data) == 14
    assert {m["business_owner_id"] for m in ledger.data} == {a.id}
    waste = [m for m in ledger.data if m["reference_type"] == "waste"]
    assert len(waste) == 1 and waste[0]["product_id"] == p["KB-10"]
    assert waste[0]["reason"] == "damage" and D(waste[0]["quantity"]) == 1

    # The ledger is written only by the stock functions.
    with pytest.raises(APIError) as forged:
        a.client.table("stock_movements").insert(
            {
                "product_id": p["KLS-1KG"],
                "reference_type": "purchase",
                "movement_type": "in",
                "quantity": 100,
            }
        ).execute()
    assert forged.value.code == "42501"

    products = a.client.table("products").select("id, sku, current_stock").execute().data
    book = {r["sku"]: D(r["current_stock"]) for r in products}
    assert book == {"ING-TPG": 7, "KP-01": 57, "KB-10": 18, "KLS-1KG": 7}
    for row in products:
        moves = [m for m in ledger.data if m["product_id"] == row["id"]]
        balance = sum(
            (D(m["quantity"]) * (1 if m["movement_type"] == "in" else -1) for m in moves),
            Decimal(0),
        )
        assert balance == D(row["current_stock"]), row["sku"]


def _figures(entry: dict[str, Any], **expected: str) -> None:
    for key, value in expected.items():
        assert entry[key] == Decimal(value), (key, entry[key], value)


def test_08_analytics_and_receipts(day: Day) -> None:
    a, p = _owner(day, "a"), day.products
    today = datetime.now(KL).date()
    start, end = today - timedelta(days=1), today + timedelta(days=1)
    raw = a.client.functions.invoke(
        "analytics", {"body": {"start_date": start.isoformat(), "end_date": end.isoformat()}}
    )
    report = exact_json(raw)
    # Completed sales only (the void one is out): s1 (cash, walk-in) and s2 (ewallet, online).
    walk_in = {
        "sales_count": "1",
        "gross_sales": "10.40",
        "discounts": "0.28",
        "tax": "0",
        "rounding": "-0.02",
        "net_sales": "10.12",
        "cogs": "2.88",
        "gross_profit": "7.24",
        "margin_pct": "71.54",
        "average_ticket": "10.10",
        "items_sold": "4",
    }
    online = {
        "sales_count": "1",
        "gross_sales": "48.00",
        "discounts": "3.00",
        "tax": "0",
        "rounding": "0",
        "net_sales": "45.00",
        "cogs": "18.75",
        "gross_profit": "26.25",
        "margin_pct": "58.33",
        "average_ticket": "45.00",
        "items_sold": "1",
    }
    _figures(
        report["totals"],
        sales_count="2",
        gross_sales="58.40",
        discounts="3.28",
        tax="0",
        rounding="-0.02",
        net_sales="55.12",
        cogs="21.63",
        gross_profit="33.49",
        margin_pct="60.76",
        average_ticket="27.55",
        items_sold="5",
    )
    assert [e["channel"] for e in report["by_channel"]] == ["online", "walk-in"]
    _figures(report["by_channel"][0], **online)
    _figures(report["by_channel"][1], **walk_in)
    assert [e["payment_method"] for e in report["by_payment_method"]] == ["cash", "ewallet"]
    _figures(report["by_payment_method"][0], **walk_in)
    _figures(report["by_payment_method"][1], **online)

    assert [date.fromisoformat(d["date"]) for d in report["by_day"]] == [
        start,
        today,
        end,
    ]
    assert sum((d["sales_count"] for d in report["by_day"]), Decimal(0)) == 2
    assert sum((d["net_sales"] for d in report["by_day"]), Decimal(0)) == Decimal("55.12")

    by_revenue = report["top_products"]["by_revenue"]
    assert [(t["product_id"], t["revenue"], t["quantity"]) for t in by_revenue] == [
        (p["KLS-1KG"], Decimal("48.00"), 1),
        (p["KB-10"], Decimal("6.22"), 1),
        (p["KP-01"], Decimal("3.90"), 3),
    ]
    by_quantity = report["top_products"]["by_quantity"]
    assert [t["product_id"] for t in by_quantity] == [
        p["KP-01"],
        *sorted([p["KB-10"], p["KLS-1KG"]]),
    ]
    low = report["low_stock"]
    assert [(x["product_id"], x["current_stock"], x["reorder_level"]) for x in low] == [
        (p["KLS-1KG"], 7, 8)
    ]

    # The same report through RPC.
    via_rpc = a.client.rpc(
        "analytics", {"start_date": start.isoformat(), "end_date": end.isoformat()}
    ).execute()
    assert via_rpc.data["totals"]["sales_count"] == 2
    assert D(via_rpc.data["totals"]["net_sales"]) == Decimal("55.12")

    s1 = day.sales["s1"]
    receipt = exact_json(
        a.client.functions.invoke("receipt", {"body": {"sale_id": s1["id"], "width": 32}})
    )
    lines: list[str] = receipt["lines"]
    assert receipt["width"] == 32 and all(len(line) <= 32 for line in lines), lines
    text = "\n".join(lines)
    assert "Dapur Mak Teh Enterprise" in text and s1["sale_number"] in text
    assert "Karipap Pusing" in text and "Kuih Bahulu (10 biji)" in text
    assert any(line.startswith("Rounding") and line.endswith("-0.02") for line in lines), lines
    assert any(line.startswith("TOTAL") and line.endswith("10.10") for line in lines), lines
    assert any(line.startswith("Payment") and line.endswith("Cash") for line in lines), lines
    day.receipt_bytes = receipt["text"].encode()

    void_receipt = exact_json(
        a.client.functions.invoke(
            "receipt", {"body": {"sale_id": day.sales["s3"]["id"], "width": 48}}
        )
    )
    assert all(len(line) <= 48 for line in void_receipt["lines"])
    assert any("VOID" in line for line in void_receipt["lines"]), void_receipt["lines"]


def test_09_storage(day: Day) -> None:
    a = _owner(day, "a")
    images = a.client.storage.from_("product-images")
    day.image_path = f"{a.id}/products/kek-lapis.png"
    uploaded = images.upload(day.image_path, PNG, {"content-type": "image/png"})
    assert uploaded.path == day.image_path
    assert uploaded.full_path == f"product-images/{day.image_path}"
    day.image_url = images.get_public_url(day.image_path)
    public = httpx.get(day.image_url, timeout=10)  # a browser: no apikey, no Authorization
    assert public.status_code == 200, public.text
    assert public.content == PNG and public.headers["content-type"].startswith("image/png")

    updated = (
        a.client.table("products")
        .update({"images": [day.image_url]})
        .eq("id", day.products["KLS-1KG"])
        .execute()
        .data
    )
    assert updated[0]["images"] == [day.image_url]

    with pytest.raises(StorageApiError) as not_image:  # product-images takes images only
        images.upload(f"{a.id}/products/notes.txt", b"not an image", {"content-type": "text/plain"})
    assert str(not_image.value.status) == "415"
    with pytest.raises(StorageApiError) as elsewhere:  # only under her own id
        images.upload("shared/kek.png", PNG, {"content-type": "image/png"})
    assert str(elsewhere.value.status) == "403"

    receipts = a.client.storage.from_("receipts")
    day.receipt_path = f"{a.id}/{day.year}/{day.sales['s1']['sale_number']}.txt"
    receipts.upload(day.receipt_path, day.receipt_bytes, {"content-type": "text/plain"})
    listed = receipts.list(f"{a.id}/{day.year}")
    assert [o["name"] for o in listed] == [f"{day.sales['s1']['sale_number']}.txt"]
    signed = receipts.create_signed_url(day.receipt_path, 120)
    fetched = httpx.get(signed["signedURL"], timeout=10)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == day.receipt_bytes
    assert fetched.headers["content-type"].startswith("text/plain")
    # The private bucket has no public URL.
    leaked = httpx.get(receipts.get_public_url(day.receipt_path), timeout=10)
    assert leaked.status_code == 404 and leaked.content != day.receipt_bytes
    assert leaked.json()["statusCode"] == "404"


def test_10_tenant_b_sees_and_touches_nothing_of_a(day: Day) -> None:
    a, b, p = _owner(day, "a"), _owner(day, "b"), day.products
    s1 = day.sales["s1"]

    # REST reads: nothing of A's.
    for table in (
        "products",
        "sales",
        "sale_items",
        "stock_movements",
        "customers",
        "recipe_items",
    ):
        assert b.client.table(table).select("*").execute().data == [], table
    profiles = b.client.table("business_profiles").select("*").execute().data
    assert [r["business_owner_id"] for r in profiles] == [b.id]
    assert profiles[0]["business_name"] == "Roti Lim"  # from the sign-up metadata
    assert b.client.table("products").select("*").eq("id", p["KP-01"]).execute().data == []
    # An embedding cannot reach A's rows either.
    assert (
        b.client.table("sales").select("*, sale_items(*)").eq("id", s1["id"]).execute().data == []
    )

    # REST writes aimed at A's rows touch nothing.
    assert (
        b.client.table("products").update({"sale_price": "0.01"}).eq("id", p["KP-01"]).execute()
    ).data == []
    assert b.client.table("customers").delete().eq("id", day.customer_id).execute().data == []
    with pytest.raises(APIError) as planted:
        b.client.table("products").insert(
            {"business_owner_id": a.id, "sku": "EVIL", "name": "Evil", "sale_price": "1"}
        ).execute()
    assert planted.value.code == "42501"
    with pytest.raises(APIError) as upsert:
        b.client.table("products").upsert(
            {
                "business_owner_id": a.id,
                "id": p["KP-01"],
                "sku": "KP-01",
                "name": "Evil",
                "sale_price": "0.01",
            }
        ).execute()
    assert upsert.value.code == "42501"

    # RPC aimed at A's ids: not found, as if they did not exist.
    b_product = (
        b.client.table("products")
        .insert({"sku": "RC-01", "name": "Roti Canai", "sale_price": "1.50"})
        .execute()
        .data[0]
    )
    b.client.rpc(
        "record_purchase", {"product_id": b_product["id"], "quantity": 5, "unit_cost": "0.60"}
    ).execute()
    for fn, args in (
        ("create_sale", {"items": [{"product_id": p["KP-01"], "quantity": 1}]}),
        (
            "create_sale",
            {
                "items": [{"product_id": b_product["id"], "quantity": 1}],
                "customer_id": day.customer_id,
            },
        ),
        ("void_sale", {"sale_id": s1["id"], "reason": "sabotaj"}),
        ("record_purchase", {"product_id": p["KP-01"], "quantity": 1, "unit_cost": "1.00"}),
        ("adjust_stock", {"product_id": p["KP-01"], "counted_quantity": 0, "reason": "count"}),
        ("record_production", {"product_id": p["KP-01"], "quantity": 1}),
    ):
        with pytest.raises(APIError) as refused:
            b.client.rpc(fn, args).execute()
        assert refused.value.code == "PT404", (fn, refused.value)
    # None of those sold anything (A's stock is checked unchanged below).
    assert b.client.table("sales").select("id").execute().data == []

    # Functions: B's analytics hold only B; A's sale has no receipt for B.
    today = datetime.now(KL).date().isoformat()
    report = exact_json(
        b.client.functions.invoke("analytics", {"body": {"start_date": today, "end_date": today}})
    )
    assert report["totals"]["sales_count"] == 0 and report["totals"]["net_sales"] == 0
    assert report["top_products"]["by_revenue"] == []
    assert [x["product_id"] for x in report["low_stock"]] == []  # 5 Roti Canai, reorder 0
    with pytest.raises(FunctionsHttpError) as hidden:
        b.client.functions.invoke("receipt", {"body": {"sale_id": s1["id"]}})
    assert hidden.value.status == 404

    # Storage: B can neither list, read, sign, overwrite nor delete A's objects.
    images, receipts = b.client.storage.from_("product-images"), b.client.storage.from_("receipts")
    assert images.list(f"{a.id}/products") == []
    assert receipts.list(f"{a.id}/{day.year}") == []
    refusals = {
        "download": lambda: receipts.download(day.receipt_path),
        "sign": lambda: receipts.create_signed_url(day.receipt_path, 60),
        "move": lambda: images.move(day.image_path, f"{b.id}/stolen.png"),
        "overwrite": lambda: images.upload(
            day.image_path, b"\x89PNG evil", {"content-type": "image/png", "upsert": "true"}
        ),
        "plant": lambda: images.upload(
            f"{a.id}/products/evil.png", PNG, {"content-type": "image/png"}
        ),
    }
    statuses = {}
    for what, attempt in refusals.items():
        with pytest.raises(StorageApiError) as refused_obj:
            attempt()
        statuses[what] = str(refused_obj.value.status)
    assert statuses == {
        "download": "404",
        "sign": "404",
        "move": "404",
        "overwrite": "403",
        "plant": "403",
    }
    assert images.remove([day.image_path]) == []

    # ...and A's data is all still there, unchanged.
    still = httpx.get(day.image_url, timeout=10)
    assert still.status_code == 200 and still.content == PNG
    kp = a.client.table("products").select("sale_price, current_stock").eq("id", p["KP-01"])
    row = kp.single().execute().data
    assert D(row["sale_price"]) == Decimal("1.30") and D(row["current_stock"]) == 57
    assert len(a.client.table("customers").select("id").execute().data) == 1
    sale = a.client.table("sales").select("status").eq("id", s1["id"]).single().execute()
    assert sale.data["status"] == "completed"


async def _arrived(events: list[dict[str, Any]], n: int, seconds: float = 5.0) -> None:
    for _ in range(int(seconds * 10)):
        if len(events) >= n:
            return
        await asyncio.sleep(0.1)


async def test_11_realtime_own_changes_only(server: Server, day: Day) -> None:
    a, b = _owner(day, "a"), _owner(day, "b")
    sa = await acreate_client(server.url, server.anon_key)
    sb = await acreate_client(server.url, server.anon_key)
    await sa.auth.sign_in_with_password({"email": a.email, "password": PASSWORD})
    await sb.auth.sign_in_with_password({"email": b.email, "password": PASSWORD})
    got: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    states: dict[str, str] = {}
    try:
        for name, client in (("a", sa), ("b", sb)):
            channel = client.channel(f"shop-{name}")
            for table in ("products", "sales"):
                channel.on_postgres_changes(
                    "INSERT", got[name].append, table=table, schema="public"
                )
            await channel.subscribe(
                lambda state, err, name=name: states.__setitem__(name, str(state))
            )
        assert sorted(states) == ["a", "b"], states
        assert all(s.endswith("SUBSCRIBED") for s in states.values()), states

        # A adds a product: her own INSERT arrives, carrying the row as inserted.
        donut = (
            await sa.table("products")
            .insert({"sku": "DN-01", "name": "Donut Gula", "sale_price": "1.00"})
            .execute()
        ).data[0]
        await _arrived(got["a"], 1)
        assert len(got["a"]) == 1, got["a"]
        data = got["a"][0]["data"]
        assert data["type"] == "INSERT" and data["schema"] == "public"
        assert data["table"] == "products" and data["errors"] is None
        assert {c["name"] for c in data["columns"]} >= {"id", "sku", "sale_price"}
        record = data["record"]
        for key in ("id", "sku", "name", "business_owner_id", "created_at", "updated_at"):
            assert record[key] == donut[key], key
        assert D(record["sale_price"]) == Decimal("1.00") and D(record["current_stock"]) == 0
        assert "old_record" not in data or isinstance(data["old_record"], dict)

        # A sells it (create_sale): the sale's INSERT arrives too.
        await sa.rpc(
            "record_purchase", {"product_id": donut["id"], "quantity": 12, "unit_cost": "0.40"}
        ).execute()
        sale = (
            await sa.rpc(
                "create_sale",
                {"items": [{"product_id": donut["id"], "quantity": 4}], "payment_method": "qr"},
            ).execute()
        ).data
        await _arrived(got["a"], 2)
        assert [e["data"]["table"] for e in got["a"]] == ["products", "sales"], got["a"]
        sale_event = got["a"][1]["data"]["record"]
        assert sale_event["id"] == sale["id"] and sale_event["sale_number"] == sale["sale_number"]
        assert D(sale_event["final_amount"]) == Decimal("4.00")

        # B's own insert reaches B; nothing of A's ever reaches B, and B's row never reaches A.
        await (
            sb.table("products")
            .insert({"sku": "RC-02", "name": "Roti Tisu", "sale_price": "3.50"})
            .execute()
        )
        await _arrived(got["b"], 1)
        await asyncio.sleep(0.5)  # time for anything misrouted to arrive
        assert len(got["b"]) == 1, got["b"]
        assert got["b"][0]["data"]["record"]["business_owner_id"] == b.id
        assert got["b"][0]["data"]["record"]["sku"] == "RC-02"
        assert len(got["a"]) == 2, got["a"]
    finally:
        await sa.remove_all_channels()
        await sb.remove_all_channels()
        await sa.auth.sign_out()
        await sb.auth.sign_out()


def test_12_sign_out(server: Server, day: Day) -> None:
    session = _owner(day, "a").client.auth.get_session()
    assert session is not None
    refresh_token = session.refresh_token
    for owner in (_owner(day, "a"), _owner(day, "b")):
        owner.client.auth.sign_out()
        assert owner.client.auth.get_session() is None
        # Back to the anon key: no tenant data is readable.
        with pytest.raises(APIError) as anon:
            owner.client.table("products").select("*").execute()
        assert anon.value.code == "42501"
    # The signed-out session's refresh token is dead.
    with pytest.raises(AuthApiError) as dead:
        create_client(server.url, server.anon_key).auth.refresh_session(refresh_token)
    assert dead.value.code == "refresh_token_not_found"


def test_13_sigterm_stops_cleanly(server: Server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(20) == 0, server.log_tail()
