"""The subscription in Settings, against a server whose ToyyibPay is the local fake: the plan
and its limits; Upgrade creates a bill for the Pro plan (one month) and opens its payment page;
ToyyibPay's refusal is shown; once ToyyibPay's callback settles the bill, Settings shows Pro,
and Free again once the paid time is over."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from app.accounts import PASSWORD, open_signed_up
from app.driver import TABLET
from harness import ServerProcess
from payments.fake_toyyibpay import FakeToyyibPay, callback_form
from payments.fixtures import payments_server, running_fake
from playwright.sync_api import Browser, expect
from supabase import create_client

SECRET = "toyyib-secret-for-the-app-test"
CATEGORY = "appcat01"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeToyyibPay]:
    with running_fake() as server:
        yield server


@pytest.fixture(scope="module")
def pay_server(
    owner_dsn: str, fake: FakeToyyibPay, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with payments_server(
        owner_dsn,
        fake,
        tmp_path_factory.mktemp("app-subscription"),
        queue="app-subscription-test",
        PB_TOYYIBPAY_SECRET_KEY=SECRET,
        PB_TOYYIBPAY_CATEGORY_CODE=CATEGORY,
    ) as server:
        yield server


def _paid_callback(server: ServerProcess, payment_id: str, bill_code: str) -> None:
    """ToyyibPay's callback for a successful payment, signed as it signs them."""
    form = callback_form(SECRET, payment_id, bill_code, "1", "29.00", refno="TP2611300042")
    assert httpx.post(f"{server.url}/webhooks/toyyibpay", data=form).status_code == 200


def test_upgrade_opens_the_bill_for_pro_and_the_paid_plan_shows(
    pay_server: ServerProcess, fake: FakeToyyibPay, browser: Browser
) -> None:
    email = f"sub-{uuid.uuid4().hex[:10]}@example.com"
    app = open_signed_up(browser, pay_server, email, "Kuih Mak Minah", {**TABLET, "height": 2200})
    api = create_client(pay_server.url, pay_server.anon_key)
    api.auth.sign_in_with_password({"email": email, "password": PASSWORD})

    app.navigate("Settings")
    app.expect_text("Plan: Free")
    app.expect_text("Active products: 0 / 50")
    app.expect_text("Pro: RM 29.00 a month")

    # ToyyibPay refusing the bill: its message, no payment page, nothing kept.
    fake.error = "[KEY-DID-NOT-EXIST-OR-USER-IS-NOT-ACTIVE]"
    pages_before = len(app.page.context.pages)
    app.click("Upgrade")
    app.expect_text(re.compile(r"KEY-DID-NOT-EXIST"))
    assert len(app.page.context.pages) == pages_before
    assert api.table("subscription_payments").select("id").execute().data == []
    fake.error = None

    with app.page.context.expect_page() as opened:
        app.click("Upgrade")
    app.expect_text("The payment page is open: the plan changes once it is paid")
    bill = fake.bills()[-1]
    assert bill["billName"] == "PocketBizz pro" and bill["billAmount"] == "2900"
    assert bill["categoryCode"] == CATEGORY
    [payment] = api.table("subscription_payments").select("*").execute().data
    assert (payment["plan"], payment["months"], payment["status"]) == ("pro", 1, "pending")
    assert bill["billExternalReferenceNo"] == payment["id"]
    assert opened.value.url == f"{fake.url}/{payment['bill_code']}"  # the bill's payment page
    # Back to the app's tab, as the owner would after paying: a tab in the background gets
    # no animation frames, and every wait on it (actionability, settling) drags.
    app.page.bring_to_front()

    # Paid (ToyyibPay's signed callback): Settings shows the plan, until when, no limits.
    _paid_callback(pay_server, payment["id"], payment["bill_code"])
    expires = api.table("users").select("subscription_expires_at").single().execute().data
    app.navigate("Sell")
    app.navigate("Settings")
    app.expect_text("Plan: Pro")
    paid_until = datetime.fromisoformat(expires["subscription_expires_at"]).astimezone()
    app.expect_text(f"Paid until {paid_until:%d/%m/%Y}")
    app.expect_text("Active products: 0 / unlimited")
    expect(app.button("Upgrade")).to_have_count(0)

    # Past its date the plan is Free again (the server's limits say so too), and says when
    # it ended; Upgrade is back.
    ended = "2026-01-31T16:00:00+00:00"
    operator = create_client(pay_server.url, pay_server.service_key)
    operator.table("users").update({"subscription_expires_at": ended}).eq("email", email).execute()
    app.navigate("Sell")
    app.navigate("Settings")
    app.expect_text("Plan: Free")
    app.expect_text(
        f"Your paid plan ended on {datetime.fromisoformat(ended).astimezone():%d/%m/%Y}"
    )
    app.expect_text("Active products: 0 / 50")
    expect(app.button("Upgrade")).to_be_visible()
