"""Sign-in attempts are limited per browser, not per app server: the web app mounted in
`pocketbizz serve` calls the API over loopback for all its users, so it forwards each
browser's address (X-Forwarded-For), which the server believes from loopback (its default
PB_TRUSTED_PROXIES). The browsers here reach the server through stand-in reverse proxies on
loopback that name them 10.1.1.1 and 10.2.2.2, as the shop's proxy would."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress

import pytest
from app.driver import TABLET, AppPage
from app.test_counter_flow import PASSWORD
from harness import ServerProcess, early_in_a_rate_window
from playwright.sync_api import Browser, expect
from supabase import create_client

SIGN_INS_PER_MINUTE = 3
TOO_MANY = re.compile(r"^Could not sign in: Too many requests")
# Every attempt below must fall within one clock minute (see early_in_a_rate_window), and they
# take about 9 s (20 s when typing paused between keys), on a loaded machine too.
ATTEMPTS_WITHIN_S = 25


@pytest.fixture(scope="module")
def limited_server(
    owner_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    server = ServerProcess(owner_dsn, tmp_path_factory.mktemp("sign-in-limit"))
    server.env_overrides = {
        "PB_RATE_LIMIT_SIGN_IN_PER_MINUTE": str(SIGN_INS_PER_MINUTE),
        "PB_AUTHENTICATOR_PASSWORD": "test-authenticator",  # the session's (tests/conftest.py)
    }
    server.start()
    yield server
    server.stop()


class ForwardingProxy:
    """A stand-in for the shop's reverse proxy: every connection to it goes on to the server
    with `X-Forwarded-For: <address>` added to its first request (the app's socket is a
    connection of its own, opened by one upgrade request)."""

    def __init__(self, upstream_port: int, address: str) -> None:
        self.upstream_port = upstream_port
        self.address = address
        # Its own loop in its own thread: sync Playwright holds this thread's loop.
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self.loop
        )
        self.server = started.result(timeout=10)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        line, rest = head.split(b"\r\n", 1)
        forwarded = f"X-Forwarded-For: {self.address}\r\n".encode()
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_writer.write(line + b"\r\n" + forwarded + rest)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def proxies(limited_server: ServerProcess) -> Iterator[dict[str, ForwardingProxy]]:
    made = {a: ForwardingProxy(limited_server.port, a) for a in ("10.1.1.1", "10.2.2.2")}
    yield made
    for proxy in made.values():
        proxy.close()


def _browser_at(browser: Browser, proxy: ForwardingProxy) -> AppPage:
    return AppPage.open(browser, f"http://127.0.0.1:{proxy.port}/app/", TABLET)


def _sign_in(app: AppPage, email: str, password: str) -> None:
    app.textbox("Email").wait_for()
    app.type_into("Email", email)
    app.type_into("Password", password)
    app.click("Sign in")


def test_a_browser_out_of_sign_in_attempts_does_not_lock_out_another(
    limited_server: ServerProcess, proxies: dict[str, ForwardingProxy], browser: Browser
) -> None:
    emails = [f"limit-{uuid.uuid4().hex[:10]}@example.com" for _ in range(2)]
    for email in emails:
        client = create_client(limited_server.url, limited_server.anon_key)
        user = client.auth.sign_up({"email": email, "password": PASSWORD}).user
        assert user is not None
        client.table("business_profiles").update({"business_name": "Kedai Runcit"}).eq(
            "business_owner_id", user.id
        ).execute()

    # Both browsers open first: the limit is a sliding minute, so what follows A's lock-out
    # must come within seconds of it.
    guesser = _browser_at(browser, proxies["10.1.1.1"])
    owner = _browser_at(browser, proxies["10.2.2.2"])
    owner.textbox("Email").wait_for()
    minute = early_in_a_rate_window(ATTEMPTS_WITHIN_S)

    # Browser A guesses a password until the server stops it.
    _sign_in(guesser, emails[0], "wrong password 1")
    guesser.expect_text(re.compile(r"^Could not sign in: Invalid login credentials"))
    for attempt in range(2, SIGN_INS_PER_MINUTE + 2):
        guesser.type_into("Password", f"wrong password {attempt}")
        guesser.click("Sign in")
    guesser.expect_text(TOO_MANY)

    # Browser B, another address, has attempts of its own: the right password gets it in.
    # (Were the app's calls not marked with its browser's address, both would count against
    # the app server's own loopback address, and B would be locked out with A.)
    _sign_in(owner, emails[1], PASSWORD)
    owner.destination("Sell").wait_for()

    # From A's address even the right password is refused: the limit follows the browser.
    _sign_in(guesser, emails[1], PASSWORD)
    guesser.page.wait_for_timeout(2000)
    guesser.expect_text(TOO_MANY)
    expect(guesser.destination("Sell")).to_have_count(0)
    assert int(time.time() // 60) == minute, f"the attempts took over {ATTEMPTS_WITHIN_S} s"
