"""Live updates through a server restart: the app run alone (`pocketbizz app --backend`, as on
a device) stays open while `pocketbizz serve` stops and starts again on the same port and
data; the app reconnects by itself, catches up with what changed while it was away, and sales
made through the API show in the open Sell screen without a reload."""

from __future__ import annotations

import uuid
from pathlib import Path

from app.driver import PHONE, AppPage
from app.servers import AppProcess
from app.test_counter_flow import PASSWORD, sign_up
from app.test_live_updates import expect_stock
from harness import ServerProcess
from playwright.sync_api import Browser, expect
from supabase import Client, create_client

# Longer than the ~1 s of a live update: the app's live feed has to notice the restart and
# reconnect first (its retries start at 1 s and double).
RECONNECT_MS = 30_000


def _sell(api: Client, product_id: str, quantity: int) -> None:
    api.rpc(
        "create_sale",
        {"items": [{"product_id": product_id, "quantity": quantity}], "payment_method": "card"},
    ).execute()


def test_the_app_follows_sales_after_a_server_restart(
    backend: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    device = AppProcess(backend.url, tmp_path)
    device.start()
    try:
        email = f"restart-{uuid.uuid4().hex[:10]}@example.com"
        app = AppPage.open(browser, device.url, PHONE)
        sign_up(app, email, "Kedai Kek")
        api = create_client(backend.url, backend.anon_key)
        api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
        product = (
            api.table("products")
            .insert({"sku": "KEK", "name": "Kek Batik", "sale_price": "4.00"})
            .execute()
            .data[0]
        )
        api.rpc(
            "adjust_stock",
            {"product_id": product["id"], "counted_quantity": 20, "reason": "count"},
        ).execute()
        app.navigate("Products")
        app.navigate("Sell")
        expect_stock(app, "20")
        _sell(api, product["id"], 1)
        expect_stock(app, "19")  # live before the restart

        # A mark in the page: a reload would wipe it.
        app.page.evaluate("window.__sameTab = true")

        backend.stop()
        backend.start()  # same port, same data dir and database
        # Made at once, likely before the app's feed is back: the app must catch up by itself.
        _sell(api, product["id"], 2)
        expect(app.page.get_by_role("group", name="17 in stock", exact=True)).to_be_visible(
            timeout=RECONNECT_MS
        )
        # Reconnected, the feed is live again: the next sale shows within the usual time.
        _sell(api, product["id"], 3)
        expect_stock(app, "14")
        assert app.page.evaluate("window.__sameTab === true")
    finally:
        device.stop()
