"""The app as it runs on a device (`pocketbizz app --backend URL`, a subprocess beside the
test's own server), a user of it, and the steps the offline tests share."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.accounts import PASSWORD, kept_session_key
from app.driver import PHONE, AppPage
from app.servers import AppProcess
from harness import ServerProcess
from playwright.sync_api import Browser, expect
from supabase import Client, create_client


def account(backend: ServerProcess, email: str) -> tuple[Client, str]:
    """An account with its business set up, two products in stock and a customer; the API
    client signed in as it, and the session as the app keeps it on the device."""
    api = create_client(backend.url, backend.anon_key)
    signed_up = api.auth.sign_up({"email": email, "password": PASSWORD})
    assert signed_up.session is not None
    profiles = api.table("business_profiles")
    profile: dict[str, str] = profiles.select("id").single().execute().data  # type: ignore[assignment]
    profiles.update({"business_name": "Gerai Malam"}).eq("id", profile["id"]).execute()
    add_products(api, {"Pisang Goreng": 10, "Cucur Udang": 10}, "1.50")
    api.table("customers").insert({"name": "Pak Ali", "phone": "0123456789"}).execute()
    return api, json.dumps(signed_up.session.model_dump_json())


def add_products(api: Client, stock: dict[str, int], price: str) -> None:
    """Products at `price`, each counted in at its quantity in `stock` (SKUs P0, P1, …)."""
    for sku, (name, count) in enumerate(stock.items()):
        row = (
            api.table("products")
            .insert({"sku": f"P{sku}", "name": name, "sale_price": price})
            .execute()
            .data[0]
        )
        api.rpc(
            "adjust_stock",
            {"product_id": row["id"], "counted_quantity": count, "reason": "count"},
        ).execute()


def open_device(browser: Browser, device: AppProcess, backend: ServerProcess, kept: str) -> AppPage:
    """The device app in a browser that keeps `kept` as its sign-in, online: on the counter,
    the catalogue and the business profile read (and so kept on the device)."""
    origin = device.url.rstrip("/")
    app = AppPage.open(
        browser, device.url, PHONE, local_storage={origin: {kept_session_key(backend.url): kept}}
    )
    expect(app.button("Cucur Udang")).to_be_visible()
    return app


@dataclass
class DeviceUser:
    email: str
    api: Client  # the same user through the API, as another device would be
    app: AppPage


@contextmanager
def device_with_user(
    backend: ServerProcess, browser: Browser, tmp_path: Path, name: str
) -> Iterator[tuple[AppProcess, DeviceUser]]:
    """The device app started, and a new user of it (see `account`) on its counter, online;
    the app stopped at the end."""
    device = AppProcess(backend.url, tmp_path)
    device.start()
    try:
        email = f"{name}-{uuid.uuid4().hex[:10]}@example.com"
        api, kept = account(backend, email)
        yield device, DeviceUser(email, api, open_device(browser, device, backend, kept))
    finally:
        device.stop()


def reopen(app: AppPage) -> None:
    """The same browser (its storage, the kept sign-in with it) loads the app again."""
    app.page.reload()
    app.page.wait_for_selector("flt-semantics-placeholder", state="attached")
    app.page.evaluate("document.querySelector('flt-semantics-placeholder').click()")


def restart_offline(backend: ServerProcess, device: AppProcess, app: AppPage) -> None:
    """The server goes down, then the device app restarts and the browser loads it again."""
    backend.stop()
    device.stop()
    device.start()
    reopen(app)


def sell_by_card(app: AppPage, product: str) -> None:
    """One of `product`, paid by card, while offline (kept in the outbox)."""
    app.tap(app.button(product))
    app.click("Charge")
    app.click("Card")
    app.click("Complete sale")
    app.expect_text(re.compile("^Saved offline"))
    app.click("New sale")


def sign_in(app: AppPage, email: str) -> None:
    app.textbox("Email").wait_for()
    app.type_into("Email", email)
    app.type_into("Password", PASSWORD)
    app.click("Sign in")
    app.destination("Sell").wait_for()


def sign_out(app: AppPage) -> None:
    app.navigate("Settings")
    app.click("Sign out")
    app.textbox("Email").wait_for()
