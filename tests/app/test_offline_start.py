"""The app on a device (`pocketbizz app --backend URL`) started while the server is down, with
the sign-in kept on the device: it opens signed in, on the counter, with the catalogue and the
business profile kept from its last online session, and sells into the outbox; when the server
is back the kept session is resumed and every sale is recorded once, dated when it was made."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from app.accounts import PASSWORD, kept_session_key
from app.devices import device_with_user, reopen, restart_offline, sell_by_card, sign_in
from app.driver import AppPage
from harness import ServerProcess
from playwright.sync_api import Browser, expect


def test_the_app_started_offline_with_a_kept_sign_in_sells_and_replays(
    backend: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    # Online once: the catalogue and the business profile are kept on the device.
    with device_with_user(backend, browser, tmp_path, "offstart") as (device, user):
        api, app = user.api, user.app
        restart_offline(backend, device, app)
        expect(app.button("Pisang Goreng")).to_be_visible()  # the counter, not the sign-in
        expect(app.textbox("Email")).to_have_count(0)
        # A screen that needs the server says so, and the counter still sells.
        app.navigate("Dashboard")
        app.expect_text(re.compile("^Something went wrong: the server cannot be reached"))
        app.navigate("Sell")

        offline_from = datetime.now(UTC)
        sell_by_card(app, "Pisang Goreng")
        sell_by_card(app, "Cucur Udang")
        offline_until = datetime.now(UTC)
        app.expect_text("Offline — 2 sales waiting")

        backend.start()  # same port, same database
        # A screen opened at once reads the server as the user (the session resumed first),
        # not as nobody: the customers are there.
        app.navigate("Customers")
        app.expect_text("Pak Ali")
        app.navigate("Sell")
        waiting = app.page.get_by_text(re.compile("sales waiting"))
        expect(waiting).to_have_count(0, timeout=30_000)

        sales = (
            api.table("sales")
            .select("client_ref, payment_method, created_at, sale_items(product_name)")
            .order("sale_number")
            .execute()
            .data
        )
        assert [[i["product_name"] for i in s["sale_items"]] for s in sales] == [
            ["Pisang Goreng"],
            ["Cucur Udang"],
        ]
        assert len({s["client_ref"] for s in sales}) == 2
        assert all(s["payment_method"] == "card" for s in sales)
        sold = [datetime.fromisoformat(s["created_at"]) for s in sales]
        assert offline_from <= sold[0] < sold[1] <= offline_until
        # The session is the server's again: the screen reads from it (the stock counted down).
        stock = api.table("products").select("name, current_stock").order("name").execute()
        assert {r["name"]: Decimal(str(r["current_stock"])) for r in stock.data} == {
            "Cucur Udang": 9,
            "Pisang Goreng": 9,
        }


def test_a_kept_sign_in_refused_on_return_asks_to_sign_in_and_keeps_the_outbox(
    backend: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    with device_with_user(backend, browser, tmp_path, "offstart") as (device, user):
        api, app = user.api, user.app
        # Signed out everywhere (scope "global"): the session the device keeps is revoked —
        # with the device app stopped first, so it cannot learn of it before the server goes.
        device.stop()
        api.auth.sign_out()
        backend.stop()
        device.start()
        reopen(app)
        offline_from = datetime.now(UTC)
        sell_by_card(app, "Pisang Goreng")
        app.expect_text("Offline — 1 sales waiting")

        backend.start()
        # The server refuses the kept session: the sign-in form, the sale still on the device.
        app.textbox("Email").wait_for(timeout=30_000)
        api.auth.sign_in_with_password({"email": user.email, "password": PASSWORD})
        assert api.table("sales").select("id").execute().data == []

        sign_in(app, user.email)
        waiting = app.page.get_by_text(re.compile("sales waiting"))
        expect(waiting).to_have_count(0, timeout=30_000)
        sales = api.table("sales").select("created_at, sale_items(product_name)").execute().data
        assert [[i["product_name"] for i in s["sale_items"]] for s in sales] == [["Pisang Goreng"]]
        assert offline_from <= datetime.fromisoformat(sales[0]["created_at"])


# Access tokens this short-lived expire while the device is offline, so the kept session can
# come back only through its refresh token.
SHORT_EXPIRY_SECONDS = 20


@pytest.fixture
def short_lived_backend(owner_dsn: str, tmp_path: Path) -> Iterator[ServerProcess]:
    (tmp_path / "server").mkdir()
    proc = ServerProcess(
        owner_dsn,
        tmp_path / "server",
        env_overrides={
            "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",
            "PB_JWT_EXPIRY_SECONDS": str(SHORT_EXPIRY_SECONDS),
        },
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _kept_session(app: AppPage, backend: ServerProcess) -> dict[str, object]:
    value = app.page.evaluate("key => localStorage.getItem(key)", kept_session_key(backend.url))
    session: dict[str, object] = json.loads(json.loads(value))
    return session


def test_a_kept_sign_in_whose_access_token_expired_offline_is_refreshed_on_return(
    short_lived_backend: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    backend = short_lived_backend
    with device_with_user(backend, browser, tmp_path, "offstart") as (device, user):
        api, app = user.api, user.app
        restart_offline(backend, device, app)
        sell_by_card(app, "Pisang Goreng")
        app.expect_text("Offline — 1 sales waiting")
        offline = _kept_session(app, backend)
        # Offline until the kept access token has expired (the page's clock is this machine's).
        app.page.wait_for_function(
            "exp => Date.now() / 1000 > exp + 1",
            arg=offline["expires_at"],
            timeout=(SHORT_EXPIRY_SECONDS + 15) * 1000,
        )

        backend.start()
        waiting = app.page.get_by_text(re.compile("sales waiting"))
        expect(waiting).to_have_count(0, timeout=30_000)
        # This client's own token may have expired meanwhile too.
        api.auth.sign_in_with_password({"email": user.email, "password": PASSWORD})
        sales = api.table("sales").select("sale_items(product_name)").execute().data
        assert [[i["product_name"] for i in s["sale_items"]] for s in sales] == [["Pisang Goreng"]]
        # Refreshed with the kept refresh token: the device keeps the new pair.
        assert _kept_session(app, backend)["refresh_token"] != offline["refresh_token"]
