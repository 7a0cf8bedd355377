"""Realtime: a sale made elsewhere (here, through the API with the official client) shows in
the open app — the Sell screen's stock and the Sales list — without a reload."""

from __future__ import annotations

import re
import uuid

from app.accounts import PASSWORD, open_signed_up
from app.driver import PHONE, AppPage
from playwright.sync_api import Browser, expect
from supabase import create_client


def expect_stock(app: AppPage, quantity: str) -> None:
    """The Sell tile's stock line (the tile's group is named by it)."""
    expect(app.page.get_by_role("group", name=f"{quantity} in stock", exact=True)).to_be_visible()


def test_a_sale_made_elsewhere_updates_the_open_app(server, browser: Browser) -> None:
    email = f"live-{uuid.uuid4().hex[:10]}@example.com"
    app = open_signed_up(browser, server, email, "Kedai Kuih", PHONE)

    api = create_client(server.url, server.anon_key)
    api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    product = (
        api.table("products")
        .insert({"sku": "KUIH", "name": "Kuih Lapis", "sale_price": "1.20"})
        .execute()
        .data[0]
    )
    api.rpc(
        "adjust_stock", {"product_id": product["id"], "counted_quantity": 8, "reason": "count"}
    ).execute()
    app.navigate("Products")  # the product list loads; then go back to the counter
    app.navigate("Sell")
    expect(app.button("Kuih Lapis")).to_be_visible()
    expect_stock(app, "8")

    def sell(quantity: int) -> str:
        sale = (
            api.rpc(
                "create_sale",
                {
                    "items": [{"product_id": product["id"], "quantity": quantity}],
                    "payment_method": "card",
                },
            )
            .execute()
            .data
        )
        return str(sale["sale_number"])

    sell(3)
    expect_stock(app, "5")  # no navigation, no reload

    app.navigate("Sales")
    second = sell(1)
    expect(app.page.get_by_role("button", name=re.compile(re.escape(second)))).to_be_visible()
    app.navigate("Sell")
    expect_stock(app, "4")
