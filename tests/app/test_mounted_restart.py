"""The web app mounted in `pocketbizz serve` keeps its sign-in across a server restart: the
Flet session (which ran in the server's process) is gone, but the session tokens are in the
browser's storage, as supabase-js keeps them, and the next app session resumes them."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

from app.driver import PHONE, TIMEOUT_MS, AppPage
from app.test_counter_flow import PASSWORD, sign_up
from harness import ServerProcess
from playwright.sync_api import Browser, Locator, Page, expect
from supabase import Client, create_client

# Where Flutter's shared_preferences keeps a key on the web (`flutter.` + supabase-js's key).
KEPT = "flutter.sb-127-auth-token"
# The browser has to notice the server is back and open a new app session first.
RECONNECT_MS = 30_000


def _semantics_on(page: Page) -> None:
    page.wait_for_selector("flt-semantics-placeholder", state="attached")
    page.evaluate("document.querySelector('flt-semantics-placeholder').click()")


def _reload(app: AppPage) -> None:
    app.page.reload()
    _semantics_on(app.page)


def _new_tab(app: AppPage, url: str) -> AppPage:
    """Another tab of the same browser (its storage shared): a new app session. A reload
    would not be one while the server runs: Flet's web client gives its session id back and
    gets the same Python session."""
    page = app.page.context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    _semantics_on(page)
    return AppPage(page)


def _kept(app: AppPage) -> dict[str, Any] | None:
    """The session kept in the browser (shared_preferences stores each value JSON-encoded)."""
    value = app.page.evaluate(f"window.localStorage.getItem('{KEPT}')")
    return None if value is None else dict(json.loads(json.loads(value)))


def _expired_jwt() -> str:
    """A token the client sees as expired (it reads `exp` without checking the signature,
    and refreshes instead of sending it)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'exp': 1})}.c2ln"


def _sell(api: Client, product_id: str) -> str:
    sale = (
        api.rpc(
            "create_sale",
            {"items": [{"product_id": product_id, "quantity": 1}], "payment_method": "card"},
        )
        .execute()
        .data
    )
    return str(sale["sale_number"])


def _sales_row(app: AppPage, sale_number: str) -> Locator:
    return app.page.get_by_role("button", name=re.compile(re.escape(sale_number)))


def test_the_signed_in_tab_comes_back_signed_in_after_a_restart(
    backend: ServerProcess, browser: Browser
) -> None:
    # Tenant B first, in a browser context of its own: signed up, then signed out.
    other = AppPage.open(browser, backend.url + "/app/", PHONE)
    sign_up(other, f"other-{uuid.uuid4().hex[:10]}@example.com", "Kedai Lain")
    assert _kept(other) is not None
    other.navigate("Settings")
    other.click("Sign out")
    other.textbox("Email").wait_for()
    assert _kept(other) is None

    email = f"mounted-{uuid.uuid4().hex[:10]}@example.com"
    app = AppPage.open(browser, backend.url + "/app/", PHONE)
    sign_up(app, email, "Kedai Dodol")
    api = create_client(backend.url, backend.anon_key)
    api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    kept = _kept(app)
    user = api.auth.get_user()
    assert kept is not None and user is not None and kept["user"]["id"] == user.user.id
    product = (
        api.table("products")
        .insert({"sku": "DODOL", "name": "Dodol", "sale_price": "3.00"})
        .execute()
        .data[0]
    )
    api.rpc(
        "adjust_stock", {"product_id": product["id"], "counted_quantity": 10, "reason": "count"}
    ).execute()
    app.navigate("Sales")
    first = _sell(api, product["id"])
    expect(_sales_row(app, first)).to_be_visible()
    app.page.evaluate("window.__sameTab = true")  # a reload would wipe it

    backend.stop()
    backend.start()  # same port, same data dir and database

    # Made at once: only a new app session (the old one ended with the server's process)
    # can show it. Flet's web client reconnects by itself; the tab is not reloaded.
    second = _sell(api, product["id"])
    expect(_sales_row(app, second)).to_be_visible(timeout=RECONNECT_MS)
    expect(app.textbox("Email")).to_have_count(0)
    assert app.page.evaluate("window.__sameTab === true")
    # Live again: the next sale arrives by Realtime, no navigation.
    third = _sell(api, product["id"])
    expect(_sales_row(app, third)).to_be_visible()

    # B, signed out before the restart, stays signed out (a reload: a new app session too),
    # and A's sign-in was never in B's browser context.
    _reload(other)
    expect(other.textbox("Email")).to_be_visible()
    assert _kept(other) is None
    expect(other.destination("Sales")).to_have_count(0)


def test_a_revoked_session_is_not_resumed(server: ServerProcess, browser: Browser) -> None:
    email = f"revoked-{uuid.uuid4().hex[:10]}@example.com"
    app = AppPage.open(browser, server.url + "/app/", PHONE)
    sign_up(app, email, "Kedai Tutup")
    app.navigate("Customers")
    assert _kept(app) is not None
    # A new tab is a new app session: the kept sign-in brings the user back, where it was.
    second = _new_tab(app, server.url + "/app/")
    expect(second.destination("Customers")).to_be_visible()
    expect(second.button("Add customer")).to_be_visible()
    expect(second.textbox("Email")).to_have_count(0)

    # A kept session whose access token has expired is refreshed: a new pair is kept.
    kept = _kept(app)
    assert kept is not None
    expired = {**kept, "access_token": _expired_jwt(), "expires_at": 1}
    app.page.evaluate(
        "([key, value]) => window.localStorage.setItem(key, value)",
        [KEPT, json.dumps(json.dumps(expired))],
    )
    refreshed = _new_tab(app, server.url + "/app/")
    expect(refreshed.destination("Customers")).to_be_visible()
    expect(refreshed.button("Add customer")).to_be_visible()
    renewed = _kept(refreshed)
    assert renewed is not None and renewed["refresh_token"] != kept["refresh_token"]
    assert renewed["access_token"] != expired["access_token"]

    # Signed out everywhere (GoTrue's global scope revokes every session of the user): the
    # next tab is refused its kept session, shows the sign-in form and forgets it.
    api = create_client(server.url, server.anon_key)
    api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    api.auth.sign_out()
    third = _new_tab(app, server.url + "/app/")
    expect(third.textbox("Email")).to_be_visible()
    assert _kept(third) is None  # forgotten before the form shows
