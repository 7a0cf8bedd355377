"""Signing out while the server cannot be reached signs this device out all the same: the
sign-in form, and the sign-in no longer kept on the device (a reload or a restart asks for the
password), the sales waiting in the outbox kept for the next sign-in."""

from __future__ import annotations

import re
from pathlib import Path

from app.accounts import PASSWORD, kept_session_key
from app.devices import device_with_user, reopen, sell_by_card, sign_in, sign_out
from harness import ServerProcess
from playwright.sync_api import Browser, expect


def test_signing_out_offline_forgets_the_kept_sign_in(
    backend: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    with device_with_user(backend, browser, tmp_path, "signout") as (_, user):
        api, app = user.api, user.app
        backend.stop()
        sell_by_card(app, "Pisang Goreng")
        app.expect_text("Offline — 1 sales waiting")

        sign_out(app)
        key = kept_session_key(backend.url)
        assert app.page.evaluate("key => localStorage.getItem(key)", key) is None

        reopen(app)  # a reload: still signed out, not the counter from the kept catalogue
        expect(app.textbox("Email")).to_be_visible()
        expect(app.button("Pisang Goreng")).to_have_count(0)

        # The sale waited on the device for the user's next sign-in, and is sent then.
        backend.start()
        sign_in(app, user.email)
        expect(app.page.get_by_text(re.compile("sales waiting"))).to_have_count(0, timeout=30_000)
        api.auth.sign_in_with_password({"email": user.email, "password": PASSWORD})
        sales = api.table("sales").select("sale_items(product_name)").execute().data
        assert [[i["product_name"] for i in s["sale_items"]] for s in sales] == [["Pisang Goreng"]]
