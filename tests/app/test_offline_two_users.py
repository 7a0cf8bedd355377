"""One device, two users in turn: each signed-in user has an offline file of their own. A sale
the server refused for user A (kept on the device for A to resolve) is never shown to, or sent
as, user B who signs in next on the same tab; it is A's again when A signs back in."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from app.accounts import PASSWORD
from app.devices import account, open_device, sign_in, sign_out
from app.servers import AppProcess
from harness import ServerProcess
from playwright.sync_api import Browser, expect
from supabase import create_client

REFUSED = re.compile(r"refused: insufficient stock for \"Cucur Udang\"")


def _sales(backend: ServerProcess, email: str) -> list[object]:
    """The user's sales on the server, read with a session of its own (the app's sign-outs end
    the sessions it held)."""
    api = create_client(backend.url, backend.anon_key)
    api.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    return list(api.table("sales").select("id").execute().data)


def test_the_next_user_on_the_device_never_gets_the_last_users_outbox(
    backend: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    device = AppProcess(backend.url, tmp_path)
    device.start()
    try:
        email_a = f"device-a-{uuid.uuid4().hex[:10]}@example.com"
        api_a, kept = account(backend, email_a)
        cucur = api_a.table("products").select("id").eq("name", "Cucur Udang").single()
        api_a.rpc(
            "adjust_stock",
            {"product_id": cucur.execute().data["id"], "counted_quantity": 1, "reason": "count"},
        ).execute()
        app = open_device(browser, device, backend, kept)

        # Offline, A sells two of the one in stock: the server refuses it on return, and the
        # sale stays on the device for A to resolve.
        backend.stop()
        app.tap(app.button("Cucur Udang"))
        app.tap(app.button("Cucur Udang"))
        app.click("Charge")
        app.click("Card")
        app.click("Complete sale")
        app.expect_text("Offline — 1 sales waiting")
        app.click("New sale")
        backend.start()
        expect(app.page.get_by_text(REFUSED)).to_be_visible(timeout=30_000)
        assert _sales(backend, email_a) == []

        # B signs in on the same tab: nothing of A's outbox is shown to B or sent as B.
        sign_out(app)
        email_b = f"device-b-{uuid.uuid4().hex[:10]}@example.com"
        account(backend, email_b)
        sign_in(app, email_b)
        expect(app.button("Pisang Goreng")).to_be_visible()
        app.page.wait_for_timeout(3000)  # a replay round, were A's outbox B's
        expect(app.page.get_by_text(REFUSED)).to_have_count(0)
        expect(app.page.get_by_text(re.compile("sales waiting"))).to_have_count(0)
        assert _sales(backend, email_b) == []

        # A, back on the device, finds the refused sale where it was left.
        sign_out(app)
        sign_in(app, email_a)
        expect(app.page.get_by_text(REFUSED)).to_be_visible()
        assert _sales(backend, email_a) == []
    finally:
        device.stop()
