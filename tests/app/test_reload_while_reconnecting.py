"""A tab reloaded the moment it has reconnected by itself to a restarted app process: the
session its reconnect made is the one the reload takes over, mid-way through reading the
kept sign-in from the browser — the read must be asked again of the reloaded page, or the
tab waits on a spinner for good (seen 1 run in ~7 before the fix, and every run reloaded
this early)."""

from __future__ import annotations

from pathlib import Path

import pytest
from app.devices import device_with_user, reopen
from harness import ServerProcess
from playwright.sync_api import Browser, expect


@pytest.mark.parametrize("server_up", [True, False], ids=["online", "offline"])
def test_a_tab_reloaded_as_it_reconnects_opens_signed_in(
    server_up: bool, backend: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    with device_with_user(backend, browser, tmp_path, "reload") as (device, user):
        app = user.app
        if not server_up:
            backend.stop()
        device.stop()
        sent = app.page.evaluate("window.__pbSocket.sent")
        device.start()
        # The old page registers with the new process on its own (Flet's reconnect)...
        app.page.wait_for_function(f"window.__pbSocket.sent > {sent}", polling=5)
        reopen(app)  # ...and is reloaded before that session has read the kept sign-in.
        expect(app.button("Pisang Goreng")).to_be_visible()
        expect(app.textbox("Email")).to_have_count(0)
