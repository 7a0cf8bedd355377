"""A tab reloaded the moment it has reconnected by itself to a restarted app process: the
session its reconnect made is the one the reload takes over, mid-way through reading the
kept sign-in from the browser — the read must be asked again of the reloaded page, or the
tab waits on a spinner for good (seen 1 run in ~7 before the fix, and every run reloaded
this early)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from app.servers import AppProcess, own_server
from app.test_offline_start import _account, _reopen, open_device
from harness import ServerProcess
from playwright.sync_api import Browser, expect


@pytest.fixture
def backend(owner_dsn: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with own_server(owner_dsn, tmp_path) as proc:
        yield proc


@pytest.mark.parametrize("server_up", [True, False], ids=["online", "offline"])
def test_a_tab_reloaded_as_it_reconnects_opens_signed_in(
    server_up: bool, backend: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    device = AppProcess(backend.url, tmp_path)
    device.start()
    try:
        _, kept = _account(backend, f"reload-{uuid.uuid4().hex[:10]}@example.com")
        app = open_device(browser, device, backend, kept)
        if not server_up:
            backend.stop()
        device.stop()
        sent = app.page.evaluate("window.__pbSocket.sent")
        device.start()
        # The old page registers with the new process on its own (Flet's reconnect)...
        app.page.wait_for_function(f"window.__pbSocket.sent > {sent}", polling=5)
        _reopen(app)  # ...and is reloaded before that session has read the kept sign-in.
        expect(app.button("Pisang Goreng")).to_be_visible()
        expect(app.textbox("Email")).to_have_count(0)
    finally:
        device.stop()
