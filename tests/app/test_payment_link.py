"""Payment links at the counter, against a server whose ToyyibPay is the local fake: Sell offers
`Payment link` only once the business has its own ToyyibPay account (`payment-settings`);
completing such a sale records it unpaid (`toyyibpay`, `pending`), and the server's bill for the
sale's amount is shown with Copy and a WhatsApp share to the customer."""

from __future__ import annotations

import re
import urllib.parse
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from app.accounts import PASSWORD, open_signed_up
from app.driver import TABLET
from harness import ServerProcess
from payments.fake_toyyibpay import FakeToyyibPay
from payments.fixtures import payments_server, running_fake
from playwright.sync_api import Browser, Route, expect
from supabase import create_client

SHOP_KEY = "shop-own-toyyibpay-key-1234"
SHOP_CATEGORY = "shopcat9"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeToyyibPay]:
    with running_fake() as server:
        yield server


@pytest.fixture(scope="module")
def link_server(
    owner_dsn: str, fake: FakeToyyibPay, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with payments_server(
        owner_dsn,
        fake,
        tmp_path_factory.mktemp("app-payment-link"),
        queue="app-payment-link-test",
        PB_SECRETS_KEY="server-secrets-key-for-the-app-link-test",
    ) as server:
        yield server


def test_a_sale_paid_by_link_is_recorded_unpaid_and_its_link_shared(
    link_server: ServerProcess, fake: FakeToyyibPay, browser: Browser
) -> None:
    email = f"link-{uuid.uuid4().hex[:10]}@example.com"
    app = open_signed_up(browser, link_server, email, "Kek Lapis Sarawak", TABLET)
    context = app.page.context
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    shared: list[str] = []

    def whatsapp(route: Route) -> None:  # wa.me stands in for WhatsApp, offline
        shared.append(route.request.url)
        route.fulfill(body="WhatsApp")

    context.route(re.compile(r"^https://wa\.me/"), whatsapp)
    api = create_client(link_server.url, link_server.anon_key)
    api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    api.table("products").insert(
        {"name": "Kek Lapis", "sku": "KL", "sale_price": "45.50", "negative_stock_policy": "allow"}
    ).execute()
    api.table("customers").insert({"name": "Puan Siti", "phone": "+60 13-888 9999"}).execute()
    app.navigate("Products")
    app.navigate("Sell")

    # No ToyyibPay account of its own yet: no payment link.
    app.tap(app.button("Kek Lapis"))
    app.click("Charge")
    expect(app.button("Card")).to_be_visible()
    expect(app.button("Payment link")).to_have_count(0)

    api.functions.invoke(
        "payment-settings",
        {"method": "PUT", "body": {"secret_key": SHOP_KEY, "category_code": SHOP_CATEGORY}},
    )
    app.tap(app.button("Kek Lapis"))  # back to the cart: 2 × 45.50
    app.click("Charge")  # the settings are read again for each sale
    app.click("Payment link")
    expect(app.textbox("Cash received")).to_have_count(0)  # nothing to count at the till
    app.tap(app.page.get_by_role("button", name=re.compile(r"^Customer: ")))
    app.tap(app.page.get_by_role("button", name=re.compile(r"^Puan Siti")))
    app.click("Complete sale")
    number = app.expect_text(re.compile(r"^Sale INV-")).inner_text().strip().removeprefix("Sale ")
    app.expect_text("Payment link for RM 91.00")

    sale: dict[str, Any] = (
        api.table("sales")
        .select("id, payment_method, payment_status, final_amount")
        .eq("sale_number", number)
        .single()
        .execute()
        .data
    )
    assert (sale["payment_method"], sale["payment_status"]) == ("toyyibpay", "pending")
    assert Decimal(str(sale["final_amount"])) == Decimal("91.00")
    bill = fake.bills()[-1]
    assert (bill["userSecretKey"], bill["categoryCode"]) == (SHOP_KEY, SHOP_CATEGORY)
    assert bill["billAmount"] == "9100"
    [link] = api.table("payment_links").select("*").eq("sale_id", sale["id"]).execute().data
    url = f"{fake.url}/{link['bill_code']}"
    app.expect_text(url)

    app.click("Copy")
    app.expect_text("Copied")
    assert app.page.evaluate("navigator.clipboard.readText()") == url

    with context.expect_page() as opened:
        app.click("WhatsApp")
    opened.value.wait_for_load_state()
    [sent] = shared
    assert sent.startswith("https://wa.me/60138889999?text=")
    text = urllib.parse.unquote(sent.split("?text=", 1)[1])
    assert text == f"Kek Lapis Sarawak {number}: RM 91.00\n{url}"
