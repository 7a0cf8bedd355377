"""The rest of a sale at the counter: category filter, delivery channel, a customer picked
from the list, a sale discount — recorded as such through the API — and the Sales filters.
Products carry a category, barcode and low-stock level entered in the form."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

from app.accounts import PASSWORD, open_signed_up
from app.driver import TABLET
from playwright.sync_api import Browser, expect
from supabase import create_client


def test_category_channel_customer_discount_and_filters(server, browser: Browser) -> None:
    email = f"pos-{uuid.uuid4().hex[:10]}@example.com"
    app = open_signed_up(browser, server, email, "Kafe Kita", TABLET)
    api = create_client(server.url, server.anon_key)
    api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    api.table("customers").insert({"name": "Encik Ali", "phone": "+60 12-345 6789"}).execute()

    app.navigate("Products")
    for name, price, category in [("Kopi O", "2.00", "Drinks"), ("Kek Batik", "6.00", "Cakes")]:
        app.click("Add product")
        app.type_into("Name", name)
        app.type_into("Price", price)
        app.type_into("Stock", "20")
        app.type_into("Category", category)
        app.type_into("Low-stock level", "5")
        if name == "Kopi O":
            app.type_into("Barcode", "9556001234567")
        app.click("Save")
    rows = api.table("products").select("name, category, barcode, reorder_level").order("name")
    assert [
        (r["name"], r["category"], r["barcode"], Decimal(str(r["reorder_level"])))
        for r in rows.execute().data
    ] == [("Kek Batik", "Cakes", None, 5), ("Kopi O", "Drinks", "9556001234567", 5)]

    app.navigate("Sell")
    app.click("Cakes")
    expect(app.button("Kopi O")).to_have_count(0)
    app.tap(app.button("Kek Batik"))
    app.tap(app.button("Kek Batik"))
    app.click("Charge")
    app.click("Delivery")
    app.click("Card")
    app.type_into("Discount", "1.50")
    app.expect_text("-RM 1.50")
    app.expect_text("RM 10.50")
    app.tap(app.page.get_by_role("button", name=re.compile(r"^Customer: ")))
    app.tap(app.page.get_by_role("button", name=re.compile(r"^Encik Ali")))
    app.expect_text("Customer: Encik Ali")
    app.click("Complete sale")
    number = app.expect_text(re.compile(r"^Sale INV-")).inner_text().strip().removeprefix("Sale ")
    expect(app.button("WhatsApp")).to_be_visible()

    sale = (
        api.table("sales")
        .select("channel, payment_method, discount_amount, final_amount, customers(name)")
        .eq("sale_number", number)
        .single()
        .execute()
        .data
    )
    assert sale["channel"] == "delivery" and sale["payment_method"] == "card"
    assert Decimal(str(sale["discount_amount"])) == Decimal("1.50")
    assert Decimal(str(sale["final_amount"])) == Decimal("10.50")
    assert sale["customers"] == {"name": "Encik Ali"}

    # Sales filters: the delivery sale shows under Delivery, not under Walk-in.
    api.rpc(
        "create_sale",
        {
            "items": [
                {
                    "product_id": api.table("products")
                    .select("id")
                    .eq("name", "Kopi O")
                    .single()
                    .execute()
                    .data["id"],
                    "quantity": 1,
                }
            ]
        },
    ).execute()
    app.navigate("Sales")
    sale_button = app.page.get_by_role("button", name=re.compile(re.escape(number)))
    expect(sale_button).to_be_visible()
    app.click("Walk-in")
    expect(sale_button).to_have_count(0)
    app.click("Delivery")
    expect(sale_button).to_be_visible()
