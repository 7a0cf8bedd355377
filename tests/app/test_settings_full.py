"""Settings in the browser, each value checked through the API where the backend keeps it:
business profile and address, the logo (uploaded to the public `logos` bucket under the
owner's folder), receipt footer, SST registration (off by default), cash rounding, the sale
number format (a bad one refused by the server, its rule shown), the receipt printer — then a
sale that uses them: its number in the new format, SST added, no rounding."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
from app.accounts import PASSWORD, open_signed_up
from app.driver import TABLET
from app.test_products_photos import choose_file, png
from playwright.sync_api import Browser, expect
from supabase import create_client


def test_settings_are_kept_and_used_by_the_next_sale(
    server, browser: Browser, tmp_path: Path
) -> None:
    email = f"settings-{uuid.uuid4().hex[:10]}@example.com"
    # Tall enough for the whole Settings form: a field scrolled into view while being tapped
    # can take the tap meant for it to the field below (Flutter moves it after the click).
    app = open_signed_up(browser, server, email, "Kedai Runcit Ah Meng", {**TABLET, "height": 2200})
    api = create_client(server.url, server.anon_key)
    session = api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert session.user is not None
    uid = session.user.id

    def profile() -> dict:
        return api.table("business_profiles").select("*").single().execute().data

    assert profile()["sst_enabled"] is False  # off by default
    app.navigate("Settings")
    expect(app.textbox("SST registration number")).to_have_count(0)  # shown when registered

    for field, value in [
        ("Phone", "03-1234 5678"),
        ("Address", "12 Jalan Besar"),
        ("Postcode", "43000"),
        ("City", "Kajang"),
        ("Receipt footer", "Barang yang dibeli tidak boleh ditukar"),
    ]:
        app.type_into(field, value)
    app.click("SST registered", role="switch")
    app.type_into("SST registration number", "W10-1808-32000001")
    app.type_into("SST rate (%)", "8")
    app.click("Rounding", role="switch")  # on by default: now off
    app.type_into("Printer address", "192.168.1.50")
    app.type_into("Printer port", "70000")
    app.click("80 mm", role="radio")
    # A month without a year repeats: the server refuses it, naming the rule.
    app.type_into("Sale number format", "AM-{MM}-{SEQ}")
    app.click("Save")
    app.expect_text("A port from 1 to 65535")
    assert profile()["sst_enabled"] is False  # nothing was sent
    app.type_into("Printer port", "9100")
    app.click("Save")
    app.expect_text("{MM} needs {YYYY} or {YY} too")
    app.expect_text(re.compile("sale_number_format_month_needs_year"))  # the server's words
    assert profile()["sst_enabled"] is False  # the row was not changed
    app.type_into("Sale number format", "AM{YY}{MM}-{SEQ}")
    app.click("Save")
    app.expect_text("Saved")

    saved = profile()
    assert saved["phone"] == "03-1234 5678"
    assert saved["address"] == {"line1": "12 Jalan Besar", "postcode": "43000", "city": "Kajang"}
    assert saved["sst_enabled"] is True and saved["tax_number"] == "W10-1808-32000001"
    assert Decimal(str(saved["sst_rate"])) == 8
    assert saved["prices_include_tax"] is False and saved["cash_rounding"] is False
    assert saved["sale_number_format"] == "AM{YY}{MM}-{SEQ}"
    assert saved["settings"]["receipt_footer"] == "Barang yang dibeli tidak boleh ditukar"
    assert saved["settings"]["printer"] == {"host": "192.168.1.50", "port": 9100, "paper_mm": 80}

    # The logo: into `logos` under the owner's folder, shown from its public URL.
    logo = tmp_path / "logo.png"
    logo.write_bytes(png(16, 16, (20, 120, 90)))
    with app.page.expect_response(re.compile(r"/storage/v1/object/public/logos/")) as shown:
        choose_file(app, "Upload logo", logo)
    assert shown.value.status == 200
    expect(app.page.get_by_role("img", name="Logo")).to_be_visible()
    url = profile()["logo_url"]
    assert url.startswith(f"{server.url}/storage/v1/object/public/logos/{uid}/logo/")
    assert httpx.get(url).content == logo.read_bytes()
    app.click("Remove logo")
    expect(app.page.get_by_role("img", name="Logo")).to_have_count(0)
    assert profile()["logo_url"] is None
    assert httpx.get(url).status_code in (400, 404)  # the file went with it

    # The settings come back when the screen opens again.
    app.navigate("Sell")
    app.navigate("Settings")
    expect(app.page.get_by_role("switch", name="SST registered")).to_be_checked()
    expect(app.page.get_by_role("switch", name="Rounding")).not_to_be_checked()
    expect(app.page.get_by_role("radio", name="80 mm")).to_be_checked()
    # Flutter puts a field's text in the page while it has the focus.
    for field, value in [("City", "Kajang"), ("Sale number format", "AM{YY}{MM}-{SEQ}")]:
        app.tap(app.textbox(field))
        expect(app.textbox(field)).to_have_value(value)

    # A cash sale now: numbered in the new format, SST 8 % added, not rounded.
    api.table("products").insert(
        {"name": "Gula", "sku": "G1", "sale_price": "3.33", "negative_stock_policy": "allow"}
    ).execute()
    app.navigate("Products")
    app.navigate("Sell")
    app.tap(app.button("Gula"))
    app.click("Charge")
    app.click("Cash")
    app.type_into("Cash received", "10")
    app.expect_text("SST")
    app.expect_text("RM 0.27")  # 8 % of 3.33
    app.expect_text("RM 3.60")
    app.click("Complete sale")
    number = app.expect_text(re.compile(r"^Sale AM\d{4}-\d{6}$")).inner_text()
    sale = (
        api.table("sales")
        .select("tax_amount, rounding_amount, final_amount")
        .eq("sale_number", number.strip().removeprefix("Sale "))
        .single()
        .execute()
        .data
    )
    assert [Decimal(str(sale[k])) for k in ("tax_amount", "rounding_amount", "final_amount")] == [
        Decimal("0.27"),
        Decimal("0"),
        Decimal("3.60"),
    ]
