"""Signing out while the server cannot be reached signs this device out all the same: the
sign-in form, and the sign-in no longer kept on the device (a reload or a restart asks for the
password), the sales waiting in the outbox kept for the next sign-in."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from app.accounts import PASSWORD, kept_session_key
from app.servers import AppProcess, own_server
from app.test_offline_start import _account, _reopen, _sell_by_card, open_device
from harness import ServerProcess
from playwright.sync_api import Browser, expect


@pytest.fixture
def backend(owner_dsn: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with own_server(owner_dsn, tmp_path) as proc:
        yield proc


def test_signing_out_offline_forgets_the_kept_sign_in(
    backend: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    device = AppProcess(backend.url, tmp_path)
    device.start()
    try:
        email = f"signout-{uuid.uuid4().hex[:10]}@example.com"
        api, kept = _account(backend, email)
        app = open_device(browser, device, backend, kept)
        backend.stop()
        _sell_by_card(app, "Pisang Goreng")
        app.expect_text("Offline — 1 sales waiting")

        app.navigate("Settings")
        app.click("Sign out")
        expect(app.textbox("Email")).to_be_visible()
        key = kept_session_key(backend.url)
        assert app.page.evaluate("key => localStorage.getItem(key)", key) is None

        _reopen(app)  # a reload: still signed out, not the counter from the kept catalogue
        expect(app.textbox("Email")).to_be_visible()
        expect(app.button("Pisang Goreng")).to_have_count(0)

        # The sale waited on the device for the user's next sign-in, and is sent then.
        backend.start()
        app.type_into("Email", email)
        app.type_into("Password", PASSWORD)
        app.click("Sign in")
        app.destination("Sell").wait_for()
        expect(app.page.get_by_text(re.compile("sales waiting"))).to_have_count(0, timeout=30_000)
        api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
        sales = api.table("sales").select("sale_items(product_name)").execute().data
        assert [[i["product_name"] for i in s["sale_items"]] for s in sales] == [["Pisang Goreng"]]
    finally:
        device.stop()
