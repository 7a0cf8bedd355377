"""The back-office screens in the browser: a purchase and a stock count recorded from Stock
(with the product's movement history), and a customer added from Customers."""

from __future__ import annotations

import uuid
from decimal import Decimal

from app.accounts import PASSWORD, open_signed_up
from app.driver import TABLET
from playwright.sync_api import Browser, expect
from supabase import create_client


def test_purchase_count_and_customer(server, browser: Browser) -> None:
    email = f"stock-{uuid.uuid4().hex[:10]}@example.com"
    app = open_signed_up(browser, server, email, "Kedai Runcit", TABLET)
    api = create_client(server.url, server.anon_key)
    api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    product = (
        api.table("products")
        .insert({"sku": "GULA", "name": "Gula 1kg", "sale_price": "3.00", "cost_price": "2.00"})
        .execute()
        .data[0]
    )

    app.navigate("Stock")
    app.tap(app.page.get_by_role("button", name="Gula 1kg"))
    app.type_into("Quantity", "12")
    app.click("Record purchase")
    app.expect_text("12 in stock")
    app.type_into("Counted", "10")
    app.type_into("Reason", "damage")
    app.click("Stock count")
    app.expect_text("10 in stock")
    expect(app.page.get_by_text("purchase  +12")).to_be_visible()
    movements = (
        api.table("stock_movements")
        .select("reference_type, movement_type, quantity")
        .eq("product_id", product["id"])
        .order("created_at")
        .execute()
        .data
    )
    assert [
        (m["reference_type"], m["movement_type"], Decimal(str(m["quantity"]))) for m in movements
    ] == [("purchase", "in", 12), ("waste", "out", 2)]

    app.navigate("Customers")
    app.expect_text("No customers yet")
    app.type_into("Name", "Puan Salmah")
    app.type_into("Phone", "+60123456789")
    app.click("Add customer")
    app.expect_text("Puan Salmah")
    customers = api.table("customers").select("name, phone").execute().data
    assert customers == [{"name": "Puan Salmah", "phone": "+60123456789"}]
