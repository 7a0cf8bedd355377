"""Line discounts at the counter (RM or %), with the sale discount, SST and cash rounding:
what the Sell screen shows is what create_sale records.

The first test holds the app's preview (money.amount_due) against the server's own arithmetic
for many carts, through the real API; the second drives the screen in a real browser."""

from __future__ import annotations

import random
import re
import uuid
from decimal import Decimal
from typing import Any

from app.accounts import PASSWORD, open_signed_up
from app.driver import TABLET
from playwright.sync_api import Browser, expect
from supabase import Client, create_client

from pocketbizz.app.money import Line, amount_due, line_discount


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


def _products(api: Client, specs: list[tuple[str, str, str | None]]) -> list[dict[str, Any]]:
    rows = [
        {"name": name, "sku": f"SKU-{i}", "sale_price": price, "tax_rate": tax_rate}
        for i, (name, price, tax_rate) in enumerate(specs)
    ]
    products: list[dict[str, Any]] = api.table("products").insert(rows).execute().data
    for product in products:
        api.rpc(
            "adjust_stock",
            {"product_id": product["id"], "counted_quantity": 1000, "reason": "opening stock"},
        ).execute()
    return products


def test_the_preview_equals_create_sale_for_many_carts(make_user: Any) -> None:
    user = make_user()
    api: Client = user.client
    products = _products(
        api,
        [
            ("Roti Canai", "1.55", None),
            ("Teh Tarik", "2.30", None),
            ("Nasi Lemak", "4.99", "8.00"),  # its own SST rate
            ("Kuih", "0.65", "0.00"),  # zero-rated
            ("Kek", "37.40", None),
        ],
    )
    rng = random.Random(9)
    profiles = [
        {"sst_enabled": False, "prices_include_tax": False, "cash_rounding": True},
        {"sst_enabled": True, "sst_rate": "6", "prices_include_tax": False, "cash_rounding": True},
        {"sst_enabled": True, "sst_rate": "6", "prices_include_tax": True, "cash_rounding": False},
    ]
    checked = 0
    for profile in profiles:
        api.table("business_profiles").update(profile).eq("business_owner_id", user.id).execute()
        for _ in range(12):
            lines: list[Line] = []
            for product in rng.sample(products, rng.randint(1, len(products))):
                quantity = rng.randint(1, 7)
                gross = (_money(product["sale_price"]) * quantity).quantize(Decimal("0.01"))
                percent = rng.random() < 0.5
                value = (
                    Decimal(rng.randint(0, 3000)) / 100
                    if percent
                    else (gross * Decimal(rng.randint(0, 60)) / 100).quantize(Decimal("0.01"))
                )
                rate = Decimal("0")
                if profile["sst_enabled"]:
                    own = product["tax_rate"]
                    rate = _money(own) if own is not None else Decimal(str(profile["sst_rate"]))
                lines.append(
                    Line(
                        product["id"],
                        product["name"],
                        _money(product["sale_price"]),
                        quantity,
                        discount=line_discount(gross, value, percent=percent),
                        tax_rate=rate,
                    )
                )
            subtotal = sum((line.subtotal for line in lines), Decimal("0"))
            discount = (subtotal * Decimal(rng.randint(0, 40)) / 100).quantize(Decimal("0.01"))
            method = rng.choice(["cash", "card"])
            preview = amount_due(
                lines,
                cash=method == "cash",
                cash_rounding=bool(profile["cash_rounding"]),
                discount=discount,
                prices_include_tax=bool(profile["prices_include_tax"]),
            )
            sale = (
                api.rpc(
                    "create_sale",
                    {
                        "items": [
                            {
                                "product_id": line.product_id,
                                "quantity": line.quantity,
                                "discount_amount": str(line.discount),
                            }
                            for line in lines
                        ],
                        "payment_method": method,
                        "discount_amount": str(discount),
                    },
                )
                .execute()
                .data
            )
            assert (
                _money(sale["total_amount"]),
                sum((_money(i["discount_amount"]) for i in sale["items"]), Decimal("0")),
                [_money(i["subtotal"]) for i in sale["items"]],
                _money(sale["tax_amount"]),
                _money(sale["rounding_amount"]),
                _money(sale["final_amount"]),
            ) == (
                preview.total,
                preview.items_discount,
                [line.subtotal for line in lines],
                preview.tax,
                preview.rounding,
                preview.due,
            ), (profile, lines, discount, method)
            checked += 1
    assert checked == 36


