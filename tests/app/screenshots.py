"""Screenshots of the app's main screens at phone size, written to docs/screenshots/.

Run: .venv/bin/python tests/app/screenshots.py  (the `make screenshots` target runs this).
It starts its own embedded PostgreSQL and `pocketbizz serve`, signs up a demo bakery, adds
products, rings up a sale and photographs each screen in Debian's Chromium.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "src")]

import pgserver  # noqa: E402
from app.driver import CHROMIUM, PHONE, AppPage  # noqa: E402
from harness import ServerProcess  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from supabase import create_client  # noqa: E402

from pocketbizz.db import apply_migrations  # noqa: E402

OUT = REPO / "docs" / "screenshots"
PRODUCTS = [
    ("Roti Canai", "1.50", 40),
    ("Kuih Lapis", "1.20", 25),
    ("Kaya Puff", "2.80", 3),
    ("Teh Tarik", "2.50", 60),
    ("Nasi Lemak", "4.50", 18),
    ("Karipap", "1.00", 2),
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # the embedded PostgreSQL runs as its own user
        pg = pgserver.get_server(root / "pg", cleanup_mode="delete")
        dsn = str(pg.get_uri())
        asyncio.run(apply_migrations(dsn, authenticator_password="screenshots"))
        (root / "data").mkdir()
        server = ServerProcess(
            dsn, root / "data", env_overrides={"PB_AUTHENTICATOR_PASSWORD": "screenshots"}
        )
        server.start()
        try:
            shoot(server)
        finally:
            server.stop()
            pg.cleanup()


def shoot(server: ServerProcess) -> None:
    email, password = f"demo-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        app = AppPage.open(browser, server.url + "/app/", PHONE)
        app.textbox("Email").wait_for()
        app.page.screenshot(path=OUT / "sign-in.png")
        app.type_into("Email", email)
        app.type_into("Password", password)
        app.click("Create account")
        app.textbox("Business name").wait_for()
        app.type_into("Business name", "Kedai Roti Aminah")
        app.page.screenshot(path=OUT / "business-setup.png")
        app.click("Continue")
        app.destination("Sell").wait_for()

        api = create_client(server.url, server.anon_key)
        api.auth.sign_in_with_password({"email": email, "password": password})
        for i, (name, price, stock) in enumerate(PRODUCTS):
            row = (
                api.table("products")
                .insert(
                    {
                        "sku": f"SKU-{i + 1}",
                        "name": name,
                        "sale_price": price,
                        "reorder_level": 5,
                        "cost_price": str(round(float(price) * 0.4, 2)),
                    }
                )
                .execute()
                .data[0]
            )
            api.rpc(
                "adjust_stock",
                {"product_id": row["id"], "counted_quantity": stock, "reason": "opening stock"},
            ).execute()
            if i < 4:
                api.rpc(
                    "create_sale",
                    {
                        "items": [{"product_id": row["id"], "quantity": i + 1}],
                        "payment_method": "cash" if i % 2 else "ewallet",
                    },
                ).execute()

        app.navigate("Products")
        app.page.screenshot(path=OUT / "products.png")
        app.navigate("Sell")
        app.tap(app.button("Roti Canai"))
        app.tap(app.button("Roti Canai"))
        app.tap(app.button("Teh Tarik"))
        app.page.screenshot(path=OUT / "sell.png")
        app.click("Charge")
        app.type_into("Cash received", "10")
        time.sleep(0.5)
        app.page.screenshot(path=OUT / "sell-cash.png")
        app.click("Complete sale")
        app.expect_text("New sale")
        app.page.screenshot(path=OUT / "sale-done.png")
        app.navigate("Sales")
        app.page.screenshot(path=OUT / "sales.png")
        app.navigate("Dashboard")
        time.sleep(1)
        app.page.screenshot(path=OUT / "dashboard.png")
        app.navigate("Settings")
        app.page.screenshot(path=OUT / "settings.png")
        browser.close()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()
