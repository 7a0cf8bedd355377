"""The shop counter in a real browser against a real `pocketbizz serve` (issue 9, "Done when"):
account → business setup → product with stock 5 → a cash sale of 2 with change and 5-sen
rounding shown → its number → checked through the API → dashboard revenue → void → stock 5 →
Bahasa Melayu; and a second tenant in another browser context sees none of it."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

from app.accounts import PASSWORD, open_signed_up
from app.driver import PHONE, TABLET, AppPage
from playwright.sync_api import Browser, expect
from supabase import create_client


def sign_up(app: AppPage, email: str, business: str) -> None:
    app.textbox("Email").wait_for()
    app.type_into("Email", email)
    app.type_into("Password", PASSWORD)
    app.click("Create account")
    app.textbox("Business name").wait_for()
    app.type_into("Business name", business)
    app.click("Continue")
    app.destination("Sell").wait_for()


def test_sell_void_dashboard_language_and_isolation(server, browser: Browser) -> None:
    email = f"baker-{uuid.uuid4().hex[:10]}@example.com"
    app = AppPage.open(browser, server.url + "/", PHONE)  # `/` leads to the app at /app/
    sign_up(app, email, "Kedai Roti Aminah")

    # Products: add one with opening stock 5. 2.51 × 2 = 5.02 → cash due 5.00 (rounding -0.02).
    app.navigate("Products")
    app.click("Add product")
    for field, value in [
        ("Name", "Roti Canai"),
        ("Price", "2.51"),
        ("Cost", "1.00"),
        ("Stock", "5"),
        ("SKU", "RC-1"),
    ]:
        app.type_into(field, value)
    app.click("Save")
    app.expect_text(re.compile(r"5 in stock"))

    # Sell: tap the tile twice, charge, pay cash.
    app.navigate("Sell")
    tile = app.button("Roti Canai")
    app.tap(tile)
    app.tap(tile)
    app.click("Charge")
    app.click("Cash")
    app.type_into("Cash received", "10")
    app.expect_text("Rounding")
    app.expect_text("-RM 0.02")
    app.expect_text("Change")
    app.expect_text("RM 5.00")
    app.click("Complete sale")
    shown = app.expect_text(re.compile(r"^Sale INV-\d{4}-\d{6}$")).inner_text()
    number = shown.strip().removeprefix("Sale ")

    # Through the API, as the same user: the sale, its items, and stock 3.
    api = create_client(server.url, server.anon_key)
    api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    sale = (
        api.table("sales")
        .select("*, sale_items(*)")
        .eq("sale_number", number)
        .single()
        .execute()
        .data
    )
    assert sale["status"] == "completed" and sale["payment_method"] == "cash"
    assert Decimal(str(sale["rounding_amount"])) == Decimal("-0.02")
    assert Decimal(str(sale["final_amount"])) == Decimal("5.00")
    assert [(i["product_name"], Decimal(str(i["quantity"]))) for i in sale["sale_items"]] == [
        ("Roti Canai", Decimal("2"))
    ]
    product = (
        api.table("products").select("id, current_stock").eq("sku", "RC-1").single().execute().data
    )
    assert Decimal(str(product["current_stock"])) == 3

    # Dashboard (analytics RPC): today's revenue is the sale's net amount, 5.02.
    app.navigate("Dashboard")
    app.expect_text("RM 5.02")

    # Sales: open the sale, void it with a reason → stock back to 5.
    app.navigate("Sales")
    app.tap(app.page.get_by_role("button", name=re.compile(re.escape(number))))
    app.type_into("Reason", "customer changed mind")
    app.click("Void")
    expect(
        app.page.get_by_role("button", name=re.compile(re.escape(number) + ".*Void"))
    ).to_be_visible()
    stock = (
        api.table("products")
        .select("current_stock")
        .eq("id", product["id"])
        .single()
        .execute()
        .data
    )
    assert Decimal(str(stock["current_stock"])) == 5
    voided = (
        api.table("sales")
        .select("status, void_reason")
        .eq("sale_number", number)
        .single()
        .execute()
        .data
    )
    assert voided == {"status": "void", "void_reason": "customer changed mind"}

    # Settings: Bahasa Melayu relabels the app.
    app.navigate("Settings")
    app.expect_text("Plan: Free")
    app.expect_text("Active products: 1 / 50")
    app.expect_text("Sales this month: 1 / 500")  # the void one counts towards the plan
    app.click("Bahasa Melayu", role="radio")
    expect(app.page.get_by_role("tab", name="Jual", exact=True)).to_be_visible()
    expect(app.page.get_by_role("tab", name="Tetapan", exact=True)).to_be_visible()
    expect(app.page.get_by_role("tab", name="Sell", exact=True)).to_have_count(0)

    # Tenant B, another browser context (tablet layout): none of A's products or sales.
    other = open_signed_up(
        browser, server, f"stall-{uuid.uuid4().hex[:10]}@example.com", "Gerai Nasi Lemak", TABLET
    )
    other.navigate("Products")
    other.expect_text("No products yet")
    expect(other.page.get_by_text("Roti Canai")).to_have_count(0)
    other.navigate("Sales")
    other.expect_text("No sales yet")
    expect(other.page.get_by_text(number)).to_have_count(0)
