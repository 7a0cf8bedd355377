"""Production in the browser: a recipe defined on the Stock screen (ingredients with their
quantity per unit), N made from it — the ingredients go down, the product up — and each
product's movement history shows it; checked through the API."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

from app.accounts import PASSWORD, open_signed_up
from app.driver import TABLET, AppPage
from playwright.sync_api import Browser, expect
from supabase import create_client


def choose_ingredient(app: AppPage, name: str) -> None:
    """Open the ingredient list and pick one (the open menu's entries are buttons)."""
    app.tap(app.textbox("Ingredient"))
    app.click(name)


def test_recipe_production_and_history(server, browser: Browser) -> None:
    email = f"make-{uuid.uuid4().hex[:10]}@example.com"
    app = open_signed_up(browser, server, email, "Nasi Lemak Mak Jah", TABLET)
    api = create_client(server.url, server.anon_key)
    api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    rows = (
        api.table("products")
        .insert(
            [
                {"sku": "SANTAN", "name": "Santan", "unit": "ml", "sale_price": "0"},
                {"sku": "BERAS", "name": "Beras", "unit": "g", "sale_price": "0"},
                {"sku": "NL", "name": "Nasi Lemak", "unit": "pcs", "sale_price": "5.00"},
            ]
        )
        .execute()
        .data
    )
    santan, beras, nasi = rows
    for ingredient, quantity, cost in [(santan, 1000, "0.02"), (beras, 2000, "0.01")]:
        api.rpc(
            "record_purchase",
            {"product_id": ingredient["id"], "quantity": quantity, "unit_cost": cost},
        ).execute()

    app.navigate("Stock")
    app.tap(app.page.get_by_role("button", name=re.compile(r"^Nasi Lemak")))
    app.expect_text("No ingredients yet: add what one unit uses")
    # Santan first at 40, then corrected to 50 (one row per ingredient), then Beras 100.
    for name, per_unit in [("Santan", "40"), ("Santan", "50"), ("Beras", "100")]:
        choose_ingredient(app, name)
        app.type_into("Quantity per unit", per_unit)
        app.click("Add ingredient")
        app.expect_text(f"{name} × {per_unit}")
    expect(app.page.get_by_text("Santan × 40")).to_have_count(0)
    recipe = (
        api.table("recipe_items")
        .select("ingredient_id, quantity")
        .eq("product_id", nasi["id"])
        .execute()
        .data
    )
    assert sorted((r["ingredient_id"], Decimal(str(r["quantity"]))) for r in recipe) == sorted(
        [(santan["id"], Decimal(50)), (beras["id"], Decimal(100))]
    )

    app.type_into("Quantity to make", "10")
    app.click("Produce")
    app.expect_text("10 in stock")
    # The recipe cost per unit: 50 × RM 0.02 + 100 × RM 0.01.
    app.expect_text(re.compile(r"production  \+10  @ RM 2\.00"))

    stock = {
        p["id"]: Decimal(str(p["current_stock"]))
        for p in api.table("products").select("id, current_stock").execute().data
    }
    assert stock == {santan["id"]: 500, beras["id"]: 1000, nasi["id"]: 10}
    produced = (
        api.table("stock_movements")
        .select("product_id, movement_type, quantity")
        .eq("reference_type", "production")
        .execute()
        .data
    )
    assert sorted(
        (m["product_id"], m["movement_type"], Decimal(str(m["quantity"]))) for m in produced
    ) == sorted(
        [
            (santan["id"], "out", Decimal(500)),
            (beras["id"], "out", Decimal(1000)),
            (nasi["id"], "in", Decimal(10)),
        ]
    )

    # The ingredient's own history shows what production took, under its purchase.
    app.click("Back")
    app.tap(app.page.get_by_role("button", name=re.compile(r"^Santan")))
    app.expect_text("500 in stock")
    app.expect_text(re.compile(r"production  -500"))
    app.expect_text(re.compile(r"purchase  \+1000  @ RM 0\.02"))

    # Removing an ingredient from the recipe.
    app.click("Back")
    app.tap(app.page.get_by_role("button", name=re.compile(r"^Nasi Lemak")))
    app.click("Remove Beras")
    expect(app.page.get_by_text("Beras × 100")).to_have_count(0)
    left = api.table("recipe_items").select("ingredient_id").execute().data
    assert left == [{"ingredient_id": santan["id"]}]
