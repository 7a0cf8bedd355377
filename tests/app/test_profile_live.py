"""Settings changed on another device reach an open app: the business profile is followed
live (Realtime), so a new language re-labels the navigation at once, and a cart in progress
on the counter is kept."""

from __future__ import annotations

import uuid

from app.accounts import PASSWORD, open_signed_up
from playwright.sync_api import Browser, expect
from supabase import create_client


def test_a_language_chosen_on_another_device_relabels_an_open_app(server, browser: Browser) -> None:
    email = f"live-{uuid.uuid4().hex[:10]}@example.com"
    app = open_signed_up(browser, server, email, "Kedai Kopi Hang")
    other = create_client(server.url, server.anon_key)  # the owner's other device
    other.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    other.table("products").insert({"sku": "K1", "name": "Kopi O", "sale_price": "2.00"}).execute()
    app.tap(app.button("Kopi O"))  # the counter follows the catalogue live, too
    in_cart = app.button("+ Kopi O")  # the cart line's "one more"
    expect(in_cart).to_be_visible()

    def choose(language: str) -> None:
        profile = other.table("business_profiles").select("id, settings").single().execute()
        settings = {**(profile.data["settings"] or {}), "language": language}
        other.table("business_profiles").update({"settings": settings}).eq(
            "id", profile.data["id"]
        ).execute()

    choose("ms")
    expect(app.page.get_by_role("tab", name="Jual", exact=True)).to_be_visible()
    expect(app.page.get_by_role("tab", name="Tetapan", exact=True)).to_be_visible()
    expect(app.page.get_by_role("tab", name="Sell", exact=True)).to_have_count(0)
    expect(in_cart).to_be_visible()  # the cart in progress is still there

    choose("en")
    expect(app.page.get_by_role("tab", name="Sell", exact=True)).to_be_visible()
    expect(in_cart).to_be_visible()
