"""Products in the browser: a product added with a photo chosen in the browser's file chooser
(uploaded to `product-images` under the owner's folder and shown as its thumbnail), then
every field edited, the photo replaced, then removed — each checked through the API."""

from __future__ import annotations

import io
import re
import struct
import time
import uuid
import zlib
from decimal import Decimal
from pathlib import Path

import httpx
from app.accounts import PASSWORD, open_signed_up
from app.driver import TABLET, AppPage
from PIL import Image
from playwright.sync_api import Browser, Locator, expect
from supabase import create_client


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real, decodable PNG of one colour (the browser must be able to draw it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def _shows_blue(tile: Locator, timeout_s: float = 10.0) -> bool:
    """Whether the control's pixels include the test photo's blue (the image loads after the
    tile is drawn, so look again until it shows or the time is up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        shot = Image.open(io.BytesIO(tile.screenshot())).convert("RGB")
        if any(r < 80 and g < 80 and b > 160 for r, g, b in shot.getdata()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)


def choose_file(app: AppPage, button: str, path: Path) -> None:
    """Tap the photo button and answer the browser's file chooser, as a person would."""
    since = app.page.evaluate("performance.now()")
    with app.page.expect_file_chooser() as chooser:
        app.button(button).click()
    chooser.value.set_files(str(path))
    app.settle(since)  # the file (picked with its data) has gone to the app, and its answer back


def test_product_photo_add_edit_replace_remove(server, browser: Browser, tmp_path: Path) -> None:
    email = f"photo-{uuid.uuid4().hex[:10]}@example.com"
    app = open_signed_up(browser, server, email, "Kedai Kopi", TABLET)
    api = create_client(server.url, server.anon_key)
    session = api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    assert session.user is not None
    uid = session.user.id
    red, blue = tmp_path / "kopi.png", tmp_path / "kopi-baru.png"
    red.write_bytes(png(8, 8, (200, 30, 30)))
    blue.write_bytes(png(8, 8, (30, 30, 200)))
    not_an_image = tmp_path / "harga.txt"
    not_an_image.write_text("Kopi O RM 2.00")

    # Add with a photo: the upload waits for Save, like the other fields.
    app.navigate("Products")
    app.click("Add product")
    for field, value in [("Name", "Kopi O"), ("Price", "2.00"), ("Stock", "10"), ("SKU", "KO")]:
        app.type_into(field, value)
    choose_file(app, "Add photo", not_an_image)
    app.expect_text("Choose a PNG, JPEG, WebP or GIF image")
    choose_file(app, "Add photo", red)
    expect(app.page.get_by_role("img", name="New photo")).to_be_visible()
    with app.page.expect_response(
        re.compile(r"/storage/v1/object/public/product-images/")
    ) as shown:
        app.click("Save")
    assert shown.value.status == 200  # the list drew the thumbnail from the public URL
    app.expect_text(re.compile(r"10 in stock"))

    product = api.table("products").select("*").eq("sku", "KO").single().execute().data
    [first_url] = product["images"]
    prefix = f"{server.url}/storage/v1/object/public/product-images/{uid}/products/{product['id']}/"
    assert first_url.startswith(prefix) and first_url.endswith(".png")
    assert httpx.get(first_url).content == red.read_bytes()
    assert shown.value.url == first_url

    # Edit every field and replace the photo; the old file is deleted from the bucket.
    app.tap(app.page.get_by_role("button", name=re.compile(r"^Kopi O")))
    expect(app.page.get_by_role("img", name="Current photo")).to_be_visible()
    for field, value in [
        ("Name", "Kopi O Kaw"),
        ("Price", "2.50"),
        ("Cost", "0.80"),
        ("SKU", "KOK"),
        ("Barcode", "9555000000017"),
        ("Category", "Minuman"),
        ("Low-stock level", "3"),
    ]:
        app.type_into(field, value)
    choose_file(app, "Change photo", blue)
    expect(app.page.get_by_role("img", name="New photo")).to_be_visible()
    app.click("Save")
    app.expect_text(re.compile(r"KOK · RM 2.50 · 10 in stock"))
    edited = api.table("products").select("*").eq("id", product["id"]).single().execute().data
    assert {k: edited[k] for k in ("name", "sku", "barcode", "category")} == {
        "name": "Kopi O Kaw",
        "sku": "KOK",
        "barcode": "9555000000017",
        "category": "Minuman",
    }
    assert Decimal(str(edited["sale_price"])) == Decimal("2.50")
    assert Decimal(str(edited["cost_price"])) == Decimal("0.80")
    assert Decimal(str(edited["reorder_level"])) == 3
    assert edited["negative_stock_policy"] is None
    [second_url] = edited["images"]
    assert second_url != first_url and second_url.startswith(prefix)
    assert httpx.get(second_url).content == blue.read_bytes()
    assert httpx.get(first_url).status_code in (400, 404)

    # On the Sell screen the tile shows the photo and keeps the product's name as its name.
    app.navigate("Sell")
    tile = app.page.get_by_role("button", name="Kopi O Kaw", exact=True)
    expect(tile).to_be_visible()
    assert _shows_blue(tile), "the Sell tile should show the (blue) photo"
    app.navigate("Products")

    # Stock tracking off, photo removed: the product sells regardless of its count.
    app.tap(app.page.get_by_role("button", name=re.compile(r"^Kopi O Kaw")))
    app.click("Track stock", role="switch")
    app.click("Remove photo")
    expect(app.page.get_by_role("img", name="Current photo")).to_have_count(0)
    app.click("Save")
    app.expect_text(re.compile(r"stock not tracked"))
    final = api.table("products").select("*").eq("id", product["id"]).single().execute().data
    assert final["images"] == [] and final["negative_stock_policy"] == "allow"
    assert httpx.get(second_url).status_code in (400, 404)
    listed = api.storage.from_("product-images").list(f"{uid}/products/{product['id']}")
    assert [f["name"] for f in listed if f.get("id")] == []