def test_line_discounts_on_screen_are_the_sale_recorded(server: Any, browser: Browser) -> None:
    email = f"disc-{uuid.uuid4().hex[:10]}@example.com"
    app = open_signed_up(browser, server, email, "Warung Diskaun", TABLET)
    api = create_client(server.url, server.anon_key)
    api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    _products(api, [("Nasi Lemak", "4.50", None), ("Teh Tarik", "2.30", None)])
    app.navigate("Products")  # the Sell screen reads the catalogue when it opens
    app.navigate("Sell")

    nasi, teh = app.button("Nasi Lemak"), app.button("Teh Tarik")
    for tile, times in ((nasi, 2), (teh, 3)):
        for _ in range(times):
            app.tap(tile)
    # 2 × 4.50 = 9.00 less RM 0.50 → 8.50; 3 × 2.30 = 6.90 less 10 % (0.69) → 6.21.
    app.click("Line discount: Nasi Lemak")
    app.type_into("Line discount", "10")
    app.click("Apply")
    app.expect_text("The discount is larger than the line")  # 10 > 9.00: refused
    app.type_into("Line discount", "0.50")
    app.click("Apply")
    app.click("Line discount: Teh Tarik")
    app.click("%")
    app.type_into("Line discount", "150")
    app.click("Apply")
    app.expect_text("Enter a percentage from 0 to 100")
    app.type_into("Line discount", "10")
    app.click("Apply")
    app.expect_text("Discount 10%")
    app.expect_text("-RM 0.69")
    app.expect_text("RM 6.21")
    app.expect_text("RM 8.50")
    app.expect_text("Line discounts")
    app.expect_text("-RM 1.19")

    app.click("Charge")
    app.click("Cash")
    app.type_into("Discount", "1.00")
    app.type_into("Cash received", "20")
    # Items 15.90, line discounts -1.19, subtotal 14.71, discount -1.00 → 13.71, rounded
    # down to 13.70 for cash; change 6.30.
    shown = {
        label: app.page.get_by_text(label, exact=True).first
        for label in ("Items", "Line discounts", "Subtotal", "Rounding", "Total", "Change")
    }
    for locator in shown.values():
        expect(locator).to_be_visible()
    for text in ("RM 15.90", "-RM 1.19", "RM 14.71", "-RM 1.00", "-RM 0.01", "RM 13.70"):
        app.expect_text(text)
    app.expect_text("RM 6.30")
    app.click("Complete sale")
    number = app.expect_text(re.compile(r"^Sale INV-")).inner_text().strip().removeprefix("Sale ")

    sale = (
        api.table("sales")
        .select(
            "total_amount, items_discount_amount, discount_amount, rounding_amount, "
            "final_amount, sale_items(product_name, quantity, discount_amount, subtotal)"
        )
        .eq("sale_number", number)
        .single()
        .execute()
        .data
    )
    assert (
        _money(sale["total_amount"]),
        _money(sale["items_discount_amount"]),
        _money(sale["discount_amount"]),
        _money(sale["rounding_amount"]),
        _money(sale["final_amount"]),
    ) == (Decimal("14.71"), Decimal("1.19"), Decimal("1.00"), Decimal("-0.01"), Decimal("13.70"))
    assert sorted(
        (
            i["product_name"],
            _money(i["quantity"]),
            _money(i["discount_amount"]),
            _money(i["subtotal"]),
        )
        for i in sale["sale_items"]
    ) == [
        ("Nasi Lemak", Decimal("2"), Decimal("0.50"), Decimal("8.50")),
        ("Teh Tarik", Decimal("3"), Decimal("0.69"), Decimal("6.21")),
    ]
