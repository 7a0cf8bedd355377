"""Offline selling with the app run alone (`pocketbizz app --backend URL`), as on a device:
the server stops, the counter keeps selling into the app's local SQLite outbox, the app is
even restarted, and when the server is back every sale is recorded exactly once, in order; a
sale the server refuses on replay is shown to the user, not dropped."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

from app.devices import add_products, sell_by_card
from app.driver import PHONE, AppPage
from app.servers import AppProcess
from app.test_counter_flow import PASSWORD, sign_up
from harness import ServerProcess
from playwright.sync_api import Browser, expect
from supabase import create_client


def test_offline_sales_are_recorded_once_each_when_the_server_returns(
    backend: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    device = AppProcess(backend.url, tmp_path)
    device.start()
    try:
        email = f"offline-{uuid.uuid4().hex[:10]}@example.com"
        app = AppPage.open(browser, device.url, PHONE)
        sign_up(app, email, "Gerai Pagi")

        api = create_client(backend.url, backend.anon_key)
        api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
        add_products(api, {"Pisang Goreng": 10, "Cucur Udang": 1}, "1.00")
        app.navigate("Products")  # the catalogue is loaded, and kept on the device
        app.navigate("Sell")
        expect(app.button("Cucur Udang")).to_be_visible()

        backend.stop()
        offline_from = datetime.now(UTC)
        for _ in range(3):
            sell_by_card(app, "Pisang Goreng")
        offline_until = datetime.now(UTC)
        # Two of the one Cucur Udang in stock: the server will refuse this one on replay.
        app.tap(app.button("Cucur Udang"))
        app.tap(app.button("Cucur Udang"))
        app.click("Charge")
        app.click("Card")
        app.click("Complete sale")
        app.expect_text("Offline — 4 sales waiting")

        # The device restarts while the server is still down: the outbox is on disk.
        device.stop()
        device.start()
        back_at = datetime.now(UTC)
        backend.start()  # same port, same database
        app = AppPage.open(browser, device.url, PHONE)
        app.textbox("Email").wait_for()
        app.type_into("Email", email)
        app.type_into("Password", PASSWORD)
        app.click("Sign in")
        app.destination("Sell").wait_for()
        refused = re.compile(r"refused: insufficient stock for \"Cucur Udang\"")
        expect(app.page.get_by_text(refused)).to_be_visible(timeout=20_000)
        expect(app.page.get_by_text(re.compile("sales waiting"))).to_have_count(0)

        sales = (
            api.table("sales")
            .select(
                "sale_number, client_ref, payment_method, created_at,"
                " sale_items(product_name, quantity)"
            )
            .order("sale_number")
            .execute()
            .data
        )
        assert len(sales) == 3
        assert len({s["client_ref"] for s in sales}) == 3 and all(s["client_ref"] for s in sales)
        assert all(s["payment_method"] == "card" for s in sales)
        assert {i["product_name"] for s in sales for i in s["sale_items"]} == {"Pisang Goreng"}
        # Dated when they were sold (sold_at), not when the replay reached the server after
        # the device's restart; numbered in that order.
        sold = [datetime.fromisoformat(s["created_at"]) for s in sales]
        assert offline_from <= sold[0] < sold[1] < sold[2] <= offline_until < back_at
        product = api.table("products").select("current_stock").eq("sku", "P0").single()
        assert float(product.execute().data["current_stock"]) == 7

        # The refused sale is the user's to resolve: discarding it empties the banner.
        app.click("Discard")
        expect(app.page.get_by_text(re.compile("refused"))).to_have_count(0)

    finally:
        device.stop()
