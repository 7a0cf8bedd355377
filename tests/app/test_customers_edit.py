"""Customers in the browser: one added, then edited (name, phone, email, notes), and their
purchase history — their sales only, a voided one marked and left out of the total spent, and
a new sale made elsewhere showing without a reload; checked through the API."""

from __future__ import annotations

import re
import uuid
from typing import Any

from app.accounts import PASSWORD, open_signed_up
from app.driver import TABLET
from playwright.sync_api import Browser, expect
from supabase import Client, create_client


def sale(api: Client, product_id: str, quantity: int, customer_id: str | None) -> dict[str, Any]:
    args = {
        "items": [{"product_id": product_id, "quantity": quantity}],
        "payment_method": "card",
        "customer_id": customer_id,
    }
    return dict(api.rpc("create_sale", args).execute().data)


def test_customer_add_edit_and_purchase_history(server, browser: Browser) -> None:
    email = f"cust-{uuid.uuid4().hex[:10]}@example.com"
    app = open_signed_up(browser, server, email, "Kedai Dobi", TABLET)
    api = create_client(server.url, server.anon_key)
    api.auth.sign_in_with_password({"email": email, "password": PASSWORD})

    app.navigate("Customers")
    app.type_into("Name", "Encik Ali")
    app.type_into("Phone", "60123456789")
    app.click("Add customer")
    app.expect_text("Encik Ali")
    [ali] = api.table("customers").select("*").execute().data
    other = api.table("customers").insert({"name": "Puan Siti"}).execute().data[0]
    product = (
        api.table("products")
        .insert({"sku": "DOBI", "name": "Cuci 1kg", "sale_price": "4.50"})
        .execute()
        .data[0]
    )
    api.table("products").update({"negative_stock_policy": "allow"}).eq(
        "id", product["id"]
    ).execute()
    first = sale(api, product["id"], 2, ali["id"])  # RM 9.00
    voided = sale(api, product["id"], 1, ali["id"])  # RM 4.50, voided below
    not_his = sale(api, product["id"], 3, other["id"])
    api.rpc("void_sale", {"sale_id": voided["id"], "reason": "wrong item"}).execute()

    app.tap(app.page.get_by_role("button", name=re.compile(r"^Encik Ali")))
    app.expect_text("Purchase history")
    app.expect_text("Total spent: RM 9.00 in 1 sales")
    app.expect_text(re.compile(re.escape(first["sale_number"]) + r"  RM 9\.00$"))
    app.expect_text(re.compile(re.escape(voided["sale_number"]) + r"  RM 4\.50  \(Void\)"))
    expect(app.page.get_by_text(not_his["sale_number"])).to_have_count(0)

    # A sale to him made elsewhere while his page is open: the history follows it.
    third = sale(api, product["id"], 1, ali["id"])
    app.expect_text(third["sale_number"])
    app.expect_text("Total spent: RM 13.50 in 2 sales")

    for field, value in [
        ("Name", "Encik Ali bin Abu"),
        ("Phone", "60198765432"),
        ("Email", "ali@example.com"),
        ("Notes", "Hantar petang"),
    ]:
        app.type_into(field, value)
    app.click("Save")
    app.expect_text("Encik Ali bin Abu")
    edited = (
        api.table("customers")
        .select("name, phone, email, notes")
        .eq("id", ali["id"])
        .single()
        .execute()
        .data
    )
    assert edited == {
        "name": "Encik Ali bin Abu",
        "phone": "60198765432",
        "email": "ali@example.com",
        "notes": "Hantar petang",
    }
